package federation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Sightings flow back (issue 14; issue 18 verdicts). A sighting, or an
// opinion, that names an object mirrored from a peer is feedback on that
// peer's intelligence. It crosses the border only as the anonymous
// identity:
//
//   - its id is re-derived per destination peer with a keyed hash (HMAC-
//     SHA256 under a random key kept in the store), so each of its versions
//     keeps one id at a given peer while the original id, and the same
//     sighting's id at any other peer, cannot be linked to it;
//   - created_by_ref and where_sighted_refs name access.AnonymousIdentity,
//     observed_data_refs (the sighting organisation's own observations)
//     and an opinion's authors are left out, and any other mention of a
//     local organisation's identity is replaced by the anonymous one;
//   - it is sent with the link's batches on the link's schedule, never on
//     its own as it is recorded.
//
// Pull links send it back to the remote collection they pull from (when
// that collection is writable there); push links send it, in the same
// form, with the rest of what the peer may read; and a peer that reads
// the collection itself (TAXII, the change feed) is served the same form
// (PeerReads). Every way it goes only when access.Decide lets the peer's
// organisation read it. Feedback a peer brought (submitted by a peer's
// organisation) was made anonymous where it was recorded and is relayed
// as it came.

// anonymousKeyName is the store cursor holding the key of the per-peer ids.
const anonymousKeyName = "federation/anonymous-id-key"

// feedbackTypes are the object types that flow back.
var feedbackTypes = []string{"sighting", "opinion"}

// cursorIniter is the store transaction's insert-if-absent of a cursor
// (sqlstore's writeTx.InitCursor): every process gets the value stored
// first, however many create it at once.
type cursorIniter interface {
	InitCursor(ctx context.Context, key string, value []byte) ([]byte, error)
}

// anonymousKey reads, or creates once, the key of the per-peer ids. Two
// processes creating it at the same time (on one PostgreSQL database,
// through different collections, so not serialised by Update's lock) must
// agree on it, or a peer would receive one sighting under two ids: the
// key is inserted only if absent and read back in the same transaction.
func anonymousKey(ctx context.Context, st store.Updater, collectionID string) ([]byte, error) {
	var key []byte
	err := st.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, anonymousKeyName)
		if err != nil {
			return err
		}
		if len(b) == 32 {
			key = b
			return nil
		}
		ini, ok := tx.(cursorIniter)
		if !ok {
			return fmt.Errorf("the store cannot create the key safely (no InitCursor)")
		}
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return err
		}
		if key, err = ini.InitCursor(ctx, anonymousKeyName, fresh); err != nil {
			return err
		}
		if len(key) != 32 {
			return fmt.Errorf("cursor %s holds %d bytes, not a 32-byte key", anonymousKeyName, len(key))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("federation: anonymous id key: %w", err)
	}
	return key, nil
}

// peerID is the id a feedback object has at peer: the type of id and a
// UUID (version 4 layout, so nothing tells it from a random one) taken
// from HMAC-SHA256(key, peer, id).
func peerID(key []byte, peer, id string) string {
	typ, _, _ := strings.Cut(id, "--")
	m := hmac.New(sha256.New, key)
	m.Write([]byte(peer))
	m.Write([]byte{0})
	m.Write([]byte(id))
	var u uuid.UUID
	copy(u[:], m.Sum(nil))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return typ + "--" + u.String()
}

// feedbackRefs are the objects a sighting or opinion is about.
type feedbackRefs struct {
	SightingOf string   `json:"sighting_of_ref"`
	ObjectRefs []string `json:"object_refs"`
}

func (f feedbackRefs) ids() []string {
	ids := f.ObjectRefs
	if f.SightingOf != "" {
		ids = append([]string{f.SightingOf}, ids...)
	}
	return ids
}

// feedback tells which entries are feedback on mirrored objects.
type feedback struct {
	owners store.Owners
	// orgs are the local organisations, replaced wherever they appear.
	orgs []string
	// peerOrgs are the organisations peers act as: feedback they
	// submitted was made anonymous where it was recorded, and is relayed
	// unchanged (rewriting it again at every hop would give it a new id
	// at each, and echoes would never stop).
	peerOrgs map[string]bool
	key      []byte
}

