package feeds_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

// The inactive list hands out object ids and values: each reader sees the
// flags of exactly the objects it may read (TLP:RED of the submitter,
// AMBER+STRICT of a MISP sharing group's organisations, GREEN of every
// reader), an admin no more than its organisation may read, and a caller
// without a read grant gets the same 404 as for a missing collection.
func TestInactiveListLeaks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b, c, d := w.org("a"), w.org("b"), w.org("c"), w.org("d")
	pa := w.member("alice", a)
	w.member("bob", b)
	w.member("carol", c)
	w.member("dave", d)
	if err := w.st.CreateUser(t.Context(), &store.User{Name: "root", Organisation: b, Role: "admin", PasswordHash: passwordHash()}); err != nil {
		t.Fatal(err)
	}
	if err := w.st.CreateGroup(t.Context(), &store.Group{Name: "partners", Orgs: []string{a, c}}); err != nil {
		t.Fatal(err)
	}
	w.imp.Groups = w.st
	col := w.collection("shared", a, b, c)
	imp := func(opt feeds.Options, body string) {
		src, err := w.imp.Open(t.Context(), pa, opt, strings.NewReader(body), "x")
		if err != nil {
			t.Fatal(err)
		}
		if rep := w.importSource(pa, col, src, opt); rep.Inactive != 1 {
			t.Fatalf("import %s: %+v", body, rep)
		}
	}
	imp(feeds.Options{Format: "text", TLP: "red"}, "10.0.0.1\n")
	imp(feeds.Options{Format: "text", TLP: "green"}, "10.0.0.2\n")
	imp(feeds.Options{Format: "misp"}, `{"Event":{"uuid":"9c2d1e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f","info":"shared","timestamp":"1790000000","distribution":"4",
		"SharingGroup":{"uuid":"1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9","name":"partners"},
		"Attribute":[{"uuid":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","type":"ip-dst","category":"Network activity","to_ids":true,"value":"10.0.0.3","timestamp":"1790000000","distribution":"5"}]}}`)
	h := feeds.NewHandler(feeds.HandlerOptions{Authenticate: w.srv.Authenticate, Importer: w.imp, Lists: w.st, Flags: w.st})
	ts := httptest.NewServer(h)
	defer ts.Close()
	for user, want := range map[string][]string{
		"alice": {"10.0.0.1", "10.0.0.2", "10.0.0.3"},
		"bob":   {"10.0.0.2"},
		"root":  {"10.0.0.2"},
		"carol": {"10.0.0.2", "10.0.0.3"},
	} {
		st, body := apiCall(t, ts, user, "GET", feeds.Prefix+"inactive/"+col, "")
		if st != http.StatusOK {
			t.Errorf("%s: %d %s", user, st, body)
			continue
		}
		for _, v := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			has := strings.Contains(body, `"value":"`+v+`"`)
			if has != strings.Contains(strings.Join(want, ","), v) {
				t.Errorf("%s sees %s: %v (%s)", user, v, has, body)
			}
		}
	}
	st, body := apiCall(t, ts, "dave", "GET", feeds.Prefix+"inactive/"+col, "")
	st2, body2 := apiCall(t, ts, "dave", "GET", feeds.Prefix+"inactive/collection-that-does-not-exist", "")
	if st != http.StatusNotFound || st2 != http.StatusNotFound || strings.ReplaceAll(body, col, "X") != strings.ReplaceAll(body2, "collection-that-does-not-exist", "X") {
		t.Errorf("no read grant: %d %s; missing: %d %s", st, body, st2, body2)
	}
}
