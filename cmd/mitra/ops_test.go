package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestEveryCommandChangeIsAudited runs each state-changing command and
// checks that the audit log names who (the operator), what and the object.
func TestEveryCommandChangeIsAudited(t *testing.T) {
	data := t.TempDir()
	envs := map[string]string{"MITRA_USER_PASSWORD": "a-long-password", "USER": "operator"}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := mitra(t, envs, "", append(args, "--data", data)...)
		if err != nil {
			t.Fatalf("mitra %v: %v\n%s", args, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	org := run("org", "create", "Grid Operator")
	other := run("org", "create", "Other")
	run("user", "create", "gina", "--org", "Grid Operator")
	run("user", "update", "gina", "--role", "read-only", "--org", "Other")
	envs["MITRA_USER_PASSWORD"] = "another-password"
	run("user", "passwd", "gina")
	col := run("collection", "create", "--title", "Energy")
	run("collection", "policy", col, "--default-tlp", "red", "--recipients", "Other")
	group := run("group", "create", "energy", "--orgs", "Grid Operator")
	run("group", "set", "energy", "--orgs", "Other,"+org)
	secret := run("token", "create", "--user", "gina")
	if !strings.HasPrefix(secret, access.TokenPrefix) {
		t.Fatalf("token create printed %q", secret)
	}

	st, err := (StoreFlags{Data: data, Store: "sqlite:"}).open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := st.GetUser(ctx, "gina")
	if err != nil || u.Role != access.RoleReadOnly || u.Organisation != other {
		t.Errorf("gina = %+v, %v", u, err)
	}
	if _, err := access.NewAuthenticator(st, nil).Password(ctx, "gina", "another-password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	c, err := st.GetCollection(ctx, col)
	if err != nil || c.DefaultTLP != int(access.TLPRed) || len(c.Recipients) != 1 || c.Recipients[0] != other {
		t.Errorf("collection = %+v, %v", c, err)
	}
	g, err := st.GetGroup(ctx, group)
	if err != nil || len(g.Orgs) != 2 {
		t.Errorf("group = %+v, %v", g, err)
	}
	tokens, err := st.ListTokens(ctx, "gina")
	if err != nil || len(tokens) != 1 {
		t.Fatalf("tokens = %v, %v", tokens, err)
	}
	// Tokens expire by default.
	if exp := time.Until(tokens[0].Expires); exp < access.DefaultTokenExpiry-time.Hour || exp > access.DefaultTokenExpiry {
		t.Errorf("token expires in %v, want the default %v", exp, access.DefaultTokenExpiry)
	}
	tok := tokens[0].ID
	st.Close()

	run("token", "revoke", tok)
	run("group", "delete", "energy")
	run("collection", "delete", col)
	run("user", "delete", "gina")
	run("org", "delete", org)

	st, err = (StoreFlags{Data: data, Store: "sqlite:"}).open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for action, object := range map[string]string{
		"admin.org.create": org, "admin.user.create": "gina", "admin.user.update": "gina", "admin.user.password": "gina",
		"admin.collection.create": col, "admin.collection.policy": col, "admin.group.create": group, "admin.group.members": group,
		"admin.token.create": tok, "admin.token.revoke": tok, "admin.group.delete": group, "admin.collection.delete": col,
		"admin.user.delete": "gina", "admin.org.delete": org,
	} {
		recs, err := st.ListAudit(ctx, store.AuditFilter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(recs, func(r store.AuditRecord) bool {
			return r.Principal == "cli:operator" && slices.Contains(r.Objects, object)
		}) {
			t.Errorf("%s: audit records %+v, want one by cli:operator on %s", action, recs, object)
		}
	}
	// A failed command changes nothing and records nothing.
	if _, _, err := mitra(t, envs, "", "user", "delete", "--data", data, "nobody"); err == nil {
		t.Error("deleting an unknown user succeeded")
	}
	if recs, _ := st.ListAudit(ctx, store.AuditFilter{Action: "admin.user.delete"}); len(recs) != 1 {
		t.Errorf("a failed delete was audited: %+v", recs)
	}
}

func TestPruneCommand(t *testing.T) {
	data := t.TempDir()
	st, err := (StoreFlags{Data: data, Store: "sqlite:"}).open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	if err := st.SaveStatus(ctx, &store.Status{ID: "2d086da7-4bdc-4f91-900e-d77486753710", Owner: "a", RequestTimestamp: old, Complete: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendAudit(ctx, store.AuditRecord{At: old, Principal: "a", Action: "objects.add"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, errOut, err := mitra(t, nil, "", "prune", "--data", data, "--status-retention", "24h", "--audit-retention", "24h")
	if err != nil || !strings.Contains(errOut, "Removed 1 statuses and 1 audit records") {
		t.Fatalf("prune: %v\n%s", err, errOut)
	}
}

func TestServeTimeouts(t *testing.T) {
	// The flags and their defaults, as kong parses them.
	var cli CLI
	p, err := kong.New(&cli, kong.Vars{"version": version}, kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"serve", "--read-timeout", "1m", "--idle-timeout", "30s"}); err != nil {
		t.Fatal(err)
	}
	c := cli.Serve
	hs := c.httpServer(http.NotFoundHandler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if hs.ReadTimeout != time.Minute || hs.WriteTimeout != 10*time.Minute || hs.IdleTimeout != 30*time.Second || hs.ReadHeaderTimeout == 0 {
		t.Errorf("timeouts: read %v, write %v, idle %v, header %v", hs.ReadTimeout, hs.WriteTimeout, hs.IdleTimeout, hs.ReadHeaderTimeout)
	}
	if c.UploadMemory != 256<<20 || c.TokenExpiry != access.DefaultTokenExpiry || c.Retention.StatusRetention != 30*24*time.Hour {
		t.Errorf("defaults: upload memory %d, token expiry %v, status retention %v", c.UploadMemory, c.TokenExpiry, c.Retention.StatusRetention)
	}
}

func TestTrustedProxyFlag(t *testing.T) {
	got, err := parsePrefixes([]string{"10.0.0.0/8", "192.0.2.7", "::1", "10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if strings.Join(s, " ") != "10.0.0.0/8 192.0.2.7/32 ::1/128 10.1.0.0/16" {
		t.Errorf("prefixes = %v", s)
	}
	if _, err := parsePrefixes([]string{"proxy.example"}); err == nil {
		t.Error("a host name was taken as a proxy address")
	}
}