// local tells feedback recorded here (rewritten when it leaves) from
// feedback relayed from a peer (left as it came).
func (f *feedback) local(e *store.Entry) bool { return !f.peerOrgs[e.Submitter] }

// newFeedback reads what the feedback rewrite needs.
func newFeedback(ctx context.Context, st PeerReadStore, collectionID string) (*feedback, error) {
	key, err := anonymousKey(ctx, st, collectionID)
	if err != nil {
		return nil, err
	}
	return newFeedbackKey(ctx, st, key)
}

func newFeedbackKey(ctx context.Context, st PeerReadStore, key []byte) (*feedback, error) {
	orgs, err := st.ListOrganisations(ctx)
	if err != nil {
		return nil, err
	}
	peers, err := st.ListPeers(ctx)
	if err != nil {
		return nil, err
	}
	f := &feedback{owners: st, key: key, peerOrgs: map[string]bool{}}
	for _, o := range orgs {
		f.orgs = append(f.orgs, o.ID)
	}
	for _, p := range peers {
		f.peerOrgs[p.Organisation] = true
	}
	return f, nil
}

// about returns, for each entry (index) that is a sighting or opinion
// naming an object mirrored from a peer (owned by PeerOwner of some
// peer), the set of those peers. only, when not empty, keeps feedback on
// that peer's objects only.
func (f *feedback) about(ctx context.Context, entries []store.Entry, only string) (map[int]bool, error) {
	refs := map[int][]string{}
	var all []string
	for i := range entries {
		e := &entries[i]
		if e.Type != "sighting" && e.Type != "opinion" {
			continue
		}
		var r feedbackRefs
		if json.Unmarshal(e.Raw, &r) != nil {
			continue
		}
		refs[i] = r.ids()
		all = append(all, refs[i]...)
	}
	out := map[int]bool{}
	if len(all) == 0 {
		return out, nil
	}
	owners, err := f.owners.ObjectOwners(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("federation: owners of sighted objects: %w", err)
	}
	for i, ids := range refs {
		for _, id := range ids {
			o := owners[id]
			if only != "" && o == PeerOwner(only) || only == "" && strings.HasPrefix(o, PeerOwner("")) {
				out[i] = true
				break
			}
		}
	}
	return out, nil
}

// anonymised returns the entries (indices) that peers receive rewritten
// (when recorded here): feedback on objects mirrored from any peer, and
// feedback none of whose targets is known here yet, which may name a
// peer's object that has not arrived (sent in the clear, it could not be
// taken back when the object turns out to be the peer's).
func (f *feedback) anonymised(ctx context.Context, entries []store.Entry) (map[int]bool, error) {
	out, err := f.about(ctx, entries, "")
	if err != nil {
		return nil, err
	}
	unknown, err := f.unknownTargets(ctx, entries)
	if err != nil {
		return nil, err
	}
	for i := range unknown {
		out[i] = true
	}
	return out, nil
}

// rewrite is the body of a feedback entry as peer receives it.
func (f *feedback) rewrite(e *store.Entry, peer string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Raw, &m); err != nil {
		return nil, fmt.Errorf("federation: %s: %w", e.ID, err)
	}
	anon, _ := json.Marshal(access.AnonymousIdentity)
	id, _ := json.Marshal(peerID(f.key, peer, e.ID))
	m["id"] = id
	m["created_by_ref"] = anon
	if _, ok := m["where_sighted_refs"]; ok {
		m["where_sighted_refs"] = json.RawMessage(`[` + string(anon) + `]`)
	}
	delete(m, "observed_data_refs")
	delete(m, "authors")
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", e.ID, err)
	}
	for _, org := range f.orgs {
		out = bytes.ReplaceAll(out, []byte(`"`+org+`"`), []byte(`"`+access.AnonymousIdentity+`"`))
	}
	return out, nil
}

