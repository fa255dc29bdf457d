package feeds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// lcWorld is a SQLite store written directly (submitter, TLP and
// recipients as the TAXII server would record them) with a clock the test
// moves, for comparing the incremental ActiveSet with Select.
type lcWorld struct {
	t     *testing.T
	st    *sqlite.Store
	now   time.Time
	step  int
	orgs  []string // detector's organisation first
	colls []string
}

func newLCWorld(t *testing.T) *lcWorld {
	// Sync normal: no fsync per commit, which is most of a step's time.
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Sync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &lcWorld{t: t, st: st, now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (w *lcWorld) clock() time.Time { return w.now }

func (w *lcWorld) org(name string) string {
	o := &store.Organisation{Name: name}
	if err := w.st.CreateOrganisation(w.t.Context(), o); err != nil {
		w.t.Fatal(err)
	}
	w.orgs = append(w.orgs, o.ID)
	return o.ID
}

func (w *lcWorld) collection(c *store.Collection) string {
	if err := w.st.CreateCollection(w.t.Context(), c); err != nil {
		w.t.Fatal(err)
	}
	w.colls = append(w.colls, c.ID)
	return c.ID
}

// add stores one version of an object as submitter with a TLP level and
// named recipients; its version is its modified time.
func (w *lcWorld) add(coll, submitter string, tlp access.TLP, recipients []string, obj map[string]any) {
	w.t.Helper()
	mod, err := stix.ParseTimestamp(obj["modified"].(string))
	if err != nil {
		w.t.Fatal(err)
	}
	raw, _ := json.Marshal(obj)
	typ := obj["type"].(string)
	if _, err := w.st.AddObjects(w.t.Context(), coll, []store.Object{{ID: obj["id"].(string), Type: typ, SpecVersion: "2.1",
		Version: mod, VersionRaw: obj["modified"].(string), Raw: raw, Submitter: submitter, TLP: int(tlp), Recipients: recipients}}, nil); err != nil {
		w.t.Fatal(err)
	}
}

// stamp is a distinct timestamp about d from now, an hour earlier
// (distinct so that versions of an object never collide, later for later
// steps).
func (w *lcWorld) stamp(d time.Duration) string {
	w.step++
	return stix.FormatMicro(w.now.Add(d - time.Hour + time.Duration(w.step)*time.Millisecond))
}

func (w *lcWorld) indicator(id, pat string, d time.Duration, extra ...any) map[string]any {
	ts := w.stamp(d)
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"valid_from": ts, "pattern": pat, "pattern_type": "stix", "confidence": 80}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(o, extra[i].(string))
		} else {
			o[extra[i].(string)] = extra[i+1]
		}
	}
	return o
}

func (w *lcWorld) sighting(id, of string, d time.Duration) map[string]any {
	ts := w.stamp(d)
	return map[string]any{"type": "sighting", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"sighting_of_ref": of, "first_seen": ts, "last_seen": ts, "count": 1}
}

func (w *lcWorld) opinion(id, op string, d time.Duration, refs ...string) map[string]any {
	ts := w.stamp(d)
	return map[string]any{"type": "opinion", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"object_refs": refs, "opinion": op}
}

