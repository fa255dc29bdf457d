// Package federation moves STIX objects between Mitra and other TAXII 2.1
// servers: a pull stores a remote collection's objects in a local one
// through the same checks as a TAXII POST, with its cursor in the same
// transaction; a push sends what a principal may see of a local
// collection to a remote one.
package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// ErrConcurrentPull: another pull of the same link moved its cursor
// meanwhile; this one stops rather than overwrite it.
var ErrConcurrentPull = errors.New("another pull of this link advanced its cursor")

// PullStore is what a pull needs of the local store.
type PullStore interface {
	store.Updater
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
}

// PullStats counts what a pull did.
type PullStats struct {
	Pages      int
	Received   int // objects handed over by the client (repeats dropped)
	Added      int
	Duplicates int // already stored, identical
	Refused    int // invalid, or refused by ownership or conflict
	Repeated   int // sent again by the server and dropped by the client
	// Deleted counts local versions deleted because the peer deleted them
	// (change-feed links only).
	Deleted int
	// Resyncs counts full resynchronisations after an expired feed
	// position (410).
	Resyncs int
	// Behind is how many changes of the peer's feed a link run left
	// unapplied (LagUnknown for a link that polls added_after).
	Behind int64
	// Failures are the reasons of the first 20 refusals.
	Failures []store.StatusDetail
}

func (s *PullStats) refuse(d store.StatusDetail) {
	s.Refused++
	if len(s.Failures) < 20 {
		s.Failures = append(s.Failures, d)
	}
}

// tally counts what happened to a page's checked objects (refused by the
// checks, refused by the store, duplicates, added) and returns the ids
// added, for the audit log.
func (s *PullStats) tally(checked taxii.Checked, results []store.AddResult) []string {
	for _, f := range checked.Failures {
		s.refuse(f)
	}
	var added []string
	for i, r := range results {
		switch {
		case r.Err != nil:
			s.refuse(store.StatusDetail{ID: checked.Objects[i].ID, Version: r.Version, Message: r.Err.Error()})
		case r.Duplicate:
			s.Duplicates++
		default:
			s.Added++
			added = append(added, checked.Objects[i].ID)
		}
	}
	return added
}

// withoutExercise moves exercise objects (stix.IsExercise) to the
// refusals: drill data never crosses a real federation link.
func withoutExercise(c taxii.Checked) taxii.Checked {
	if !slices.ContainsFunc(c.Objects, func(o store.Object) bool { return stix.IsExercise(o.Raw) }) {
		return c
	}
	kept := make([]store.Object, 0, len(c.Objects))
	for _, o := range c.Objects {
		if stix.IsExercise(o.Raw) {
			c.Failures = append(c.Failures, store.StatusDetail{ID: o.ID, Version: o.VersionRaw, Message: "refused: exercise data does not cross a real federation link"})
			continue
		}
		kept = append(kept, o)
	}
	c.Objects = kept
	return c
}

// anonymousOrganisations lists the organisations whose sightings are
// shown with the anonymous identity outside them.
func anonymousOrganisations(ctx context.Context, st interface {
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
}) ([]string, error) {
	orgs, err := st.ListOrganisations(ctx)
	if err != nil {
		return nil, err
	}
	var anonymous []string
	for _, o := range orgs {
		if o.AnonymiseSightings {
			anonymous = append(anonymous, o.ID)
		}
	}
	return anonymous, nil
}

// Puller pulls one remote collection into one local collection.
type Puller struct {
	Client *taxiiclient.Client
	Store  PullStore
	// Check is the TAXII POST path's validation and ownership (taxii.Server.Check).
	Check func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)
	// Principal is who the objects are stored as: its organisation is the
	// submitter, and a relay role keeps other organisations' created_by_ref
	// (the relay is audited).
	Principal  *access.Principal
	Collection *store.Collection
	// Key names the cursor in the store (CursorKey).
	Key   string
	Query taxiiclient.ObjectsQuery
	// OnPage, when set, sees the running totals after each stored page.
	OnPage func(PullStats)
	// Label names the pull in the audit log (the command or link).
	Label string
	// Link, when set, makes this the pull of a peer link: every object
	// stored is owned by the link's peer (PeerOwner), so that its new
	// versions, revocations and deletes are accepted through that peer's
	// links only; each
	// added version records its provenance and each refusal is kept as a
	// rejection, in the transaction that stores the page.
	Link *store.Link
	// Now is the clock of provenance and rejections; time.Now when nil.
	Now func() time.Time
}

