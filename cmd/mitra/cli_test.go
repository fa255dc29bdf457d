package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// mitra runs the CLI in-process.
func mitra(t *testing.T, envs map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return envs[k] }
	err = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return out.String(), errb.String(), err
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func TestUserAndCollectionCommands(t *testing.T) {
	data := t.TempDir()
	pw := map[string]string{"MITRA_USER_PASSWORD": "a-long-password"}
	if _, _, err := mitra(t, pw, "", "user", "create", "--data", data, "alice"); err != nil {
		t.Fatal(err)
	}
	// Password from standard input when the variable is unset.
	if _, _, err := mitra(t, nil, "bob-password-1\n", "user", "create", "--data", data, "bob", "--role", "read-only"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mitra(t, pw, "", "user", "create", "--data", data, "alice"); err == nil {
		t.Error("creating alice twice succeeded")
	}
	if _, _, err := mitra(t, map[string]string{"MITRA_USER_PASSWORD": "short"}, "", "user", "create", "--data", data, "carol"); err == nil {
		t.Error("a 5-character password was accepted")
	}
	out, _, err := mitra(t, nil, "", "user", "list", "--data", data)
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "read-only") {
		t.Fatalf("user list: %v\n%s", err, out)
	}

	out, _, err = mitra(t, nil, "", "collection", "create", "--data", data, "--title", "Shared", "--description", "d", "--alias", "shared", "--readers", "alice,bob", "--writers", "alice")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSuffix(out, "\n")
	if _, err := uuid.Parse(id); err != nil || out != id+"\n" {
		t.Fatalf("collection create printed %q, want only a UUID line", out)
	}
	// MITRA_DATA selects the data directory as --data does.
	out, _, err = mitra(t, map[string]string{"MITRA_DATA": data}, "", "collection", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "alice,bob") {
		t.Fatalf("collection list: %v\n%s", err, out)
	}
	if _, _, err := mitra(t, nil, "", "collection", "create", "--data", data, "--title", "X", "--readers", "nobody"); err == nil {
		t.Error("collection with an unknown reader was created")
	}
	tok, _, err := mitra(t, nil, "", "token", "create", "--data", data, "--user", "alice", "--expires", "1h")
	if err != nil || !strings.HasPrefix(tok, "mitra_") || strings.Count(tok, "\n") != 1 {
		t.Fatalf("token create printed %q (%v), want only the token", tok, err)
	}
	if _, _, err := mitra(t, nil, "", "token", "create", "--data", data, "--user", "bob", "--role", "admin"); err == nil {
		t.Error("a read-only user got an admin token")
	}
	if _, _, err := mitra(t, nil, "", "collection", "delete", "--data", data, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mitra(t, nil, "", "user", "delete", "--data", data, "bob"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = mitra(t, nil, "", "user", "list", "--data", data)
	if strings.Contains(out, "bob") {
		t.Errorf("bob still listed after delete:\n%s", out)
	}
	if _, _, err := mitra(t, nil, "", "user", "delete", "--data", data, "bob"); err == nil {
		t.Error("deleting a missing user succeeded")
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"type":"bundle","id":"bundle--44af6c39-c09b-49c5-9de2-394224b04982","objects":[
		{"type":"identity","spec_version":"2.1","id":"identity--311b2d2d-f010-4473-83ec-1edf84858f4c","created":"2015-12-21T19:59:11.000Z","modified":"2015-12-21T19:59:11.000Z","name":"Cole Powers","identity_class":"individual"}]}`), 0o600)
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"type":"identity","spec_version":"2.1","id":"identity--311b2d2d-f010-4473-83ec-1edf84858f4c","created":"2015-12-21T19:59:11.000Z","modified":"2015-12-21T19:59:11.000Z","name":"ok"}
{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z","confidence":101}
`), 0o600)
	out, _, err := mitra(t, nil, "", "validate", good)
	if err != nil || out != "" {
		t.Errorf("valid bundle: exit %d, output %q", exitCode(err), out)
	}
	out, _, err = mitra(t, nil, "", "validate", good, bad)
	if exitCode(err) != 1 {
		t.Errorf("invalid file: exit %d, want 1", exitCode(err))
	}
	if !strings.Contains(out, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f") || !strings.Contains(out, "pattern") || !strings.Contains(out, "confidence") || !strings.Contains(out, "§") {
		t.Errorf("problems should name the object, the property and the section:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, bad+": ") {
			t.Errorf("problem line %q does not name its file", line)
		}
	}
	// Standard input.
	out, _, err = mitra(t, nil, `{"type":"x-custom","id":"x-custom--311b2d2d-f010-4473-83ec-1edf84858f4c","spec_version":"2.1","created":"2015-12-21T19:59:11.000Z","modified":"2015-12-21T19:59:11.000Z","x_field":1}`, "validate", "-")
	if err != nil {
		t.Errorf("custom object from stdin: %v\n%s", err, out)
	}
}