// outgoingTo is outgoing (what reader pr may see, sightings redacted as
// the TAXII API redacts them) with feedback on mirrored objects rewritten
// for peer. ids are the local ids (for the audit log).
func (f *feedback) outgoingTo(ctx context.Context, pr *access.Principal, peer string, entries []store.Entry, anonymous []string) ([]json.RawMessage, []string, error) {
	raws, ids := outgoing(pr, entries, anonymous)
	fb, err := f.anonymised(ctx, entries)
	if err != nil {
		return nil, nil, err
	}
	for i := range fb {
		if !f.local(&entries[i]) {
			continue
		}
		if raws[i], err = f.rewrite(&entries[i], peer); err != nil {
			return nil, nil, err
		}
	}
	return raws, ids, nil
}

// backPosition is a pull link's feedback position: the date_added of the
// last local sighting or opinion sent back, and the feedback passed over
// whose targets' provenance was not known yet (pending).
type backPosition struct {
	After time.Time `json:"after"`
	// Pending are the ids of local feedback (up to maxPending, oldest
	// dropped first) whose every target was unknown here when the
	// position passed it: a sighting recorded before the peer's object it
	// names arrived. Each run looks at them again: sent back once a
	// target is the peer's, forgotten once the targets are known to be
	// someone else's or the object is gone.
	Pending []string `json:"pending,omitempty"`
}

// dedupe keeps the first of each id, in order.
func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// maxPending bounds the pending feedback a link remembers.
const maxPending = 10000

func backKey(linkID string) string { return CursorKeyOf(linkID) + "/back" }

// BackStats counts what a pull link sent back.
type BackStats struct {
	Sent, Succeeded, Failed int
	// Deleted counts deletions of feedback sent (sendDeletes).
	Deleted int
	// Pending is the feedback waiting for its targets to arrive.
	Pending int
}

// unknownTargets returns the entries (indices) that are sighting or
// opinions none of whose targets this server holds (no owner recorded):
// their provenance, and so whether they are feedback to a peer, is not
// known yet.
func (f *feedback) unknownTargets(ctx context.Context, entries []store.Entry) (map[int]bool, error) {
	refs := map[int][]string{}
	var all []string
	for i := range entries {
		e := &entries[i]
		if !isFeedback(e.Type) {
			continue
		}
		var r feedbackRefs
		if json.Unmarshal(e.Raw, &r) != nil {
			continue
		}
		refs[i] = r.ids()
		all = append(all, refs[i]...)
	}
	out := map[int]bool{}
	if len(all) == 0 {
		return out, nil
	}
	owners, err := f.owners.ObjectOwners(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("federation: owners of sighted objects: %w", err)
	}
	for i, ids := range refs {
		known := false
		for _, id := range ids {
			if owners[id] != "" {
				known = true
				break
			}
		}
		if !known && len(ids) > 0 {
			out[i] = true
		}
	}
	return out, nil
}