// PeerOwner is the recorded owner of the objects a peer's links brought:
// not an organisation, so that no local writer and no other peer can
// version or delete them (STIX 2.1 §3.6 ownership, carried across the
// border). It is the peer rather than the link, so that the same object
// mirrored into two local collections from one peer is not refused.
func PeerOwner(peer string) string { return "federation-peer:" + peer }

// rejectionKind classifies a refusal for peer show.
func rejectionKind(err error, msg string) string {
	switch {
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrForbidden):
		return "ownership"
	case err == nil && len(msg) >= 8 && msg[:8] == "refused:":
		return "ownership"
	}
	return "invalid"
}

// CursorKey is the store key of the cursor of a pull from objectsURL
// (with the given type filter) into the local collection.
func CursorKey(localCollection, objectsURL string, types []string) string {
	k := "federation/pull/" + localCollection + "/" + objectsURL
	for _, t := range types {
		k += "|" + t
	}
	return k
}

// Run pulls until the remote collection has nothing more. Each page's
// objects and the cursor after them are committed together, so an
// interrupted pull (kill -9 included) resumes where the last commit left
// it, with no object lost or stored twice.
func (p *Puller) Run(ctx context.Context) (PullStats, error) {
	var stats PullStats
	if _, write := access.CollectionAccess(p.Principal, p.Collection); !write {
		return stats, fmt.Errorf("collection %s: organisation %s may not write to it: %w", p.Collection.ID, p.Principal.Organisation, store.ErrForbidden)
	}
	var stored []byte
	err := p.Store.Update(ctx, p.Collection.ID, func(ctx context.Context, tx store.Tx) error {
		var err error
		stored, err = tx.Cursor(ctx, p.Key)
		return err
	})
	if err != nil {
		return stats, fmt.Errorf("read pull cursor: %w", err)
	}
	var cur taxiiclient.Cursor
	if len(stored) > 0 {
		if err := json.Unmarshal(stored, &cur); err != nil {
			return stats, fmt.Errorf("pull cursor %s: %w", p.Key, err)
		}
	}
	_, err = p.Client.Pull(ctx, p.Query, cur, func(ctx context.Context, page taxiiclient.PullPage) error {
		checked, err := p.Check(ctx, p.Principal, page.Objects)
		if err != nil {
			return err
		}
		if p.Link != nil {
			checked = withoutExercise(checked)
			for i := range checked.Objects {
				// A local organisation's own identity object stays that
				// organisation's: a peer must not own it first.
				if o := &checked.Objects[i]; o.Owner != o.ID {
					o.Owner = PeerOwner(p.Link.Peer)
				}
			}
		}
		next, err := json.Marshal(page.Cursor)
		if err != nil {
			return err
		}
		var results []store.AddResult
		err = p.Store.Update(ctx, p.Collection.ID, func(ctx context.Context, tx store.Tx) error {
			now, err := tx.Cursor(ctx, p.Key)
			if err != nil {
				return err
			}
			if !bytes.Equal(now, stored) {
				return ErrConcurrentPull
			}
			// A link's refusals tell a conflict (the same version, other
			// content) from an ownership refusal: the stored latest
			// versions, read before the page is added.
			var latest map[string]store.Entry
			if p.Link != nil && len(checked.Objects) > 0 {
				ids := make([]string, len(checked.Objects))
				for i := range checked.Objects {
					ids[i] = checked.Objects[i].ID
				}
				if latest, err = tx.Latest(ctx, ids); err != nil {
					return err
				}
			}
			if len(checked.Objects) > 0 {
				if results, err = tx.Add(ctx, checked.Objects); err != nil {
					return err
				}
			}
			if p.Link != nil {
				if err := p.recordLink(ctx, tx, checked, results, latest); err != nil {
					return err
				}
			}
			return tx.SetCursor(ctx, p.Key, next)
		})
		if err != nil {
			return fmt.Errorf("store pulled page: %w", err)
		}
		stored = next
		stats.Pages++
		stats.Received += len(page.Objects)
		stats.Repeated += page.Repeated
		added := stats.tally(checked, results)
		if err := p.audit(ctx, added, checked, len(page.Objects)); err != nil {
			return err
		}
		if p.OnPage != nil {
			p.OnPage(stats)
		}
		return nil
	})
	return stats, err
}

