package store

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
)

// StoredVersion is one stored version of an object, as a backend loads it
// for PlanAdd.
type StoredVersion struct {
	RID        int64 // the backend's row id
	Version    string
	VersionRaw string
	Spec       string
	Body       []byte
	Latest     bool
}

// NewVersion is a version PlanAdd decided to insert.
type NewVersion struct {
	Obj        *Object
	Added      int64 // date_added, microseconds since the epoch
	Seq        int64 // change-log sequence number
	Spec       string
	Version    string // stix.SortKey of the version
	VersionRaw string
	Latest     bool
}

// AddPlan is what one AddObjects call does, decided before any row is
// written; every backend executes it in its own way.
type AddPlan struct {
	Results []AddResult
	Rows    []NewVersion
	// Superseded are stored rows that lose the latest flag.
	Superseded []int64
	// LastAdded and LastSeq are the collection's new high-water marks.
	LastAdded, LastSeq int64
}

// PlanAdd decides, for a batch of objects, which are duplicates (TAXII 2.1
// §5.5), which conflict with a stored version, which rows to insert with
// which date_added and change-log sequence numbers, and which row of each
// id becomes the one served by default (the greatest spec_version, then
// version). existing holds every stored version of the batch's ids; owners
// the recorded owner of each of them that has one (see OwnerClaims); now,
// lastAdded and lastSeq are in microseconds and sequence numbers. The
// backend must hold the collection's write lock from loading existing
// until commit, so that date_added is strictly increasing in commit order.
func PlanAdd(objs []Object, existing map[string][]StoredVersion, owners map[string]string, now, lastAdded, lastSeq int64) *AddPlan {
	p := &AddPlan{Results: make([]AddResult, len(objs)), LastSeq: lastSeq}
	added := max(now, lastAdded+1)
	type version struct {
		StoredVersion
		row int // index in p.Rows for versions of this batch, else -1
	}
	byID := make(map[string][]*version, len(existing))
	for id, vs := range existing {
		for _, v := range vs {
			byID[id] = append(byID[id], &version{StoredVersion: v, row: -1})
		}
	}
	for i := range objs {
		o := &objs[i]
		res := &p.Results[i]
		vs := byID[o.ID]
		ver, verRaw := "", o.VersionRaw
		if o.Version.IsZero() {
			// Unversioned (most SCOs): identical content is a duplicate;
			// anything else becomes a new version named by its date_added.
			dup := false
			for _, v := range vs {
				if SameJSON(v.Body, o.Raw) {
					res.Version, res.Duplicate, dup = v.VersionRaw, true, true
					break
				}
			}
			if dup {
				continue
			}
			t := time.UnixMicro(added).UTC()
			ver, verRaw = stix.SortKey(t), stix.FormatMicro(t)
		} else {
			ver = stix.SortKey(o.Version)
		}
		res.Version = verRaw
		if rec, ok := owners[o.ID]; ok && !o.Version.IsZero() && rec != OwnerOf(o) {
			// Checked before the conflict test, so that a refused sender
			// learns nothing about the versions stored; a duplicate stays a
			// duplicate (STIX 2.1 §3.6).
			dup := false
			for _, v := range vs {
				if v.Version == ver && SameJSON(v.Body, o.Raw) {
					dup = true
				}
			}
			if !dup {
				res.Err = errNotOwner
				continue
			}
		}
		var same *version
		var cur *version
		for _, v := range vs {
			if v.Version == ver {
				same = v
			}
			if v.Latest {
				cur = v
			}
		}
		if same != nil {
			if SameJSON(same.Body, o.Raw) {
				res.Duplicate = true
			} else {
				res.Err = fmt.Errorf("a different object with id %s and version %s is already in the collection: %w", o.ID, verRaw, ErrConflict)
			}
			continue
		}
		spec := o.SpecVersion
		if spec == "" {
			spec = "2.1" // SCOs may omit spec_version (STIX 2.1 §3.2)
		}
		nv := &version{StoredVersion: StoredVersion{RID: -1, Version: ver, VersionRaw: verRaw, Spec: spec, Body: o.Raw}, row: len(p.Rows)}
		if cur == nil || spec > cur.Spec || (spec == cur.Spec && ver > cur.Version) {
			if cur != nil {
				cur.Latest = false
				if cur.row >= 0 {
					p.Rows[cur.row].Latest = false
				} else {
					p.Superseded = append(p.Superseded, cur.RID)
				}
			}
			nv.Latest = true
		}
		byID[o.ID] = append(vs, nv)
		p.LastSeq++
		p.Rows = append(p.Rows, NewVersion{Obj: o, Added: added, Seq: p.LastSeq, Spec: spec, Version: ver, VersionRaw: verRaw, Latest: nv.Latest})
		added++
	}
	p.LastAdded = added - 1
	return p
}

// errNotOwner is the refusal of a new version from an organisation that
// does not own the object. Its text says nothing about what is stored.
var errNotOwner = fmt.Errorf("refused: only the organisation that created this object may add versions of it (STIX 2.1 §3.6): %w", ErrForbidden)

// OwnerOf is the organisation that owns o when o is the first version of
// its id: Owner, else Submitter (contract.go).
func OwnerOf(o *Object) string {
	if o.Owner != "" {
		return o.Owner
	}
	return o.Submitter
}

// OwnerClaims returns, sorted by id, each id of objs with the owner its
// first object in objs would record (ids whose owner would be empty are
// left out: an object added without any organisation stays unowned until
// an organisation adds a version). A backend inserts them where no owner
// is recorded yet (insert-or-ignore on the owner table's primary key),
// inside the add transaction and before reading the recorded owners, so
// that of two concurrent first versions exactly one owner wins. Sorted,
// so that concurrent claims lock keys in one order.
func OwnerClaims(objs []Object) (ids, owners []string) {
	seen := make(map[string]bool, len(objs))
	type claim struct{ id, owner string }
	var cs []claim
	for i := range objs {
		o := &objs[i]
		if seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		if w := OwnerOf(o); w != "" {
			cs = append(cs, claim{o.ID, w})
		}
	}
	slices.SortFunc(cs, func(a, b claim) int { return strings.Compare(a.id, b.id) })
	ids, owners = make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		ids[i], owners[i] = c.id, c.owner
	}
	return ids, owners
}

// RecordStatus appends each object's outcome to status: successes
// (duplicates with a note) and failures with their reason.
func (p *AddPlan) RecordStatus(objs []Object, status *Status) {
	for i, res := range p.Results {
		d := StatusDetail{ID: objs[i].ID, Version: res.Version}
		switch {
		case res.Err != nil:
			d.Message = res.Err.Error()
			status.Failures = append(status.Failures, d)
		case res.Duplicate:
			d.Message = "already in the collection"
			status.Successes = append(status.Successes, d)
		default:
			status.Successes = append(status.Successes, d)
		}
	}
}
