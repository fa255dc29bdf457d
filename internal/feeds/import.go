package feeds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// ErrInvalid marks unusable input or options (HTTP 400).
var ErrInvalid = errors.New("invalid")

// CheckFunc validates raws and applies ownership and markings for p
// exactly as a TAXII POST does: taxii.Server.Check.
type CheckFunc func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)

// Importer stores what a source yields in a collection, through the TAXII
// POST checks, in batches of one transaction each.
type Importer struct {
	Store ImportStore
	Check CheckFunc
	// Warnings flags the indicators whose values are on a warning list
	// (nil: no lists).
	Warnings *WarningLists
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Batch is the number of objects per transaction (500 when zero).
	Batch int
	// Label names the importer in the audit log ("mitra import").
	Label string
	// Groups resolves MISP sharing groups (nil: none map).
	Groups GroupStore
	// HTTP fetches MISP feeds from URLs (http.DefaultClient when nil).
	HTTP *http.Client
}

// Options are what the importing user chooses.
type Options struct {
	// TLP (access.ParseTLP spelling) marks the objects that carry no
	// marking of their own; empty leaves the collection's default.
	TLP string `json:"tlp,omitempty"`
	// Confidence (0-100) is set on the domain and relationship objects
	// that carry none; nil leaves it absent.
	Confidence *int `json:"confidence,omitempty"`
	// Format of the source: stix, misp, misp-feed, csv, text.
	Format string `json:"format,omitempty"`
	// CSV says how to read CSV and plain-text lists.
	CSV CSVOptions `json:"csv,omitzero"`
	// MISP says how MISP sharing groups map onto Mitra.
	MISP MISPOptions `json:"misp,omitzero"`
}