// sendBack sends the peer the feedback on its objects recorded in the
// link's local collection since the last run: sightings and opinions the
// peer's organisation may read (access.Decide), not its own, rewritten
// anonymously. The position moves after each batch's status completes.
// Feedback whose targets have not arrived yet is kept pending, not passed
// over (backPosition). A remote collection the link may not write to is
// left alone.
func (r *Runner) sendBack(ctx context.Context, pl *Puller, p *store.Peer) (BackStats, error) {
	var stats BackStats
	l, col := pl.Link, pl.Collection
	rc, err := pl.Client.Collection(ctx)
	if err != nil {
		return stats, fmt.Errorf("link %s: remote collection: %w", l.ID, err)
	}
	if !rc.CanWrite {
		return stats, nil
	}
	reader, err := r.principal(ctx, p, access.RoleReadOnly)
	if err != nil {
		return stats, err
	}
	if read, _ := access.CollectionAccess(reader, col); !read {
		return stats, nil
	}
	fb, err := newFeedback(ctx, r.Store, col.ID)
	if err != nil {
		return stats, err
	}
	// Deletions first: a version deleted since the last run is then not
	// sent again below (it is gone), and one sent earlier is removed.
	if stats.Deleted, err = r.sendDeletes(ctx, pl.Client, p, l, col, reader, fb); err != nil {
		return stats, err
	}
	anonymous, err := anonymousOrganisations(ctx, r.Store)
	if err != nil {
		return stats, err
	}
	key := backKey(l.ID)
	var pos backPosition
	err = r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, key)
		if err != nil || len(b) == 0 {
			return err
		}
		return json.Unmarshal(b, &pos)
	})
	if err != nil {
		return stats, fmt.Errorf("link %s: read feedback position: %w", l.ID, err)
	}
	stats.Pending = len(pos.Pending)
	visible := func(e *store.Entry) bool {
		return e.Submitter != p.Organisation && access.Decide(reader, col, e).Allowed
	}
	// examine returns what of entries goes back now, and the ids whose
	// targets are still unknown.
	examine := func(entries []store.Entry) (raws []json.RawMessage, ids, pending []string, err error) {
		about, err := fb.about(ctx, entries, p.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		unknown, err := fb.unknownTargets(ctx, entries)
		if err != nil {
			return nil, nil, nil, err
		}
		for i := range entries {
			e := entries[i]
			if unknown[i] && fb.local(&e) {
				pending = append(pending, e.ID)
				continue
			}
			if !about[i] {
				continue
			}
			// Redacted first, as for any reader, then rewritten when it
			// was recorded here.
			e.Raw = access.RedactSighting(reader, &e, anonymous)
			raw := json.RawMessage(e.Raw)
			if fb.local(&e) {
				if raw, err = fb.rewrite(&e, p.Name); err != nil {
					return nil, nil, nil, err
				}
			}
			raws, ids = append(raws, raw), append(ids, e.ID)
		}
		return raws, ids, pending, nil
	}
	send := func(raws []json.RawMessage, ids []string, next backPosition) error {
		if len(raws) > 0 {
			st, err := pl.Client.Push(ctx, raws)
			if err != nil {
				return fmt.Errorf("link %s: send back %d sightings and opinions: %w", l.ID, len(raws), err)
			}
			stats.Sent += len(raws)
			stats.Succeeded += max(st.SuccessCount, len(st.Successes))
			stats.Failed += max(st.FailureCount, len(st.Failures))
			if err := r.Store.AppendAudit(ctx, store.AuditRecord{Principal: "peer:" + p.Name, Organisation: p.Organisation, Action: "objects.push",
				Path: "peer feedback " + pl.Client.ObjectsURL, Collection: col.ID, Objects: ids,
				Detail: fmt.Sprintf("link %s: sightings and opinions sent back anonymously: status %s: %d succeeded, %d failed", l.ID, st.ID, st.SuccessCount, st.FailureCount)}); err != nil {
				return err
			}
			if len(st.Failures) > 0 {
				at := r.now().UTC()
				rej := make([]store.Rejection, len(st.Failures))
				for i, f := range st.Failures {
					rej[i] = store.Rejection{Link: l.ID, Peer: p.Name, Kind: "remote", ObjectID: f.ID, Version: f.Version, Reason: f.Message, At: at}
				}
				if err := r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
					if ftx, ok := tx.(store.FederationTx); ok {
						return ftx.RecordRejections(ctx, rej)
					}
					return nil
				}); err != nil {
					return err
				}
			}
		}
		next.Pending = dedupe(next.Pending)
		if len(next.Pending) > maxPending {
			next.Pending = next.Pending[len(next.Pending)-maxPending:]
		}
		b, _ := json.Marshal(next)
		if err := r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
			return tx.SetCursor(ctx, key, b)
		}); err != nil {
			return fmt.Errorf("link %s: store feedback position: %w", l.ID, err)
		}
		pos, stats.Pending = next, len(next.Pending)
		return nil
	}
	// The feedback pending from earlier runs, whose targets may have
	// arrived since (with this very run's pull).
	if len(pos.Pending) > 0 {
		page, err := r.Store.QueryObjects(ctx, col.ID, store.Query{IDs: pos.Pending, Limit: len(pos.Pending), WithBody: true, Types: feedbackTypes, Visible: visible})
		if err != nil {
			return stats, err
		}
		raws, ids, pending, err := examine(page.Entries)
		if err != nil {
			return stats, err
		}
		if err := send(raws, ids, backPosition{After: pos.After, Pending: pending}); err != nil {
			return stats, err
		}
	}
	for {
		page, err := r.Store.QueryObjects(ctx, col.ID, store.Query{AddedAfter: pos.After, Limit: 500, WithBody: true, Types: feedbackTypes, Visible: visible})
		if err != nil {
			return stats, err
		}
		if len(page.Entries) == 0 {
			return stats, nil
		}
		raws, ids, pending, err := examine(page.Entries)
		if err != nil {
			return stats, err
		}
		next := backPosition{After: page.Entries[len(page.Entries)-1].DateAdded, Pending: append(slices.Clone(pos.Pending), pending...)}
		if err := send(raws, ids, next); err != nil {
			return stats, err
		}
		if !page.More {
			return stats, nil
		}
	}
}

