package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
)

func obj(id string, mod time.Time, raw string) Object {
	o := Object{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: []byte(raw)}
	if !mod.IsZero() {
		o.Version, o.VersionRaw = mod, stix.FormatMicro(mod)
	}
	return o
}

func TestPlanAdd(t *testing.T) {
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	existing := map[string][]StoredVersion{
		"a": {{RID: 7, Version: stix.SortKey(t1), VersionRaw: stix.FormatMicro(t1), Spec: "2.1", Body: []byte(`{"v":1}`), Latest: true}},
	}
	objs := []Object{
		obj("a", t1, `{ "v": 1 }`),         // duplicate of the stored version
		obj("a", t1, `{"v":2}`),            // conflict with it
		obj("a", t2, `{"v":3}`),            // new latest: row 7 is superseded
		obj("b", t2, `{"b":1}`),            // new
		obj("b", t1, `{"b":0}`),            // older: not latest
		obj("b", t2, `{"b":1}`),            // duplicate within the batch
		obj("sco", time.Time{}, `{"s":1}`), // unversioned: named by date_added
		obj("sco", time.Time{}, `{"s":1}`), // identical: duplicate
	}
	p := PlanAdd(objs, existing, nil, 100, 500, 40)
	if !p.Results[0].Duplicate || !errors.Is(p.Results[1].Err, ErrConflict) || p.Results[2].Duplicate || !p.Results[5].Duplicate || !p.Results[7].Duplicate {
		t.Fatalf("results = %+v", p.Results)
	}
	if len(p.Rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(p.Rows), p.Rows)
	}
	for i, r := range p.Rows {
		if r.Added != 501+int64(i) || r.Seq != 41+int64(i) {
			t.Errorf("row %d: added %d seq %d", i, r.Added, r.Seq)
		}
	}
	if !p.Rows[0].Latest || !p.Rows[1].Latest || p.Rows[2].Latest || !p.Rows[3].Latest {
		t.Errorf("latest flags: %v %v %v %v", p.Rows[0].Latest, p.Rows[1].Latest, p.Rows[2].Latest, p.Rows[3].Latest)
	}
	if len(p.Superseded) != 1 || p.Superseded[0] != 7 {
		t.Errorf("superseded = %v", p.Superseded)
	}
	if p.Rows[3].VersionRaw != stix.FormatMicro(time.UnixMicro(504).UTC()) || p.Results[7].Version != p.Rows[3].VersionRaw {
		t.Errorf("unversioned object: row %+v, duplicate reported as %q", p.Rows[3], p.Results[7].Version)
	}
	if p.LastAdded != 504 || p.LastSeq != 44 {
		t.Errorf("high-water marks %d %d", p.LastAdded, p.LastSeq)
	}
	var st Status
	p.RecordStatus(objs, &st)
	if len(st.Successes) != 7 || len(st.Failures) != 1 {
		t.Errorf("status: %d successes, %d failures", len(st.Successes), len(st.Failures))
	}
	// now later than the collection's last date_added wins.
	if q := PlanAdd(objs[3:4], nil, nil, 9000, 500, 0); q.Rows[0].Added != 9000 {
		t.Errorf("date_added %d, want the clock 9000", q.Rows[0].Added)
	}
}

func TestPlanAddOwnership(t *testing.T) {
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	existing := map[string][]StoredVersion{
		"a": {{RID: 7, Version: stix.SortKey(t1), VersionRaw: stix.FormatMicro(t1), Spec: "2.1", Body: []byte(`{"v":1}`), Latest: true}},
	}
	owners := map[string]string{"a": "org-a", "elsewhere": "org-a"}
	from := func(o Object, submitter, owner string) Object {
		o.Submitter, o.Owner = submitter, owner
		return o
	}
	objs := []Object{
		from(obj("a", t1, `{"v":1}`), "org-b", ""),            // duplicate: stays one
		from(obj("a", t1, `{"v":9}`), "org-b", ""),            // same version, other content: refused, not a conflict
		from(obj("a", t2, `{"v":2}`), "org-b", ""),            // new version by a non-owner: refused
		from(obj("a", t2, `{"v":2}`), "org-b", "org-a"),       // Owner speaks for org-a: accepted
		from(obj("elsewhere", t1, `{"e":1}`), "org-b", ""),    // owned through another collection: refused
		from(obj("sco", time.Time{}, `{"s":1}`), "org-b", ""), // unversioned: anyone
	}
	owners["sco"] = "org-a"
	p := PlanAdd(objs, existing, owners, 100, 500, 40)
	if !p.Results[0].Duplicate || p.Results[0].Err != nil {
		t.Errorf("duplicate from a non-owner: %+v", p.Results[0])
	}
	for _, i := range []int{1, 2, 4} {
		err := p.Results[i].Err
		if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrConflict) {
			t.Errorf("object %d: err %v, want ErrForbidden", i, err)
		} else if msg := err.Error(); strings.Contains(msg, "already") || strings.Contains(msg, objs[i].VersionRaw) {
			t.Errorf("object %d: refusal reveals what is stored: %q", i, msg)
		}
	}
	if p.Results[3].Err != nil || p.Results[5].Err != nil || len(p.Rows) != 2 {
		t.Errorf("accepted: %+v %+v, rows %d", p.Results[3], p.Results[5], len(p.Rows))
	}

	ids, ws := OwnerClaims([]Object{
		{ID: "z", Submitter: "s1"}, {ID: "y", Submitter: "s2", Owner: "o2"}, {ID: "z", Submitter: "s3"}, {ID: "x"},
	})
	if strings.Join(ids, ",") != "y,z" || strings.Join(ws, ",") != "o2,s1" {
		t.Errorf("OwnerClaims = %v %v", ids, ws)
	}
}
