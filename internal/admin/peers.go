package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
)

// Peer is the admin API's view of a federation peer: credentials are
// write-only (sealed at rest), never returned.
type Peer struct {
	Name         string      `json:"name"`
	URL          string      `json:"url"`
	Organisation string      `json:"organisation"`
	User         string      `json:"user,omitempty"`
	Credentials  bool        `json:"credentials"` // sealed credentials are stored
	CA           string      `json:"ca,omitempty"`
	Cert         string      `json:"cert,omitempty"`
	Created      time.Time   `json:"created"`
	Links        []Link      `json:"links"`
	Rejections   []Rejection `json:"rejections,omitempty"`
}

// Link is the admin API's view of a peer link and its status.
type Link struct {
	ID          string     `json:"id"`
	Direction   string     `json:"direction"`
	Local       string     `json:"local"`
	Remote      string     `json:"remote"`
	Interval    string     `json:"interval"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LagSeconds  float64    `json:"lag_seconds"`
	// LagObjects is how many objects behind the link was at its last run
	// (pull: the peer's feed changes not applied; push: local objects not
	// sent); null when unknown (a polling pull link, or no run yet).
	LagObjects *int64 `json:"lag_objects"`
	Synced     int64  `json:"synced"`
	// DeletionsSent counts the deletions a push link has sent the peer
	// (a DELETE the peer answered 404 included); DeletionsPosition is the
	// local change-log sequence number they stand at. Push links only.
	DeletionsSent     *int64 `json:"deletions_sent,omitempty"`
	DeletionsPosition *int64 `json:"deletions_position,omitempty"`
}

// Rejection is an object a link refused.
type Rejection struct {
	Link     string    `json:"link"`
	Kind     string    `json:"kind"`
	ObjectID string    `json:"object_id"`
	Version  string    `json:"version"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

var errNoPeers = errors.New("this store keeps no peers")

func (h *Handler) peerRoutes(s *federation.Sealer) {
	h.sealer = s
	h.mux.HandleFunc("GET /admin/peers", h.wrap("", h.listPeers))
	h.mux.HandleFunc("POST /admin/peers", h.wrap("admin.peer.create", h.createPeer))
	h.mux.HandleFunc("GET /admin/peers/{name}", h.wrap("", h.showPeer))
	h.mux.HandleFunc("DELETE /admin/peers/{name}", h.wrap("admin.peer.delete", h.deletePeer))
}

func (h *Handler) peers() (store.Peers, error) {
	ps, ok := h.store.(store.Peers)
	if !ok {
		return nil, errNoPeers
	}
	return ps, nil
}

func (h *Handler) peerView(r *http.Request, ps store.Peers, p *store.Peer, rejections int) (Peer, error) {
	v := Peer{Name: p.Name, URL: p.URL, Organisation: p.Organisation, User: p.User, Credentials: len(p.Secret) > 0, CA: p.CA, Cert: p.Cert, Created: p.Created, Links: []Link{}}
	links, err := ps.Links(r.Context(), p.Name)
	if err != nil {
		return v, err
	}
	now := h.now()
	for _, l := range links {
		lv := Link{ID: l.ID, Direction: l.Direction, Local: l.Local, Remote: l.Remote, Interval: l.Interval.String(), LastError: l.LastError, Synced: l.Synced}
		if !l.LastSuccess.IsZero() {
			t := l.LastSuccess
			lv.LastSuccess, lv.LagSeconds = &t, now.Sub(t).Seconds()
		}
		if !l.LastErrorAt.IsZero() {
			t := l.LastErrorAt
			lv.LastErrorAt = &t
		}
		if n := l.LagObjects; n >= 0 && (!l.LastSuccess.IsZero() || !l.LastErrorAt.IsZero()) {
			lv.LagObjects = &n
		}
		if up, ok := h.store.(store.Updater); ok && l.Direction == store.LinkPush {
			seq, sent, err := federation.PushDeletions(r.Context(), up, l.Local, l.ID)
			if err != nil {
				return v, err
			}
			lv.DeletionsSent, lv.DeletionsPosition = &sent, &seq
		}
		v.Links = append(v.Links, lv)
	}
	if rejections > 0 {
		rs, err := ps.Rejections(r.Context(), p.Name, rejections)
		if err != nil {
			return v, err
		}
		for _, x := range rs {
			v.Rejections = append(v.Rejections, Rejection{Link: x.Link, Kind: x.Kind, ObjectID: x.ObjectID, Version: x.Version, Reason: x.Reason, At: x.At})
		}
	}
	return v, nil
}

func (h *Handler) listPeers(r *http.Request, _ *access.Principal) (int, any, error) {
	ps, err := h.peers()
	if err != nil {
		return 0, nil, err
	}
	list, err := ps.ListPeers(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]Peer, 0, len(list))
	for _, p := range list {
		v, err := h.peerView(r, ps, p, 0)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, v)
	}
	return http.StatusOK, out, nil
}