// PeerReadStore is what PeerReads needs of the local store.
type PeerReadStore interface {
	store.Owners
	store.Updater
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	ListPeers(ctx context.Context) ([]*store.Peer, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
}

// PeerReads rewrites what a peer reads over TAXII and the change feed
// (taxii.Config.Outgoing, IncomingIDs): when the reader's organisation is
// a peer's, feedback on mirrored objects is served exactly as the links
// send it (anonymous identity, the per-peer id), so a peer that pulls a
// collection holding sightings of its objects learns no more than the
// links tell it. Everywhere the peer reads, it sees only the per-peer id:
// objects, manifest, versions, the change feed and its tombstones; the
// per-peer id can be asked for like any id, and the local one answers as
// a missing object does.
type PeerReads struct {
	Store PeerReadStore
	mu    sync.Mutex
	key   []byte
}

// isFeedback tells the types that flow back.
func isFeedback(typ string) bool { return typ == "sighting" || typ == "opinion" }

// peerOf is the peer reader p is: the first by name mapped to its
// organisation; "" when p is not a peer.
func (r *PeerReads) peerOf(ctx context.Context, p *access.Principal) (string, error) {
	if p.Organisation == "" {
		return "", nil
	}
	peers, err := r.Store.ListPeers(ctx)
	if err != nil {
		return "", err
	}
	peer := ""
	for _, x := range peers {
		if x.Organisation == p.Organisation && (peer == "" || x.Name < peer) {
			peer = x.Name
		}
	}
	return peer, nil
}

// feedback reads the key (once per process) and what the rewrite needs.
func (r *PeerReads) feedback(ctx context.Context, c *store.Collection) (*feedback, error) {
	r.mu.Lock()
	key := r.key
	r.mu.Unlock()
	if key == nil {
		var err error
		if key, err = anonymousKey(ctx, r.Store, c.ID); err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.key = key
		r.mu.Unlock()
	}
	return newFeedbackKey(ctx, r.Store, key)
}

// rewritten returns, of ids (local feedback of c), those served to peers
// under their per-peer ids: feedback on mirrored objects, decided on the
// latest version's body, or for an object deleted altogether on the mark
// its deletion left (MarkDeleted).
func (r *PeerReads) rewritten(ctx context.Context, fb *feedback, c *store.Collection, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	page, err := r.Store.QueryObjects(ctx, c.ID, store.Query{IDs: ids, Limit: len(ids), WithBody: true})
	if err != nil {
		return nil, err
	}
	about, err := fb.anonymised(ctx, page.Entries)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for i, e := range page.Entries {
		found[e.ID] = true
		if about[i] && fb.local(&page.Entries[i]) {
			out[e.ID] = true
		}
	}
	var gone []string
	for _, id := range ids {
		if !found[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return out, nil
	}
	marks, err := deletedMarks(ctx, r.Store, c.ID, gone)
	if err != nil {
		return nil, err
	}
	for id := range marks {
		out[id] = true
	}
	return out, nil
}

// Rewrite implements taxii.Config.Outgoing. Entries without a body
// (manifest, versions, tombstones) get the per-peer id only.
func (r *PeerReads) Rewrite(ctx context.Context, p *access.Principal, c *store.Collection, entries []store.Entry) error {
	hasFeedback := false
	for i := range entries {
		if isFeedback(entries[i].Type) {
			hasFeedback = true
			break
		}
	}
	if !hasFeedback {
		return nil
	}
	peer, err := r.peerOf(ctx, p)
	if err != nil || peer == "" {
		return err
	}
	fb, err := r.feedback(ctx, c)
	if err != nil {
		return err
	}
	about, err := fb.anonymised(ctx, entries)
	if err != nil {
		return err
	}
	var bodiless []string
	seen := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		if isFeedback(e.Type) && e.Raw == nil && fb.local(e) && !seen[e.ID] {
			seen[e.ID] = true
			bodiless = append(bodiless, e.ID)
		}
	}
	ids, err := r.rewritten(ctx, fb, c, bodiless)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if !fb.local(e) {
			continue
		}
		switch {
		case about[i]:
			raw, err := fb.rewrite(e, peer)
			if err != nil {
				return err
			}
			e.Raw, e.ID = raw, peerID(fb.key, peer, e.ID)
		case e.Raw == nil && ids[e.ID]:
			e.ID = peerID(fb.key, peer, e.ID)
		}
	}
	return nil
}