// flag sets (reason non-empty) or clears an indicator's warning-list
// flag, as a rescan does: no change-log record.
func (w *lcWorld) flag(coll, id, reason string) {
	w.t.Helper()
	err := w.st.Update(w.t.Context(), coll, func(ctx context.Context, tx store.Tx) error {
		itx := tx.(store.ImportTx)
		if reason == "" {
			return itx.ClearInactive(ctx, []string{id})
		}
		return itx.FlagInactive(ctx, []store.InactiveFlag{{ObjectID: id, Collection: coll, List: "test", Value: "v", Reason: reason, At: w.now}})
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// same refreshes set and checks that it retires exactly what Select
// leaves out, with the same reasons.
func (w *lcWorld) same(set *feeds.ActiveSet, what string) map[string]string {
	w.t.Helper()
	if err := set.Refresh(w.t.Context()); err != nil {
		w.t.Fatalf("%s: refresh: %v", what, err)
	}
	sel, err := set.Exporter.Select(w.t.Context(), set.Request)
	if err != nil {
		w.t.Fatalf("%s: select: %v", what, err)
	}
	got := set.Inactive()
	if !maps.Equal(got, sel.Inactive) {
		for _, id := range slices.Sorted(maps.Keys(sel.Inactive)) {
			if got[id] != sel.Inactive[id] {
				w.t.Errorf("%s: %s: set says %q, Select %q", what, id, got[id], sel.Inactive[id])
			}
		}
		for id, r := range got {
			if _, ok := sel.Inactive[id]; !ok {
				w.t.Errorf("%s: %s: set retires it (%q), Select exports it", what, id, r)
			}
		}
		w.t.FailNow()
	}
	for _, ind := range sel.Indicators {
		if !set.Allow(ind.ID) {
			w.t.Fatalf("%s: %s exported but not allowed", what, ind.ID)
		}
	}
	return got
}

// TestActiveSetMatchesSelect: after every step of a random sequence of
// indicator versions, sightings, opinions, deletions, warning-list flags
// and clock moves (days to months), over collections read through an
// organisation grant, a sharing group, and not at all, at every TLP
// level, the incrementally kept set retires exactly what a full Select
// leaves out, with the same reasons.
func TestActiveSetMatchesSelect(t *testing.T) {
	reasons := map[string]int{}
	for seed := range uint64(lcSeeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { activeSetMatchesSelect(t, seed, reasons) })
	}
	if lcSeeds < 3 {
		return
	}
	// The sequences reached every rule.
	for _, want := range []string{"revoked", "exercise (drill) object", "not yet valid (valid_from)", "expired (valid_until)",
		"confidence below", "lifecycle score below threshold", "flagged inactive"} {
		n := 0
		for r, k := range reasons {
			if strings.HasPrefix(r, want) {
				n += k
			}
		}
		if n == 0 {
			t.Errorf("no step retired an indicator as %q: %v", want, reasons)
		}
	}
}

func activeSetMatchesSelect(t *testing.T, seed uint64, reasons map[string]int) {
	r := rand.New(rand.NewPCG(seed, 16))
	w := newLCWorld(t)
	a, b, c := w.org("Sensor"), w.org("Grid"), w.org("Water")
	g := &store.Group{Name: "energy", Orgs: []string{a, b}}
	if err := w.st.CreateGroup(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	w.collection(&store.Collection{Title: "mine", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true}}})
	w.collection(&store.Collection{Title: "group", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g.ID, Read: true}}})
	w.collection(&store.Collection{Title: "hidden", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: b, Read: true}}})
	w.collection(&store.Collection{Title: "red", DefaultTLP: int(access.TLPRed), Recipients: []string{b},
		Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true}, {Kind: store.GrantOrg, Subject: c, Read: true}}})
	p := &access.Principal{Organisation: a, Groups: []string{g.ID}, Role: access.RoleAnalyst}
	x := &feeds.Exporter{Store: w.st, Flags: w.st, Now: w.clock}
	set := &feeds.ActiveSet{Exporter: x, Request: feeds.Request{Principal: p, MinConfidence: 20 * int((seed+2)%3)}}

	uuid := func(kind string, i int) string { return fmt.Sprintf("%s--%08x-0000-4000-8000-%012x", kind, i, seed) }
	pats := []string{"[ipv4-addr:value = '192.0.2.1']", "[domain-name:value = 'x.example']", "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']",
		"[url:value = 'http://x.example/a']", "[ipv4-addr:value = '192.0.2.1'] OR [domain-name:value = 'y.example']",
		"[network-traffic:dst_port = 1 AND network-traffic:dst_ref.value = '192.0.2.2']"}
	levels := []access.TLP{access.TLPUnmarked, access.TLPClear, access.TLPGreen, access.TLPAmber, access.TLPAmberStrict, access.TLPRed}
	var sightings []string
	sightedBy := map[string]string{}
	pick := func() (string, string, access.TLP, []string) {
		var rcpt []string
		if r.IntN(4) == 0 {
			rcpt = []string{w.orgs[r.IntN(len(w.orgs))]}
		}
		return w.colls[r.IntN(len(w.colls))], w.orgs[r.IntN(len(w.orgs))], levels[r.IntN(len(levels))], rcpt
	}
	const nInd = 25
	for step := range 100 {
		switch k := r.IntN(20); {
		case k < 7: // an indicator version, often recent, sometimes old or odd
			coll, sub, tlp, rcpt := pick()
			age := -time.Duration(r.IntN(200)) * 24 * time.Hour
			extra := []any{"confidence", []any{nil, 10, 30, 60, 90, 100}[r.IntN(6)]}
			switch r.IntN(14) {
			case 0:
				extra = append(extra, "revoked", true)
			case 1:
				extra = append(extra, "valid_until", w.stamp(time.Duration(r.IntN(60))*24*time.Hour))
			case 2:
				extra = append(extra, "valid_from", w.stamp(time.Duration(r.IntN(30))*24*time.Hour))
			case 3:
				extra = append(extra, "object_marking_refs", []string{stix.ExerciseMarkingID})
			}
			w.add(coll, sub, tlp, rcpt, w.indicator(uuid("indicator", r.IntN(nInd)), pats[r.IntN(len(pats))], age, extra...))
		case k < 11: // a sighting (now and then of something else)
			coll, sub, tlp, rcpt := pick()
			id := uuid("sighting", r.IntN(30))
			of := uuid("indicator", r.IntN(nInd))
			if r.IntN(10) == 0 {
				of = "malware--" + of[len("indicator--"):]
			}
			w.add(coll, sub, tlp, rcpt, w.sighting(id, of, -time.Duration(r.IntN(90))*24*time.Hour))
			sightings = append(sightings, id)
			sightedBy[id] = sub
		case k < 16: // an opinion on indicators or sightings
			coll, sub, tlp, rcpt := pick()
			var refs []string
			for range 1 + r.IntN(2) {
				if len(sightings) > 0 && r.IntN(2) == 0 {
					// Often the sighting organisation's verdict on its
					// own report, the one that counts.
					s := sightings[r.IntN(len(sightings))]
					refs = append(refs, s)
					if r.IntN(2) == 0 {
						sub = sightedBy[s]
					}
				} else {
					refs = append(refs, uuid("indicator", r.IntN(nInd)))
				}
			}
			op := []string{"agree", "strongly-agree", "disagree", "strongly-disagree", "neutral"}[r.IntN(5)]
			w.add(coll, sub, tlp, rcpt, w.opinion(uuid("opinion", r.IntN(40)), op, -time.Duration(r.IntN(30))*24*time.Hour, refs...))
		case k < 17: // a flag set or cleared by a rescan
			reason := ""
			if r.IntN(2) == 0 {
				reason = fmt.Sprintf("on warning list %d", r.IntN(3))
			}
			w.flag(w.colls[r.IntN(len(w.colls))], uuid("indicator", r.IntN(nInd)), reason)
		case k < 18: // a deletion
			kind := []string{"indicator", "sighting", "opinion"}[r.IntN(3)]
			_, _ = w.st.DeleteObject(t.Context(), w.colls[r.IntN(len(w.colls))], uuid(kind, r.IntN(nInd)), store.Query{})
		default: // time passes
			w.now = w.now.Add(time.Duration(r.IntN(40*24)) * time.Hour)
		}
		for _, r := range w.same(set, fmt.Sprintf("step %d", step)) {
			reasons[r]++
		}
	}
	// Long after, everything but hashes has decayed; the set follows with
	// no store change at all.
	for range 6 {
		w.now = w.now.Add(45 * 24 * time.Hour)
		w.same(set, "later")
	}
	// A new grant changes what the organisation reads: the set reloads.
	if err := w.st.SetPartyGrant(t.Context(), w.colls[2], store.GrantOrg, a, true, false); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(-300 * 24 * time.Hour)
	w.same(set, "after the grant")
}

