package taxiiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery"

func indicatorID(n int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n) }

// env is a real TAXII server (package taxii) on an embedded store.
type env struct {
	st store.Store
	ts *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}}))
	t.Cleanup(ts.Close)
	return &env{st: st, ts: ts}
}

// user creates a user with role and password (bcrypt at the lowest cost:
// authentication still goes through access.Authenticator).
func (e *env) user(t *testing.T, name, role string) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(t.Context(), &store.User{Name: name, Role: role, PasswordHash: string(h)}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) collection(t *testing.T, alias string, readers, writers []string) *store.Collection {
	c := &store.Collection{Title: "Collection " + alias, Alias: alias, Readers: readers, Writers: writers}
	if err := e.st.CreateCollection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	e := newEnv(t)
	e.user(t, "cli", "analyst")
	c := e.collection(t, "client", []string{"cli"}, []string{"cli"})
	ctx := context.Background()

	if _, err := taxiiclient.NewClient("ftp://x/", ""); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := taxiiclient.NewClient(e.ts.URL+"/api/", ""); err == nil {
		t.Error("an API root without a collection accepted")
	}
	cl, err := taxiiclient.NewClient(e.ts.URL+"/api/", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cl.User, cl.Password = "cli", password
	var objs []json.RawMessage
	for i := 1; i <= 7; i++ {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"}`, indicatorID(i), i)))
	}
	objs = append(objs, json.RawMessage(`{"type":"indicator","id":"broken"}`))
	st, err := cl.AddObjects(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if st.SuccessCount != 7 || st.FailureCount != 1 || st.Status != "complete" {
		t.Fatalf("status = %+v", st)
	}
	again, err := cl.Status(ctx, st.ID)
	if err != nil || again.ID != st.ID || again.SuccessCount != 7 {
		t.Errorf("Status = %+v, %v", again, err)
	}
	// Pages of 3 via next: 3, 3, 1.
	var sizes []int
	var ids []string
	err = cl.GetObjects(ctx, taxiiclient.ObjectsQuery{Limit: 3, Types: []string{"indicator"}}, func(p taxiiclient.ObjectsPage) error {
		sizes = append(sizes, len(p.Objects))
		if p.DateAddedLast.IsZero() {
			t.Error("page without X-TAXII-Date-Added-Last")
		}
		for _, o := range p.Objects {
			var h struct{ ID string }
			json.Unmarshal(o, &h)
			ids = append(ids, h.ID)
		}
		return nil
	})
	if err != nil || fmt.Sprint(sizes) != "[3 3 1]" || len(ids) != 7 || ids[0] != indicatorID(1) || ids[6] != indicatorID(7) {
		t.Errorf("GetObjects: sizes %v, ids %v, err %v", sizes, ids, err)
	}
	// A callback error stops the walk and comes back.
	stop := errors.New("stop")
	if err := cl.GetObjects(ctx, taxiiclient.ObjectsQuery{Limit: 2}, func(taxiiclient.ObjectsPage) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
	// TAXII error resources come back as *taxiiclient.Error with their status.
	cl.Password = "wrong"
	_, err = cl.AddObjects(ctx, objs[:1])
	var te *taxiiclient.Error
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || !strings.Contains(te.Title, "Authentication") {
		t.Errorf("wrong password: %v", err)
	}
	missing, _ := taxiiclient.NewClient(e.ts.URL+"/api/", "00000000-0000-4000-8000-000000000999")
	missing.User, missing.Password = "cli", password
	err = missing.GetObjects(ctx, taxiiclient.ObjectsQuery{}, func(taxiiclient.ObjectsPage) error { return nil })
	if !errors.As(err, &te) || te.Status != http.StatusNotFound {
		t.Errorf("missing collection: %v", err)
	}
	// Bearer tokens.
	secret, _, err := access.CreateToken(ctx, e.st, "cli", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl.User, cl.Password, cl.Token = "", "", secret
	if _, err := cl.Status(ctx, st.ID); err != nil {
		t.Errorf("status with a bearer token: %v", err)
	}
}

// objsN returns n valid indicators.
func objsN(n int) []json.RawMessage {
	var objs []json.RawMessage
	for i := 1; i <= n; i++ {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"}`, indicatorID(i), i)))
	}
	return objs
}