// LocalIDs implements taxii.Config.IncomingIDs: for a peer reader, the
// per-peer id of local feedback on mirrored objects stands for its local
// id, and that local id for nothing. Finding which local object a per-peer
// id stands for takes one pass over the collection's local feedback of
// that type (the id is a keyed hash, not a lookup key), done only when a
// peer names a feedback id the collection does not hold.
func (r *PeerReads) LocalIDs(ctx context.Context, p *access.Principal, c *store.Collection, ids []string) ([]string, error) {
	var fbIDs []string
	for _, id := range ids {
		if typ, _, _ := strings.Cut(id, "--"); isFeedback(typ) {
			fbIDs = append(fbIDs, id)
		}
	}
	if len(fbIDs) == 0 {
		return ids, nil
	}
	peer, err := r.peerOf(ctx, p)
	if err != nil || peer == "" {
		return ids, err
	}
	fb, err := r.feedback(ctx, c)
	if err != nil {
		return nil, err
	}
	// Local ids the peer knows under another id.
	held, err := r.Store.QueryObjects(ctx, c.ID, store.Query{IDs: fbIDs, Limit: len(fbIDs)})
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	var local []string
	for i := range held.Entries {
		e := &held.Entries[i]
		present[e.ID] = true
		if fb.local(e) {
			local = append(local, e.ID)
		}
	}
	hidden, err := r.rewritten(ctx, fb, c, local)
	if err != nil {
		return nil, err
	}
	// Per-peer ids: which local feedback has them.
	want := map[string]bool{}
	types := map[string]bool{}
	for _, id := range fbIDs {
		if !present[id] {
			want[id] = true
			typ, _, _ := strings.Cut(id, "--")
			types[typ] = true
		}
	}
	mapped := map[string]string{}
	if len(want) > 0 {
		var ts []string
		for t := range types {
			ts = append(ts, t)
		}
		found, err := r.Store.QueryObjects(ctx, c.ID, store.Query{Types: ts, Limit: len(want), Visible: func(e *store.Entry) bool {
			return fb.local(e) && want[peerID(fb.key, peer, e.ID)]
		}})
		if err != nil {
			return nil, err
		}
		var cand []string
		for _, e := range found.Entries {
			cand = append(cand, e.ID)
		}
		ok, err := r.rewritten(ctx, fb, c, cand)
		if err != nil {
			return nil, err
		}
		for _, id := range cand {
			if ok[id] {
				mapped[peerID(fb.key, peer, id)] = id
			}
		}
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		switch {
		case hidden[id]:
		case mapped[id] != "":
			out = append(out, mapped[id])
		case want[id]:
			// Neither held here nor a per-peer id: missing, as it is.
			out = append(out, id)
		default:
			out = append(out, id)
		}
	}
	return out, nil
}