// recordLink records, in the page's transaction, where the added versions
// came from and why the others were refused.
func (p *Puller) recordLink(ctx context.Context, tx store.Tx, checked taxii.Checked, results []store.AddResult, latest map[string]store.Entry) error {
	ftx, ok := tx.(store.FederationTx)
	if !ok {
		return fmt.Errorf("link %s: the store cannot record provenance", p.Link.ID)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	at := now().UTC()
	var prov []store.Provenance
	var rej []store.Rejection
	for _, f := range checked.Failures {
		rej = append(rej, store.Rejection{Link: p.Link.ID, Peer: p.Link.Peer, Kind: rejectionKind(nil, f.Message), ObjectID: f.ID, Version: f.Version, Reason: f.Message, At: at})
	}
	for i, r := range results {
		o := &checked.Objects[i]
		switch {
		case r.Err != nil:
			x := store.Rejection{Link: p.Link.ID, Peer: p.Link.Peer, Kind: rejectionKind(r.Err, ""), ObjectID: o.ID, Version: r.Version, Reason: r.Err.Error(), At: at}
			// Same id and modified, other content: the first copy is kept.
			if e, ok := latest[o.ID]; ok && o.VersionRaw != "" && e.VersionRaw == o.VersionRaw && !bytes.Equal(e.Raw, o.Raw) {
				x.Kind = "conflict"
				x.Reason = "conflict: the same id and modified as the stored copy (submitted by " + e.Submitter + ") with other content; the first copy is kept"
			}
			rej = append(rej, x)
		case !r.Duplicate:
			prov = append(prov, store.Provenance{ObjectID: o.ID, Version: r.Version, Link: p.Link.ID, Peer: p.Link.Peer, Received: at})
		}
	}
	if err := ftx.RecordProvenance(ctx, prov); err != nil {
		return err
	}
	return ftx.RecordRejections(ctx, rej)
}

func (p *Puller) audit(ctx context.Context, added []string, checked taxii.Checked, received int) error {
	if received == 0 {
		return nil
	}
	path := "taxii pull " + p.Client.ObjectsURL
	recs := []store.AuditRecord{{Principal: p.Label, Organisation: p.Principal.Organisation, Action: "objects.add", Path: path,
		Collection: p.Collection.ID, Objects: added, Detail: fmt.Sprintf("pulled: %d added, %d refused", len(added), len(checked.Failures))}}
	if len(checked.Relayed) > 0 {
		recs = append(recs, store.AuditRecord{Principal: p.Label, Organisation: p.Principal.Organisation, Action: "objects.relay", Path: path,
			Collection: p.Collection.ID, Objects: checked.Relayed, Detail: "pulled on behalf of the organisations in their created_by_ref"})
	}
	return p.Store.AppendAudit(ctx, recs...)
}

// PushStore is what a push needs of the local store.
type PushStore interface {
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
}

// PushStats counts what a push did.
type PushStats struct {
	Envelopes int
	Sent      int
	Succeeded int
	Failed    int
	// Deleted counts the versions a peer link deleted at the remote
	// because they were deleted here (a remote 404 included).
	Deleted int
	// Failures are the remote server's reasons (the first 20).
	Failures []store.StatusDetail
}

// Pusher sends a local collection's objects to a remote collection: only
// what Principal may see of it (access.Decide), with sightings redacted as
// the TAXII server redacts them for Principal.
type Pusher struct {
	Client     *taxiiclient.Client
	Store      PushStore
	Principal  *access.Principal
	Collection *store.Collection
	// Batch is the number of objects per envelope; 500 when zero.
	Batch int
	// AddedAfter, when set, sends only objects added after it.
	AddedAfter time.Time
	// OnEnvelope, when set, sees the running totals after each envelope.
	OnEnvelope func(PushStats)
	Label      string
}

// Run pushes every visible object, envelope by envelope, waiting for each
// envelope's status to complete. Pushing again is harmless: objects the
// remote already holds are successes there.
func (p *Pusher) Run(ctx context.Context) (PushStats, error) {
	var stats PushStats
	if read, _ := access.CollectionAccess(p.Principal, p.Collection); !read {
		return stats, fmt.Errorf("collection %s: organisation %s may not read it: %w", p.Collection.ID, p.Principal.Organisation, store.ErrNotFound)
	}
	batch := p.Batch
	if batch <= 0 {
		batch = 500
	}
	anonymous, err := anonymousOrganisations(ctx, p.Store)
	if err != nil {
		return stats, err
	}
	// Envelopes stay under the API root's max_content_length (TAXII 2.1
	// §4.2.1); when the API root cannot be read, the server's 413 says so.
	var maxBytes int64
	if root, err := p.Client.APIRoot(ctx); err == nil {
		maxBytes = root.MaxContentLength
	}
	after := p.AddedAfter
	for {
		page, err := p.Store.QueryObjects(ctx, p.Collection.ID, store.Query{AddedAfter: after, Limit: batch, WithBody: true,
			Visible: func(e *store.Entry) bool { return access.Decide(p.Principal, p.Collection, e).Allowed }})
		if err != nil {
			return stats, err
		}
		if len(page.Entries) == 0 {
			return stats, nil
		}
		raws, ids := outgoing(p.Principal, page.Entries, anonymous)
		for len(raws) > 0 {
			n := fit(raws, maxBytes)
			if err := p.send(ctx, raws[:n], ids[:n], &stats); err != nil {
				return stats, err
			}
			raws, ids = raws[n:], ids[n:]
		}
		after = page.Entries[len(page.Entries)-1].DateAdded
		if !page.More {
			return stats, nil
		}
	}
}

// outgoing turns a page of entries the reader p may see into what is sent
// to it: the bodies (sightings redacted as the TAXII API redacts them for
// p) and their ids.
func outgoing(p *access.Principal, entries []store.Entry, anonymous []string) ([]json.RawMessage, []string) {
	raws := make([]json.RawMessage, len(entries))
	ids := make([]string, len(entries))
	for i := range entries {
		e := &entries[i]
		raw := e.Raw
		if e.Type == "sighting" {
			raw = access.RedactSighting(p, e, anonymous)
		}
		raws[i], ids[i] = raw, e.ID
	}
	return raws, ids
}

// fit is how many of raws go in one envelope of at most maxBytes (at
// least one; all when maxBytes is zero).
func fit(raws []json.RawMessage, maxBytes int64) int {
	if maxBytes <= 0 {
		return len(raws)
	}
	size := int64(len(`{"objects":[]}`))
	for i, r := range raws {
		size += int64(len(r)) + 1
		if size > maxBytes && i > 0 {
			return i
		}
	}
	return len(raws)
}

// send posts one envelope and waits for its status.
func (p *Pusher) send(ctx context.Context, raws []json.RawMessage, ids []string, stats *PushStats) error {
	st, err := p.Client.Push(ctx, raws)
	if err != nil {
		return fmt.Errorf("push %d objects: %w", len(raws), err)
	}
	stats.Envelopes++
	stats.Sent += len(raws)
	stats.Succeeded += max(st.SuccessCount, len(st.Successes))
	stats.Failed += max(st.FailureCount, len(st.Failures))
	for _, f := range st.Failures {
		if len(stats.Failures) < 20 {
			stats.Failures = append(stats.Failures, f)
		}
	}
	if err := p.Store.AppendAudit(ctx, store.AuditRecord{Principal: p.Label, Organisation: p.Principal.Organisation, Action: "objects.push",
		Path: "taxii push " + p.Client.ObjectsURL, Collection: p.Collection.ID, Objects: ids,
		Detail: fmt.Sprintf("status %s: %d succeeded, %d failed", st.ID, st.SuccessCount, st.FailureCount)}); err != nil {
		return err
	}
	if p.OnEnvelope != nil {
		p.OnEnvelope(*stats)
	}
	return nil
}