// TestActiveSetLeak: what the detector's organisation may not read (an
// indicator version, a sighting, a false-positive verdict in a collection
// it has no grant on, a group it is not in, or RED objects it is not a
// recipient of) changes nothing in its set; the same verdicts where it may
// read them retire the indicator (the control).
func TestActiveSetLeak(t *testing.T) {
	w := newLCWorld(t)
	a, b, c, d := w.org("Sensor"), w.org("Grid"), w.org("Water"), w.org("Rail")
	mine := &store.Group{Name: "mine", Orgs: []string{a, b}}
	theirs := &store.Group{Name: "theirs", Orgs: []string{b, c, d}}
	for _, g := range []*store.Group{mine, theirs} {
		if err := w.st.CreateGroup(t.Context(), g); err != nil {
			t.Fatal(err)
		}
	}
	shared := w.collection(&store.Collection{Title: "shared", Grants: []store.Grant{
		{Kind: store.GrantOrg, Subject: a, Read: true}, {Kind: store.GrantGroup, Subject: theirs.ID, Read: true}}})
	groupColl := w.collection(&store.Collection{Title: "group", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: mine.ID, Read: true}}})
	hidden := w.collection(&store.Collection{Title: "hidden", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: theirs.ID, Read: true}}})
	p := &access.Principal{Organisation: a, Groups: []string{mine.ID}, Role: access.RoleAnalyst}
	set := &feeds.ActiveSet{Exporter: &feeds.Exporter{Store: w.st, Flags: w.st, Now: w.clock}, Request: feeds.Request{Principal: p}}

	ind := "indicator--11111111-0000-4000-8000-000000000001"
	only := "indicator--11111111-0000-4000-8000-000000000002"
	w.add(shared, a, access.TLPGreen, nil, w.indicator(ind, "[domain-name:value = 'evil.example']", 0))
	got := w.same(set, "start")
	must(t, len(got) == 0 && set.Allow(ind), "start: %v", got)

	// Hidden: a revoked newer version and an indicator only in a
	// collection of a group the organisation is not in; three
	// organisations' false-positive verdicts there, RED ones in a
	// collection it reads, and a RED sighting of another organisation.
	w.add(hidden, b, access.TLPGreen, nil, w.indicator(ind, "[domain-name:value = 'evil.example']", time.Second, "revoked", true))
	w.add(hidden, b, access.TLPGreen, nil, w.indicator(only, "[domain-name:value = 'other.example']", 0, "revoked", true))
	for i, org := range []string{b, c, d} {
		w.add(hidden, org, access.TLPGreen, nil, w.opinion(fmt.Sprintf("opinion--22222222-0000-4000-8000-%012d", i), "disagree", 0, ind))
		w.add(shared, org, access.TLPRed, nil, w.opinion(fmt.Sprintf("opinion--33333333-0000-4000-8000-%012d", i), "strongly-disagree", 0, ind))
		w.add(shared, org, access.TLPAmberStrict, []string{c}, w.opinion(fmt.Sprintf("opinion--44444444-0000-4000-8000-%012d", i), "disagree", 0, ind))
	}
	w.flag(hidden, only, "on warning list hidden")
	got = w.same(set, "hidden evidence")
	must(t, len(got) == 0 && set.Allow(ind) && set.Reason(only) == "", "hidden evidence changed the set: %v", got)

	// Much later the indicator has decayed; a hidden sighting does not
	// revive it.
	w.now = w.now.Add(400 * 24 * time.Hour)
	w.add(hidden, b, access.TLPGreen, nil, w.sighting("sighting--55555555-0000-4000-8000-000000000001", ind, 0))
	w.add(shared, c, access.TLPRed, nil, w.sighting("sighting--55555555-0000-4000-8000-000000000002", ind, 0))
	got = w.same(set, "hidden sightings")
	must(t, got[ind] == "lifecycle score below threshold", "hidden sightings: %v", got)

	// The control: a sighting it may read revives it (through the
	// group's collection); three visible verdicts (GREEN, a sharing
	// group's, AMBER+STRICT naming it) retire it again.
	w.add(groupColl, b, access.TLPAmber, nil, w.sighting("sighting--55555555-0000-4000-8000-000000000003", ind, 0))
	got = w.same(set, "visible sighting")
	must(t, len(got) == 0 && set.Allow(ind), "visible sighting: %v", got)
	w.add(shared, b, access.TLPGreen, nil, w.opinion("opinion--66666666-0000-4000-8000-000000000001", "disagree", 0, ind))
	w.add(groupColl, c, access.TLPGreen, nil, w.opinion("opinion--66666666-0000-4000-8000-000000000002", "disagree", 0, ind))
	w.add(shared, d, access.TLPAmberStrict, []string{a}, w.opinion("opinion--66666666-0000-4000-8000-000000000003", "disagree", 0, ind))
	got = w.same(set, "visible verdicts")
	must(t, got[ind] == "lifecycle score below threshold" && !set.Allow(ind), "visible verdicts: %v", got)
}