// unknownPeer marks deleted feedback whose targets were unknown: not a
// peer's name in practice (a peer so named would only get DELETEs of
// ids it never received, answered 404).
const unknownPeer = "? unknown"

// deletedKey is the cursor marking local feedback on mirrored objects
// that was deleted (MarkDeleted).
func deletedKey(id string) string { return "federation/deleted-feedback/" + id }

// plainDeletedKey is the cursor marking deleted local feedback that went
// to peers under its own id (about no peer's object): without it a push
// link cannot tell such a tombstone from one of feedback deleted before
// marks existed, which may have gone under per-peer ids, and sends no
// DELETE rather than name a local id the peer never saw.
func plainDeletedKey(id string) string { return "federation/deleted-feedback-plain/" + id }

// MarkDeleted implements taxii.Config.BeforeDelete: when local feedback
// on a mirrored object is about to be deleted, in the deleting
// transaction, it leaves a mark naming the peers whose objects it is
// about, so that its tombstone still travels under the per-peer id (in
// the change feed, and as a DELETE sent by the links, sendDeletes) once
// no version is left to tell what it was about. Marks are a few bytes
// per deleted feedback object and are kept.
func (r *PeerReads) MarkDeleted(ctx context.Context, tx store.Tx, c *store.Collection, id string) error {
	return markDeleted(ctx, r.Store, tx, id)
}

func markDeleted(ctx context.Context, st PeerReadStore, tx store.Tx, id string) error {
	if typ, _, _ := strings.Cut(id, "--"); !isFeedback(typ) {
		return nil
	}
	latest, err := tx.Latest(ctx, []string{id})
	if err != nil {
		return err
	}
	e, ok := latest[id]
	if !ok {
		return nil
	}
	// The key is not needed to decide (nor created inside another
	// transaction).
	fb, err := newFeedbackKey(ctx, st, nil)
	if err != nil {
		return err
	}
	if !fb.local(&e) {
		return nil
	}
	peers, err := fb.peersOf(ctx, &e)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		unknown, err := fb.unknownTargets(ctx, []store.Entry{e})
		if err != nil {
			return err
		}
		if !unknown[0] {
			// Served and pushed under its own id: push links delete it
			// under that id (pushDeletes).
			return tx.SetCursor(ctx, plainDeletedKey(id), []byte("1"))
		}
		// Served anonymously (anonymised), sent back to no pull link.
		peers = []string{unknownPeer}
	}
	b, _ := json.Marshal(peers)
	return tx.SetCursor(ctx, deletedKey(id), b)
}

// peersOf names the peers whose objects feedback entry e is about.
func (f *feedback) peersOf(ctx context.Context, e *store.Entry) ([]string, error) {
	var r feedbackRefs
	if json.Unmarshal(e.Raw, &r) != nil {
		return nil, nil
	}
	ids := r.ids()
	if len(ids) == 0 {
		return nil, nil
	}
	owners, err := f.owners.ObjectOwners(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("federation: owners of sighted objects: %w", err)
	}
	var peers []string
	seen := map[string]bool{}
	for _, id := range ids {
		if name, ok := strings.CutPrefix(owners[id], PeerOwner("")); ok && !seen[name] {
			seen[name] = true
			peers = append(peers, name)
		}
	}
	return peers, nil
}

// deletedMarks reads the marks of ids (MarkDeleted): the peers each is
// about, for the ids that have one.
func deletedMarks(ctx context.Context, st store.Updater, collectionID string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	err := st.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			b, err := tx.Cursor(ctx, deletedKey(id))
			if err != nil {
				return err
			}
			var peers []string
			if len(b) > 0 && json.Unmarshal(b, &peers) == nil && len(peers) > 0 {
				out[id] = peers
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("federation: deleted feedback marks: %w", err)
	}
	return out, nil
}