func (h *Handler) showPeer(r *http.Request, _ *access.Principal) (int, any, error) {
	ps, err := h.peers()
	if err != nil {
		return 0, nil, err
	}
	p, err := ps.GetPeer(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	v, err := h.peerView(r, ps, p, 100)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

func (h *Handler) createPeer(r *http.Request, _ *access.Principal) (int, any, error) {
	ps, err := h.peers()
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name         string `json:"name"`
		URL          string `json:"url"`
		Organisation string `json:"organisation"` // name or identity id
		User         string `json:"user"`
		Password     string `json:"password"`
		Token        string `json:"token"`
		CA           string `json:"ca"`
		Cert         string `json:"cert"`
		Key          string `json:"key"`
		Links        []struct {
			ID        string `json:"id"`
			Direction string `json:"direction"`
			Local     string `json:"local"`
			Remote    string `json:"remote"`
			Interval  string `json:"interval"`
		} `json:"links"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	org, err := h.store.GetOrganisation(r.Context(), in.Organisation)
	if err != nil {
		return 0, nil, fmt.Errorf("organisation %q: %w", in.Organisation, err)
	}
	creds := federation.Credentials{Password: in.Password, Token: in.Token, ClientKey: in.Key}
	var secret []byte
	if creds != (federation.Credentials{}) {
		if h.sealer == nil {
			return 0, nil, fmt.Errorf("%w: %w", store.ErrInvalid, federation.ErrNoKey)
		}
		if secret, err = h.sealer.Seal(in.Name, creds); err != nil {
			return 0, nil, err
		}
	}
	var links []*store.Link
	for i, l := range in.Links {
		var iv time.Duration
		if l.Interval != "" {
			if iv, err = time.ParseDuration(l.Interval); err != nil || iv < 0 {
				return 0, nil, fmt.Errorf("link %d: interval %q: %w", i+1, l.Interval, store.ErrInvalid)
			}
		}
		col, err := h.store.GetCollection(r.Context(), l.Local)
		if err != nil {
			return 0, nil, fmt.Errorf("link %d: local collection %q: %w", i+1, l.Local, err)
		}
		id := l.ID
		if id == "" {
			id = fmt.Sprintf("%s-%s-%d", in.Name, l.Direction, i+1)
		}
		links = append(links, &store.Link{ID: id, Peer: in.Name, Direction: l.Direction, Local: col.ID, Remote: l.Remote, Interval: iv})
	}
	p := &store.Peer{Name: in.Name, URL: in.URL, Organisation: org.ID, User: in.User, Secret: secret, CA: in.CA, Cert: in.Cert}
	if err := ps.CreatePeer(r.Context(), p); err != nil {
		return 0, nil, err
	}
	for _, l := range links {
		if err := ps.AddLink(r.Context(), l); err != nil {
			// The peer is not left half made.
			_ = ps.DeletePeer(r.Context(), p.Name)
			return 0, nil, err
		}
	}
	v, err := h.peerView(r, ps, p, 0)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, v, nil
}

func (h *Handler) deletePeer(r *http.Request, _ *access.Principal) (int, any, error) {
	ps, err := h.peers()
	if err != nil {
		return 0, nil, err
	}
	if err := ps.DeletePeer(r.Context(), r.PathValue("name")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
