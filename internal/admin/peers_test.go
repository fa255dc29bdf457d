package admin_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// TestPeersAPI: an admin adds a peer with links (its password sealed in
// the store, never returned), lists, shows and removes it; a non-admin is
// refused; without the key, credentials are refused with a clear error.
func TestPeersAPI(t *testing.T) {
	e := newEnv(t)
	col := &store.Collection{Title: "Mirror", Alias: "mirror"}
	if err := e.st.CreateCollection(e.ctx, col); err != nil {
		t.Fatal(err)
	}
	org := &store.Organisation{Name: "Remote CERT"}
	if err := e.st.CreateOrganisation(e.ctx, org); err != nil {
		t.Fatal(err)
	}
	sealer, _ := federation.NewSealer(bytes.Repeat([]byte{1}, 32))
	mount := func(s *federation.Sealer) string {
		srv := taxii.NewServer(taxii.Config{Store: e.st, Auth: access.NewAuthenticator(e.st, nil)})
		srv.Mount(admin.Prefix, admin.NewWith(e.st, srv.Authenticate, admin.Options{PeerSealer: s}))
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		return ts.URL
	}
	base := mount(sealer)
	root := &client{t: t, base: base, auth: func(r *http.Request) { r.SetBasicAuth("root", password) }}
	alice := &client{t: t, base: base, auth: func(r *http.Request) { r.SetBasicAuth("alice", password) }}
	body := map[string]any{"name": "remote", "url": "https://remote.example/api/", "organisation": "Remote CERT", "user": "mirror", "password": "s3cret-peer-pw",
		"links": []map[string]string{{"direction": "pull", "local": "mirror", "remote": "abc", "interval": "1m"}, {"direction": "push", "local": "mirror", "remote": "def"}}}
	alice.do("POST", "/admin/peers", body).wantError(http.StatusForbidden)
	var created admin.Peer
	root.do("POST", "/admin/peers", body).wantJSON(http.StatusCreated, &created)
	if created.Organisation != org.ID || !created.Credentials || len(created.Links) != 2 || created.Links[0].Interval != "1m0s" {
		t.Errorf("created = %+v", created)
	}
	r := root.do("GET", "/admin/peers/remote", nil).want(http.StatusOK)
	if strings.Contains(string(r.body), "s3cret-peer-pw") {
		t.Error("the peer's password was returned")
	}
	p, err := e.st.GetPeer(e.ctx, "remote")
	if err != nil || bytes.Contains(p.Secret, []byte("s3cret-peer-pw")) {
		t.Errorf("stored peer: %v (secret in plaintext?)", err)
	}
	if c, err := sealer.Open("remote", p.Secret); err != nil || c.Password != "s3cret-peer-pw" {
		t.Errorf("sealed credentials: %+v %v", c, err)
	}
	var list []admin.Peer
	root.do("GET", "/admin/peers", nil).wantJSON(http.StatusOK, &list)
	if len(list) != 1 || list[0].Name != "remote" {
		t.Errorf("list = %+v", list)
	}
	root.do("POST", "/admin/peers", body).wantError(http.StatusConflict)
	bad := map[string]any{"name": "bad", "url": "https://x/api/", "organisation": "Remote CERT", "links": []map[string]string{{"direction": "sideways", "local": "mirror", "remote": "x"}}}
	root.do("POST", "/admin/peers", bad).wantError(http.StatusBadRequest)
	if _, err := e.st.GetPeer(e.ctx, "bad"); err == nil {
		t.Error("a peer with a bad link was left behind")
	}
	// Lag in objects: as the last run recorded it; null when unknown (a
	// polling pull link, a link that has not run).
	if err := e.st.SetLinkStatus(e.ctx, created.Links[0].ID, store.LinkStatus{At: time.Now(), LagObjects: 7}); err != nil {
		t.Fatal(err)
	}
	var shown admin.Peer
	root.do("GET", "/admin/peers/remote", nil).wantJSON(http.StatusOK, &shown)
	for _, l := range shown.Links {
		switch {
		case l.ID == created.Links[0].ID && (l.LagObjects == nil || *l.LagObjects != 7):
			t.Errorf("lag of the link that ran: %v, want 7", l.LagObjects)
		case l.ID != created.Links[0].ID && l.LagObjects != nil:
			t.Errorf("lag of a link that never ran: %v, want null", *l.LagObjects)
		}
	}
	// Deletions sent: push links only, as the link's stored position says
	// (the shape federation.PushDeletions reads).
	push := created.Links[1]
	if err := e.st.Update(e.ctx, push.Local, func(ctx context.Context, tx store.Tx) error {
		return tx.SetCursor(ctx, federation.CursorKeyOf(push.ID)+"/deletes", []byte(`{"seq":12,"all":true,"sent":3}`))
	}); err != nil {
		t.Fatal(err)
	}
	root.do("GET", "/admin/peers/remote", nil).wantJSON(http.StatusOK, &shown)
	for _, l := range shown.Links {
		switch {
		case l.ID == push.ID && (l.DeletionsSent == nil || *l.DeletionsSent != 3 || l.DeletionsPosition == nil || *l.DeletionsPosition != 12):
			t.Errorf("deletions of the push link: sent %v at %v, want 3 at 12", l.DeletionsSent, l.DeletionsPosition)
		case l.ID != push.ID && (l.DeletionsSent != nil || l.DeletionsPosition != nil):
			t.Errorf("deletions shown for a pull link: %v at %v", l.DeletionsSent, l.DeletionsPosition)
		}
	}
	root.do("DELETE", "/admin/peers/remote", nil).want(http.StatusNoContent)
	root.do("GET", "/admin/peers/remote", nil).wantError(http.StatusNotFound)

	nokey := &client{t: t, base: mount(nil), auth: func(r *http.Request) { r.SetBasicAuth("root", password) }}
	r = nokey.do("POST", "/admin/peers", body)
	r.wantError(http.StatusBadRequest)
	if !strings.Contains(string(r.body), federation.KeyEnv) {
		t.Errorf("no key: %s", r.body)
	}
}
