package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// remoteTAXII is the other end of the pull, push and peer tests: a TAXII
// server on a store of its own, whose analyst "peer" may read and write
// each collection it holds.
type remoteTAXII struct {
	st    *sqlite.Store
	srv   http.Handler
	colls []*store.Collection
}

// newRemoteTAXII opens the remote's store (closed when t ends) with the
// user peer (password pw) and one collection per title. The caller serves
// srv (wrapped when it needs to).
func newRemoteTAXII(t *testing.T, pw string, titles ...string) *remoteTAXII {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := access.CreateUser(t.Context(), st, "peer", pw, access.RoleAnalyst, ""); err != nil {
		t.Fatal(err)
	}
	r := &remoteTAXII{st: st}
	for _, title := range titles {
		c := &store.Collection{Title: title, Readers: []string{"peer"}, Writers: []string{"peer"}}
		if err := st.CreateCollection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		r.colls = append(r.colls, c)
	}
	r.srv = taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: newValidator()})
	return r
}

// push adds n indicators (testIndicators) to collection c of the remote
// served at base, as peer, and returns them.
func (r *remoteTAXII) push(t *testing.T, base string, c *store.Collection, pw string, n int) []json.RawMessage {
	t.Helper()
	cl, _ := taxiiclient.NewClient(base+"/api/", c.ID)
	cl.User, cl.Password = "peer", pw
	objs := testIndicators(n)
	if _, err := cl.Push(t.Context(), objs); err != nil {
		t.Fatal(err)
	}
	return objs
}

// testIndicators returns n indicators numbered from 1, one IPv4 address
// each.
func testIndicators(n int) []json.RawMessage {
	var objs []json.RawMessage
	for i := 1; i <= n; i++ {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"}`, i, i)))
	}
	return objs
}

// mustMitra returns a function that runs mitra with envs and returns its
// standard output, failing t when it fails.
func mustMitra(t *testing.T, envs map[string]string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, errOut, err := mitra(t, envs, "", args...)
		if err != nil {
			t.Fatalf("mitra %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
}