// sendDeletes sends the peer, as TAXII DELETEs of the per-peer ids, the
// deletions of local feedback a pull link's send-back sent it (about the
// peer's objects; push links send every deletion, pushDeletes),
// following the collection's change log from the link's stored position.
// Only tombstones of versions reader may read go; an object the remote no
// longer holds (404) counts as deleted. The position moves after each
// page.
func (r *Runner) sendDeletes(ctx context.Context, cl *taxiiclient.Client, p *store.Peer, l *store.Link, col *store.Collection, reader *access.Principal, fb *feedback) (int, error) {
	feed, ok := r.Store.(store.Feed)
	if !ok {
		return 0, nil
	}
	pos, err := readDeletesPosition(ctx, r.Store, col.ID, l.ID)
	if err != nil {
		return 0, err
	}
	sent := 0
	for {
		page, err := deletionPage(ctx, feed, col.ID, pos.Seq, 500, func(e *store.Entry) bool {
			return isFeedback(e.Type) && fb.local(e) && access.Decide(reader, col, e).Allowed
		})
		if errors.Is(err, store.ErrPositionExpired) && page != nil {
			// Retention passed the position: what was pruned is lost to
			// this link; go on from the oldest change kept.
			pos.Seq = page.Oldest - 1
			continue
		}
		if err != nil {
			return sent, err
		}
		var ids []string
		for _, c := range page.Changes {
			if c.Op == store.OpDelete {
				ids = append(ids, c.ObjectID)
			}
		}
		marks, err := deletedMarks(ctx, r.Store, col.ID, ids)
		if err != nil {
			return sent, err
		}
		var targets []deleteTarget
		for _, c := range page.Changes {
			peers := marks[c.ObjectID]
			if c.Op != store.OpDelete || len(peers) == 0 || !slices.Contains(peers, p.Name) {
				continue
			}
			targets = append(targets, deleteTarget{id: peerID(fb.key, p.Name, c.ObjectID), version: c.VersionRaw, local: c.ObjectID})
		}
		done, refused, err := r.deleteTargetsAt(ctx, cl, p, l, targets)
		sent += len(done)
		if err != nil {
			return sent, err
		}
		if len(done) > 0 {
			if err := r.Store.AppendAudit(ctx, store.AuditRecord{Principal: "peer:" + p.Name, Organisation: p.Organisation, Action: "objects.push",
				Path: "peer feedback deletes " + cl.ObjectsURL, Collection: col.ID, Objects: done,
				Detail: fmt.Sprintf("link %s: deletions of sightings and opinions sent anonymously", l.ID)}); err != nil {
				return sent, err
			}
		}
		if page.Next <= pos.Seq {
			return sent, nil
		}
		next := deletesPosition{Seq: page.Next}
		if err := saveDeletesPosition(ctx, r.Store, col.ID, l.ID, next, refused); err != nil {
			return sent, err
		}
		pos = next
		if !page.More {
			return sent, nil
		}
	}
}

// deleteAt deletes version of id at the peer (TAXII 2.1 §5.7, with
// match[version]). ok when it is gone there: deleted, or not held (404,
// which a retried DELETE also answers once the first went through). A
// lasting refusal (a 4xx other than 404 and 429: no right to delete
// there, DELETE not supported) is returned as a rejection, shown in peer
// show and not retried forever; anything else (5xx and 429 after the
// client's retries, a cut connection) is an error that stops the run
// before its position moves.
func (r *Runner) deleteAt(ctx context.Context, cl *taxiiclient.Client, p *store.Peer, l *store.Link, id, version string) (bool, store.Rejection, error) {
	err := cl.DeleteObject(ctx, id, version)
	var te *taxiiclient.Error
	switch {
	case err == nil || errors.As(err, &te) && te.Status == http.StatusNotFound:
		return true, store.Rejection{}, nil
	case te != nil && te.Status >= 400 && te.Status < 500 && te.Status != http.StatusTooManyRequests:
		return false, store.Rejection{Link: l.ID, Peer: p.Name, Kind: "remote", ObjectID: id, Version: version,
			Reason: "deletion refused: " + te.Error(), At: r.now().UTC()}, nil
	default:
		return false, store.Rejection{}, fmt.Errorf("link %s: delete %s at the peer: %w", l.ID, id, err)
	}
}
