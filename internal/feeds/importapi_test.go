package feeds_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

func apiCall(t *testing.T, ts *httptest.Server, user, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// The import API imports as the caller (the collection's grants apply, a
// collection one may not write to is missing), and admins manage warning
// lists that the next import applies.
func TestImportAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.org("a"), w.org("b")
	w.member("alice", a)
	w.member("bob", b)
	if err := w.st.CreateUser(t.Context(), &store.User{Name: "root", Organisation: a, Role: access.RoleAdmin, PasswordHash: passwordHash()}); err != nil {
		t.Fatal(err)
	}
	col := w.collection("a-only", a)
	h := feeds.NewHandler(feeds.HandlerOptions{Authenticate: w.srv.Authenticate, Importer: w.imp, Scheduler: scheduler(w), Lists: w.st, Flags: w.st})
	ts := httptest.NewServer(h)
	defer ts.Close()
	path := feeds.Prefix + "collections/" + col + "/?format=text&tlp=amber&confidence=70"

	if st, _ := apiCall(t, ts, "", "POST", path, "evil.com\n"); st != http.StatusUnauthorized {
		t.Errorf("anonymous import: %d", st)
	}
	if st, body := apiCall(t, ts, "bob", "POST", path, "evil.com\n"); st != http.StatusNotFound {
		t.Errorf("import into another organisation's collection: %d %s", st, body)
	}
	if st, _ := apiCall(t, ts, "alice", "PUT", feeds.Prefix+"warninglists/own-assets", "81.2.69.0/24\n"); st != http.StatusForbidden {
		t.Errorf("a non-admin changed a warning list: %d", st)
	}
	if st, body := apiCall(t, ts, "root", "PUT", feeds.Prefix+"warninglists/own-assets?description=our+ranges", "81.2.69.0/24\n"); st != http.StatusOK || !strings.Contains(body, `"type":"cidr"`) {
		t.Fatalf("PUT warning list: %d %s", st, body)
	}
	st, body := apiCall(t, ts, "alice", "POST", path, "evil.com\n81.2.69.7\n")
	var rep feeds.Report
	if st != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || rep.Added != 2 || rep.Inactive != 1 || !strings.Contains(rep.Flags[0].Reason, "own-assets") {
		t.Fatalf("import: %d %s", st, body)
	}
	if st, body := apiCall(t, ts, "root", "GET", feeds.Prefix+"inactive/"+col, ""); st != http.StatusOK || !strings.Contains(body, `"value":"81.2.69.7"`) {
		t.Errorf("inactive list: %d %s", st, body)
	}
	// The list survives a restart: a new WarningLists loads it.
	fresh := feeds.NewWarningLists(w.st)
	if err := fresh.Load(t.Context(), w.st); err != nil {
		t.Fatal(err)
	}
	if _, ok := fresh.Match("ip", "81.2.69.200"); !ok {
		t.Error("the stored list is not loaded")
	}
	if st, _ := apiCall(t, ts, "root", "DELETE", feeds.Prefix+"warninglists/own-assets", ""); st != http.StatusNoContent {
		t.Errorf("DELETE list: %d", st)
	}
	if st, body := apiCall(t, ts, "root", "POST", feeds.Prefix+"inactive/"+col+"/rescan", ""); st != http.StatusOK || body != `{"checked":2,"inactive":0}`+"\n" {
		t.Errorf("rescan after the list was deleted: %d %s", st, body)
	}
	if st, _ := apiCall(t, ts, "alice", "POST", feeds.Prefix+"inactive/"+col+"/rescan", ""); st != http.StatusForbidden {
		t.Errorf("a non-admin rescanned: %d", st)
	}
	if _, ok := w.imp.Warnings.Match("ip", "81.2.69.200"); ok {
		t.Error("a deleted list still matches")
	}
	if st, body := apiCall(t, ts, "alice", "POST", feeds.Prefix+"collections/"+col+"/?format=csv&columns=value:9", "a,b\n"); st != http.StatusBadRequest {
		t.Errorf("bad column mapping: %d %s", st, body)
	}
	feed := `{"name":"abuse","url":"https://example.org/list.txt","format":"text","collection":"` + col + `","user":"alice","interval":"1h","options":{"tlp":"green"}}`
	if st, body := apiCall(t, ts, "root", "POST", feeds.Prefix+"feeds", feed); st != http.StatusCreated {
		t.Fatalf("add feed: %d %s", st, body)
	}
	if st, body := apiCall(t, ts, "root", "GET", feeds.Prefix+"feeds", ""); st != http.StatusOK || !strings.Contains(body, `"name":"abuse"`) || !strings.Contains(body, `"tlp":"green"`) {
		t.Errorf("list feeds: %d %s", st, body)
	}
	if st, _ := apiCall(t, ts, "alice", "GET", feeds.Prefix+"feeds", ""); st != http.StatusForbidden {
		t.Errorf("a non-admin listed feeds: %d", st)
	}
	if st, _ := apiCall(t, ts, "root", "DELETE", feeds.Prefix+"feeds/abuse", ""); st != http.StatusNoContent {
		t.Errorf("remove feed: %d", st)
	}
}