func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, _, err := mitra(t, nil, "", "serve", "--data", t.TempDir(), "--addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "plain HTTP") {
		t.Errorf("serve on 0.0.0.0 without TLS: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	_, _, err := mitra(t, nil, "", "no-such-command")
	if exitCode(err) != 2 {
		t.Errorf("unknown command: exit %d, want 2", exitCode(err))
	}
	if _, _, err := mitra(t, nil, "", "--help"); err != nil {
		t.Errorf("--help: %v", err)
	}
}

func TestPatternCommands(t *testing.T) {
	out, _, err := mitra(t, nil, "", "pattern", "check", "[ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [domain-name:value = 'example.com'] WITHIN 10 SECONDS")
	if err != nil || out != "valid\n" {
		t.Errorf("valid pattern: %q, exit %d", out, exitCode(err))
	}
	out, _, err = mitra(t, nil, "", "pattern", "check", "[ipv4-addr:value = '198.51.100.1'")
	if exitCode(err) != 1 || !strings.Contains(out, "position") {
		t.Errorf("invalid pattern: %q, exit %d; want the position and exit 1", out, exitCode(err))
	}
	in := `{"pattern":"[ipv4-addr:value = '198.51.100.1']","observed":[{"type":"observed-data","id":"observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf","spec_version":"2.1","created":"2016-04-06T19:58:16.000Z","modified":"2016-04-06T19:58:16.000Z","first_observed":"2015-12-21T19:00:00Z","last_observed":"2015-12-21T19:00:00Z","number_observed":1,"object_refs":["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]},{"type":"ipv4-addr","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.1"}]}
{"pattern":"[ipv4-addr:value = '203.0.113.9']","observed":[{"type":"observed-data","id":"observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf","spec_version":"2.1","created":"2016-04-06T19:58:16.000Z","modified":"2016-04-06T19:58:16.000Z","first_observed":"2015-12-21T19:00:00Z","last_observed":"2015-12-21T19:00:00Z","number_observed":1,"object_refs":["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]},{"type":"ipv4-addr","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.1"}]}
{"pattern":"[ipv4-addr:value = ","observed":[]}
`
	out, _, err = mitra(t, nil, in, "pattern", "match", "--jsonl")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"valid":true,"matched":true,"error":null}` + "\n" + `{"valid":true,"matched":false,"error":null}` + "\n"
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(out, want) || len(lines) != 4 || !strings.HasPrefix(lines[2], `{"valid":false,"matched":false,"error":"`) {
		t.Errorf("pattern match output:\n%s", out)
	}
}