// Report says what an import did.
type Report struct {
	Received  int `json:"received"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
	// Inactive counts the stored objects flagged inactive by a warning
	// list.
	Inactive int `json:"inactive"`
	// Rejections are the first 100 refusals with their reasons.
	Rejections []Rejection `json:"rejections,omitempty"`
	// Flags are the first 100 inactive flags set.
	Flags []Flag `json:"flags,omitempty"`
}

// Rejection is one refused object.
type Rejection struct {
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
}

// Flag is one object kept but flagged inactive.
type Flag struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

const maxListed = 100

func (r *Report) reject(id, reason string) {
	r.Rejected++
	if len(r.Rejections) < maxListed {
		r.Rejections = append(r.Rejections, Rejection{ID: id, Reason: reason})
	}
}

// Add adds o's counts to r.
func (r *Report) Add(o Report) {
	r.Received += o.Received
	r.Added += o.Added
	r.Updated += o.Updated
	r.Unchanged += o.Unchanged
	r.Rejected += o.Rejected
	r.Inactive += o.Inactive
	for _, x := range o.Rejections {
		if len(r.Rejections) < maxListed {
			r.Rejections = append(r.Rejections, x)
		}
	}
	for _, x := range o.Flags {
		if len(r.Flags) < maxListed {
			r.Flags = append(r.Flags, x)
		}
	}
}

// Source yields the objects to import, one raw STIX object at a time; a
// non-nil error ends the import.
type Source struct {
	Objects iter.Seq2[json.RawMessage, error]
	// Volatile, for objects made by a converter (MISP, CSV), are the
	// properties that are not the source's own (created and modified, and
	// valid_from when a list gives no date): an object that differs from
	// the stored latest version only by them is unchanged; a changed one
	// becomes a new version that keeps the stored values (but modified,
	// which moves forward). Empty for STIX, whose versions are the
	// source's.
	Volatile []string
	// Skipped are the source's entries that could not be converted at all
	// (reported as rejected).
	Skipped func() []Rejection
}

func (i *Importer) now() time.Time {
	if i.Now != nil {
		return i.Now().UTC()
	}
	return time.Now().UTC()
}

// Import stores src in the collection as p. progress, when not nil, is
// called after each batch with the running report. Each batch is one
// transaction: an interrupted import keeps the batches before it, and
// running it again stores nothing twice.
func (i *Importer) Import(ctx context.Context, p *access.Principal, collection string, src Source, opt Options, progress func(Report)) (Report, error) {
	var rep Report
	col, err := i.Store.GetCollection(ctx, collection)
	if err != nil {
		return rep, fmt.Errorf("collection %s: %w", collection, err)
	}
	if _, write := access.CollectionAccess(p, col); !write {
		// A collection the caller may not write to is refused as a POST
		// to it would be.
		return rep, fmt.Errorf("collection %s: %w", collection, store.ErrNotFound)
	}
	prep, err := newPreparer(opt)
	if err != nil {
		return rep, err
	}
	size := i.Batch
	if size <= 0 {
		size = 500
	}
	batch := make([]json.RawMessage, 0, size)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		b, err := i.batch(ctx, p, col, batch, src.Volatile)
		if err != nil {
			return err
		}
		rep.Add(b)
		batch = batch[:0]
		if progress != nil {
			progress(rep)
		}
		return nil
	}
	for raw, err := range src.Objects {
		if err != nil {
			return rep, err
		}
		batch = append(batch, prep.prepare(raw))
		if len(batch) == size {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if src.Skipped != nil {
		for _, s := range src.Skipped() {
			rep.Received++
			rep.reject(s.ID, s.Reason)
		}
	}
	return rep, nil
}

// batch checks and stores one batch.
func (i *Importer) batch(ctx context.Context, p *access.Principal, col *store.Collection, raws []json.RawMessage, volatile []string) (Report, error) {
	rep := Report{Received: len(raws)}
	if len(volatile) > 0 {
		var err error
		if raws, err = i.stabilise(ctx, p, col.ID, raws, volatile, &rep); err != nil {
			return rep, err
		}
	}
	checked, err := i.Check(ctx, p, raws)
	if err != nil {
		return rep, err
	}
	for _, f := range checked.Failures {
		rep.reject(f.ID, f.Message)
	}
	if len(checked.Objects) == 0 {
		return rep, nil
	}
	var added []string
	var attempt Report
	err = i.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		attempt, added = Report{}, nil
		ids := make([]string, len(checked.Objects))
		for k := range checked.Objects {
			ids[k] = checked.Objects[k].ID
		}
		latest, err := tx.Latest(ctx, ids)
		if err != nil {
			return err
		}
		results, err := tx.Add(ctx, checked.Objects)
		if err != nil {
			return err
		}
		var flags []store.InactiveFlag
		var cleared []string
		at := i.now()
		for k, r := range results {
			o := &checked.Objects[k]
			switch {
			case r.Err != nil:
				attempt.reject(o.ID, r.Err.Error())
				continue
			case r.Duplicate:
				attempt.Unchanged++
				continue
			}
			if _, ok := latest[o.ID]; ok {
				attempt.Updated++
			} else {
				attempt.Added++
			}
			added = append(added, o.ID)
			if o.Type != "indicator" {
				continue
			}
			if hit, ok := i.Warnings.CheckIndicator(o.Raw); ok {
				flags = append(flags, store.InactiveFlag{ObjectID: o.ID, Collection: col.ID, List: hit.List, Value: hit.Value, Reason: hit.Reason(), At: at})
				attempt.Inactive++
				if len(attempt.Flags) < maxListed {
					attempt.Flags = append(attempt.Flags, Flag{ID: o.ID, Reason: hit.Reason()})
				}
			} else {
				cleared = append(cleared, o.ID)
			}
		}
		if len(flags)+len(cleared) == 0 {
			return nil
		}
		itx, ok := tx.(store.ImportTx)
		if !ok {
			return errors.New("the store cannot record inactive flags")
		}
		if err := itx.ClearInactive(ctx, cleared); err != nil {
			return err
		}
		return itx.FlagInactive(ctx, flags)
	})
	if err != nil {
		return rep, fmt.Errorf("store import batch: %w", err)
	}
	rep.Add(attempt)
	return rep, i.audit(ctx, p, col.ID, added, checked)
}

func (i *Importer) audit(ctx context.Context, p *access.Principal, collection string, added []string, checked taxii.Checked) error {
	label := i.Label
	if label == "" {
		label = "mitra import"
	}
	recs := []store.AuditRecord{{At: i.now(), Principal: p.User, Organisation: p.Organisation, Action: "objects.add", Path: label,
		Collection: collection, Objects: added, Detail: fmt.Sprintf("imported: %d stored, %d refused by the checks", len(added), len(checked.Failures))}}
	if len(checked.Relayed) > 0 {
		recs = append(recs, store.AuditRecord{At: i.now(), Principal: p.User, Organisation: p.Organisation, Action: "objects.relay", Path: label,
			Collection: collection, Objects: checked.Relayed, Detail: "imported on behalf of the organisations in their created_by_ref"})
	}
	return i.Store.AppendAudit(ctx, recs...)
}

// stabilise keeps re-imports of converted content from making versions:
// an object equal to the stored latest version but for its volatile
// properties is dropped (unchanged); a changed one keeps the stored
// created (and other volatile values) and gets a modified after the
// stored one (STIX 2.1 §3.6: a new version has a later
// modified and the same created).
//
// Only versions the importing organisation submitted count: another's
// object with the same id goes to the checks and the store as a POST
// would (a duplicate, or refused by ownership), so that nothing about a
// version the importer may not read is told apart.
func (i *Importer) stabilise(ctx context.Context, p *access.Principal, collection string, raws []json.RawMessage, volatile []string, rep *Report) ([]json.RawMessage, error) {
	ids := make([]string, 0, len(raws))
	for _, raw := range raws {
		var h struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &h) == nil && h.ID != "" {
			ids = append(ids, h.ID)
		}
	}
	stored := map[string]map[string]any{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		page, err := i.Store.QueryObjects(ctx, collection, store.Query{IDs: ids[:n], WithBody: true, Limit: n})
		if err != nil {
			return nil, fmt.Errorf("read stored versions: %w", err)
		}
		for _, e := range page.Entries {
			if e.Submitter != p.Organisation {
				continue
			}
			var m map[string]any
			if json.Unmarshal(e.Raw, &m) == nil {
				stored[e.ID] = m
			}
		}
		ids = ids[n:]
	}
	if len(stored) == 0 {
		return raws, nil
	}
	out := raws[:0]
	for _, raw := range raws {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			out = append(out, raw)
			continue
		}
		id, _ := m["id"].(string)
		old, ok := stored[id]
		if !ok {
			out = append(out, raw)
			continue
		}
		if sameBut(m, old, volatile...) {
			rep.Unchanged++
			continue
		}
		for _, k := range volatile {
			if v, ok := old[k]; ok && k != "modified" {
				m[k] = v
			}
		}
		if om, ok := old["modified"].(string); ok {
			prev, err1 := time.Parse(time.RFC3339Nano, om)
			mine, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(m["modified"]))
			if err1 == nil && (err2 != nil || !mine.After(prev)) {
				next := i.now().Truncate(time.Microsecond)
				if !next.After(prev) {
					next = prev.Truncate(time.Microsecond).Add(time.Microsecond)
				}
				m["modified"] = stix.FormatMicro(next)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// sameBut compares two objects without the given properties.
func sameBut(a, b map[string]any, skip ...string) bool {
	a, b = maps.Clone(a), maps.Clone(b)
	for _, k := range skip {
		delete(a, k)
		delete(b, k)
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