// TestActiveSetFollowsFlags: a warning-list rescan flags or clears an
// indicator without a new version; the set follows.
func TestActiveSetFollowsFlags(t *testing.T) {
	w := newLCWorld(t)
	a := w.org("Sensor")
	coll := w.collection(&store.Collection{Title: "mine", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true}}})
	set := &feeds.ActiveSet{Exporter: &feeds.Exporter{Store: w.st, Flags: w.st, Now: w.clock},
		Request: feeds.Request{Principal: &access.Principal{Organisation: a, Role: access.RoleAnalyst}}}
	ind := "indicator--77777777-0000-4000-8000-000000000001"
	w.add(coll, a, access.TLPGreen, nil, w.indicator(ind, "[domain-name:value = 'benign.example']", 0))
	w.same(set, "start")
	w.flag(coll, ind, "on warning list 'benign'")
	must(t, w.same(set, "flagged")[ind] == "flagged inactive: on warning list 'benign'", "flag not followed")
	w.flag(coll, ind, "")
	must(t, len(w.same(set, "cleared")) == 0, "cleared flag not followed")
}

// TestActiveSetVerdictOnSighting: a verdict on a sighting counts for the
// sighted indicator from the sighting organisation only, also when it
// arrives after the set was loaded.
func TestActiveSetVerdictOnSighting(t *testing.T) {
	w := newLCWorld(t)
	a, b, c := w.org("Sensor"), w.org("Grid"), w.org("Water")
	coll := w.collection(&store.Collection{Title: "shared", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true}}})
	set := &feeds.ActiveSet{Exporter: &feeds.Exporter{Store: w.st, Flags: w.st, Now: w.clock},
		Request: feeds.Request{Principal: &access.Principal{Organisation: a, Role: access.RoleAnalyst}}}
	ind := "indicator--88888888-0000-4000-8000-000000000001"
	sighting := "sighting--88888888-0000-4000-8000-000000000002"
	w.add(coll, a, access.TLPGreen, nil, w.indicator(ind, "[domain-name:value = 'evil.example']", -400*24*time.Hour, "confidence", 25))
	must(t, w.same(set, "old")[ind] == "lifecycle score below threshold", "an old indicator is active")
	// Sighted now: 25 + 10 = 35, from now.
	w.add(coll, b, access.TLPGreen, nil, w.sighting(sighting, ind, 0))
	must(t, len(w.same(set, "sighted")) == 0, "a sighting did not revive it")
	// Another organisation's verdict on the sighting does not count; the
	// sighting organisation's halves the score to 17.5.
	w.add(coll, c, access.TLPGreen, nil, w.opinion("opinion--88888888-0000-4000-8000-000000000003", "disagree", 0, sighting))
	must(t, len(w.same(set, "other verdict")) == 0, "another organisation's verdict on the sighting counted")
	w.add(coll, b, access.TLPGreen, nil, w.opinion("opinion--88888888-0000-4000-8000-000000000004", "disagree", 0, sighting))
	must(t, w.same(set, "own verdict")[ind] == "lifecycle score below threshold", "the sighting organisation's verdict did not count")
}