// The validator behind `mitra validate` and the TAXII POST parses patterns.
func TestValidateChecksPatterns(t *testing.T) {
	in := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","pattern":"[file:hashes.'SHA-256' = ","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z"}`
	out, _, err := mitra(t, nil, in, "validate", "-")
	if exitCode(err) != 1 || !strings.Contains(out, "$.pattern") || !strings.Contains(out, "position") {
		t.Errorf("bad pattern: exit %d\n%s", exitCode(err), out)
	}
}

func TestOrgGroupGrantAuditCommands(t *testing.T) {
	data := t.TempDir()
	run := func(envs map[string]string, args ...string) string {
		t.Helper()
		out, errOut, err := mitra(t, envs, "", append(args, "--data", data)...)
		if err != nil {
			t.Fatalf("mitra %v: %v\n%s", args, err, errOut)
		}
		return out
	}
	// mitra org create NAME prints only the identity id.
	grid := run(nil, "org", "create", "Grid Operator")
	if !strings.HasPrefix(grid, "identity--") || strings.Count(grid, "\n") != 1 {
		t.Fatalf("org create printed %q", grid)
	}
	grid = strings.TrimSpace(grid)
	cert := strings.TrimSpace(run(nil, "org", "create", "National CERT", "--anonymise-sightings"))
	group := strings.TrimSpace(run(nil, "group", "create", "energy", "--orgs", "Grid Operator,"+cert))
	if _, err := uuid.Parse(group); err != nil {
		t.Fatalf("group create printed %q", group)
	}
	pw := map[string]string{"MITRA_USER_PASSWORD": "a-long-password"}
	run(pw, "user", "create", "gina", "--org", "Grid Operator", "--role", "read-only")
	run(pw, "user", "create", "plain") // the core form: default organisation
	if out := run(nil, "org", "show", grid); !strings.Contains(out, "gina (read-only)") || !strings.Contains(out, "energy") {
		t.Errorf("org show:\n%s", out)
	}
	if out := run(nil, "org", "show", grid, "--stix"); !strings.Contains(out, `"identity_class":"organization"`) || !strings.Contains(out, grid) {
		t.Errorf("org show --stix:\n%s", out)
	}
	col := strings.TrimSpace(run(nil, "collection", "create", "--title", "Energy", "--default-tlp", "green", "--recipients", "National CERT"))
	run(nil, "collection", "grant", col, "--read", "--group", "energy")
	run(nil, "collection", "grant", col, "--read", "--write", "--org", "National CERT")
	run(nil, "collection", "revoke", col, "--write", "--org", cert)
	run(nil, "collection", "grant", col, "--read", "--user", "plain")
	if _, _, err := mitra(t, nil, "", "collection", "grant", "--data", data, col, "--read"); exitCode(err) != 2 {
		t.Errorf("grant without --org/--group/--user: exit %d, want 2", exitCode(err))
	}
	if _, _, err := mitra(t, nil, "", "collection", "grant", "--data", data, col, "--org", cert); err == nil {
		t.Error("grant without --read/--write succeeded")
	}
	// What the commands did, as the store sees it.
	st, err := (StoreFlags{Data: data, Store: "sqlite:"}).open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.GetCollection(context.Background(), col)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultTLP != 2 || len(c.Recipients) != 1 || c.Recipients[0] != cert || len(c.Readers) != 1 || c.Readers[0] != "plain" {
		t.Errorf("collection = %+v", c)
	}
	grants := map[string]string{}
	for _, g := range c.Grants {
		grants[g.Kind+" "+g.Subject] = fmt.Sprintf("r=%v w=%v", g.Read, g.Write)
	}
	if grants["group "+group] != "r=true w=false" || grants["org "+cert] != "r=true w=false" || len(grants) != 2 {
		t.Errorf("grants = %v", grants)
	}
	if out := run(nil, "user", "show", "gina"); !strings.Contains(out, "Grid Operator") || !strings.Contains(out, col) || !strings.Contains(out, "read=true write=false") {
		t.Errorf("user show:\n%s", out)
	}
	out := run(nil, "audit", "--action", "admin.")
	if rev, grp := strings.Index(out, "admin.collection.revoke"), strings.Index(out, "admin.group.create"); rev < 0 || grp < 0 || rev > grp {
		t.Errorf("audit, newest first:\n%s", out)
	}
	// Paging: the newest record, then the ones before its SEQ.
	page := strings.Split(strings.TrimSpace(run(nil, "audit", "--action", "admin.collection.", "--limit", "1")), "\n")
	if len(page) != 2 || !strings.Contains(page[1], "admin.collection.grant") {
		t.Fatalf("audit --limit 1:\n%s", strings.Join(page, "\n"))
	}
	seq := strings.Fields(page[1])[0]
	if out := run(nil, "audit", "--action", "admin.collection.", "--limit", "1", "--before", seq); !strings.Contains(out, "admin.collection.revoke") {
		t.Errorf("audit --before %s:\n%s", seq, out)
	}
	if _, _, err := mitra(t, nil, "", "org", "delete", "--data", data, "Grid Operator"); err == nil {
		t.Error("deleted an organisation that has users")
	}
	run(nil, "group", "delete", "energy")
	if out := run(nil, "group", "list"); strings.Contains(out, "energy") {
		t.Errorf("group still listed:\n%s", out)
	}
}