// TestSelectFlagsAtOnce: a selection of many indicators reads the
// warning-list flags in one query (FlagLister) and retires the flagged
// ones as the per-indicator lookup does, and as the set does.
func TestSelectFlagsAtOnce(t *testing.T) {
	w := newLCWorld(t)
	a := w.org("Sensor")
	coll := w.collection(&store.Collection{Title: "mine", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true}}})
	var objs []store.Object
	for i := range 300 {
		o := w.indicator(fmt.Sprintf("indicator--99999999-0000-4000-8000-%012d", i), fmt.Sprintf("[domain-name:value = 'd%d.example']", i), 0)
		raw, _ := json.Marshal(o)
		mod, _ := stix.ParseTimestamp(o["modified"].(string))
		objs = append(objs, store.Object{ID: o["id"].(string), Type: "indicator", SpecVersion: "2.1", Raw: raw, Submitter: a,
			Version: mod, VersionRaw: o["modified"].(string)})
	}
	if _, err := w.st.AddObjects(t.Context(), coll, objs, nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 150, 299} {
		w.flag(coll, objs[i].ID, fmt.Sprint("on warning list ", i))
	}
	set := &feeds.ActiveSet{Exporter: &feeds.Exporter{Store: w.st, Flags: w.st, Now: w.clock},
		Request: feeds.Request{Principal: &access.Principal{Organisation: a, Role: access.RoleAnalyst}}}
	got := w.same(set, "flags")
	must(t, len(got) == 3 && got[objs[150].ID] == "flagged inactive: on warning list 150", "retired: %v", got)
	// The same through a Flags that only answers per indicator.
	perID := flags{objs[0].ID: "on warning list 0", objs[150].ID: "on warning list 150", objs[299].ID: "on warning list 299"}
	sel, err := (&feeds.Exporter{Store: w.st, Flags: perID, Now: w.clock}).Select(t.Context(), set.Request)
	must(t, err == nil && maps.Equal(sel.Inactive, got), "per indicator: %v %v", sel.Inactive, err)
}
