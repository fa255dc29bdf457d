package taxii_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// TLP marking-definition ids (TLP 2.0 and the TLP 1.0 ids of STIX 2.1 §7.2.1.4).
const (
	tlpClear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	tlpWhite       = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	tlpGreen       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlpGreen1      = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	tlpAmber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	tlpAmber1      = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	tlpAmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	tlpRed         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
	tlpRed1        = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
)

// leakWorld is three organisations in two sharing groups, an outsider, and
// collections shared with groups, with every TLP level inside.
type leakWorld struct {
	e                *env
	orgA, orgB, orgC string // A: a national CERT; B: a grid operator; C: a water utility
	orgD             string // outsider: no grant anywhere
	a, b, c, d       *client
	relay            *client
	energy, water    *store.Collection
	ids              map[string]string // label -> object id
}

func (w *leakWorld) org(name string, anonymise bool) string {
	w.e.t.Helper()
	o := &store.Organisation{Name: name, AnonymiseSightings: anonymise}
	if err := w.e.st.CreateOrganisation(w.e.ctx, o); err != nil {
		w.e.t.Fatal(err)
	}
	return o.ID
}

func (w *leakWorld) member(name, org, role string) *client {
	w.e.t.Helper()
	if err := w.e.st.CreateUser(w.e.ctx, &store.User{Name: name, Organisation: org, Role: role, PasswordHash: passwordHash()}); err != nil {
		w.e.t.Fatal(err)
	}
	return w.e.basic(name, password)
}

func (w *leakWorld) group(name string, orgs ...string) string {
	w.e.t.Helper()
	g := &store.Group{Name: name, Orgs: orgs}
	if err := w.e.st.CreateGroup(w.e.ctx, g); err != nil {
		w.e.t.Fatal(err)
	}
	return g.ID
}

// indicator returns an indicator with the given markings; extra is more
// JSON members (with a leading comma).
func leakIndicator(n int, createdBy string, markings []string, extra string) string {
	m := ""
	if len(markings) > 0 {
		m = `,"object_marking_refs":["` + strings.Join(markings, `","`) + `"]`
	}
	cb := ""
	if createdBy != "" {
		cb = `,"created_by_ref":"` + createdBy + `"`
	}
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","name":"leak test %d","pattern":"[ipv4-addr:value = '192.0.2.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"%s%s%s}`,
		indicatorID(n), n, n%250, cb, m, extra)
}

func newLeakWorld(t *testing.T) *leakWorld {
	w := &leakWorld{e: newEnv(t), ids: map[string]string{}}
	w.orgA = w.org("National CERT", false)
	w.orgB = w.org("Grid Operator", true)
	w.orgC = w.org("Water Utility", false)
	w.orgD = w.org("Outsider", false)
	w.a = w.member("anna", w.orgA, "analyst")
	w.b = w.member("bert", w.orgB, "analyst")
	w.c = w.member("cleo", w.orgC, "analyst")
	w.d = w.member("dora", w.orgD, "analyst")
	w.relay = w.member("hub", w.orgA, "relay")
	energy := w.group("energy", w.orgA, w.orgB)
	waterGroup := w.group("water", w.orgB, w.orgC)
	w.energy = &store.Collection{Title: "Energy sector", Grants: []store.Grant{
		{Kind: store.GrantGroup, Subject: energy, Read: true},
		{Kind: store.GrantOrg, Subject: w.orgA, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: w.orgB, Read: true, Write: true},
	}}
	w.water = &store.Collection{Title: "Water sector", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: waterGroup, Read: true, Write: true}},
		Recipients: []string{w.orgA}, DefaultTLP: 2}
	for _, c := range []*store.Collection{w.energy, w.water} {
		if err := w.e.st.CreateCollection(w.e.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Every TLP level, by A, in the energy collection.
	byA := []struct {
		label string
		obj   string
	}{
		{"clear", leakIndicator(1, "", []string{tlpClear}, "")},
		{"white", leakIndicator(2, "", []string{tlpWhite}, "")},
		{"green", leakIndicator(3, w.orgA, []string{tlpGreen}, "")},
		{"amber", leakIndicator(4, "", []string{tlpAmber}, "")},
		{"amber1", leakIndicator(5, "", []string{tlpAmber1}, "")},
		{"unmarked", leakIndicator(6, "", nil, "")},
		{"amber+strict", leakIndicator(7, "", []string{tlpAmberStrict}, "")},
		{"red", leakIndicator(8, "", []string{tlpRed}, "")},
		{"red1", leakIndicator(9, "", []string{tlpRed1}, "")},
		{"red for B", leakIndicator(10, "", []string{tlpRed}, `,"x_mitra_recipients":["`+w.orgB+`"]`)},
		{"amber+strict for B", leakIndicator(11, "", []string{tlpAmberStrict}, `,"x_mitra_recipients":["`+w.orgB+`"]`)},
		// GREEN as a whole, RED on its description: the strictest marking governs.
		{"granular red", leakIndicator(12, "", []string{tlpGreen}, `,"description":"secret","granular_markings":[{"marking_ref":"`+tlpRed+`","selectors":["description"]}]`)},
		{"green and red", leakIndicator(13, "", []string{tlpGreen, tlpRed}, "")},
	}
	var objs []string
	for _, o := range byA {
		objs = append(objs, o.obj)
	}
	st := w.a.post(w.energy.ID, objs...)
	if num(t, st, "success_count") != len(byA) {
		t.Fatalf("setup POST: %v", st)
	}
	for i, o := range byA {
		w.ids[o.label] = indicatorID(i + 1)
	}
	// B's own AMBER+STRICT and RED in energy.
	w.b.post(w.energy.ID, leakIndicator(20, "", []string{tlpAmberStrict}, ""), leakIndicator(21, "", []string{tlpRed}, ""))
	w.ids["B amber+strict"], w.ids["B red"] = indicatorID(20), indicatorID(21)
	// The water collection: default GREEN, A named as recipient but without
	// any read grant.
	w.c.post(w.water.ID, leakIndicator(30, "", []string{tlpRed}, ""), leakIndicator(31, "", nil, ""), leakIndicator(32, "", []string{tlpAmberStrict}, ""))
	w.ids["C red"], w.ids["C unmarked"], w.ids["C amber+strict"] = indicatorID(30), indicatorID(31), indicatorID(32)
	return w
}

func (w *leakWorld) labels(labels ...string) []string {
	var ids []string
	for _, l := range labels {
		id, ok := w.ids[l]
		if !ok {
			w.e.t.Fatalf("no object %q", l)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// pageThrough reads every object of a collection one per page, checking
// that no page is short while more is true.
func pageThrough(t *testing.T, c *client, col string, filters ...string) []string {
	t.Helper()
	var ids []string
	filter := ""
	for _, f := range filters {
		filter += "&" + f
	}
	q := "limit=1" + filter
	for pages := 0; pages < 100; pages++ {
		r := c.get(withQuery(objectsPath(col), q)).ok(http.StatusOK)
		env := r.envelope()
		if env.More && len(env.Objects) != 1 {
			t.Fatalf("%s: a page with more=true holds %d objects", c.name, len(env.Objects))
		}
		if !env.More && len(env.Objects) == 0 && pages > 0 {
			t.Fatalf("%s: an empty last page after more=true reveals hidden objects", c.name)
		}
		for _, o := range env.Objects {
			var h struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(o, &h); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.ID)
		}
		if !env.More {
			slices.Sort(ids)
			return ids
		}
		q = "limit=1&next=" + env.Next + filter
	}
	t.Fatal("too many pages")
	return nil
}

func TestLeakMatrix(t *testing.T) {
	w := newLeakWorld(t)
	everyoneInEnergy := []string{"clear", "white", "green", "amber", "amber1", "unmarked"}
	cases := []struct {
		who        *client
		collection *store.Collection
		want       []string // labels; nil: the collection is invisible
	}{
		{w.a, w.energy, append(slices.Clone(everyoneInEnergy), "amber+strict", "red", "red1", "red for B", "amber+strict for B", "granular red", "green and red")},
		// B reads energy through the group and its organisation grant: only
		// what is shareable with the audience, what names B, and B's own.
		{w.b, w.energy, append(slices.Clone(everyoneInEnergy), "red for B", "amber+strict for B", "B amber+strict", "B red")},
		{w.c, w.energy, nil},
		{w.d, w.energy, nil},
		// Water: default GREEN; A is a named recipient but has no grant:
		// no grant, no visibility.
		{w.a, w.water, nil},
		{w.b, w.water, []string{"C unmarked"}},
		{w.c, w.water, []string{"C red", "C unmarked", "C amber+strict"}},
		{w.d, w.water, nil},
	}
	// The A submissions by label and the B ones all live in energy.
	for _, tc := range cases {
		t.Run(tc.who.name+"/"+tc.collection.Title, func(t *testing.T) {
			if tc.want == nil {
				tc.who.get(collectionPath(tc.collection.ID)).wantError(http.StatusNotFound)
				tc.who.get(objectsPath(tc.collection.ID)).wantError(http.StatusNotFound)
				tc.who.get(manifestPath(tc.collection.ID)).wantError(http.StatusNotFound)
				cols := tc.who.get("/api/collections/").ok(http.StatusOK)
				if strings.Contains(string(cols.body), tc.collection.ID) {
					t.Errorf("collection listed to %s", tc.who.name)
				}
				return
			}
			want := w.labels(tc.want...)
			// Objects, one per page.
			wantList(t, "objects", pageThrough(t, tc.who, tc.collection.ID), want)
			// Manifest.
			var man []string
			for _, m := range tc.who.get(manifestPath(tc.collection.ID)).ok(http.StatusOK).manifest().Objects {
				man = append(man, m.ID)
			}
			slices.Sort(man)
			wantList(t, "manifest", man, want)
			// Every object of the collection, through the object and
			// versions endpoints and DELETE: hidden ones do not exist.
			for label, id := range w.ids {
				if !strings.HasPrefix(label, "C ") != (tc.collection == w.energy) {
					continue
				}
				if slices.Contains(want, id) {
					tc.who.get(objectPath(tc.collection.ID, id)).ok(http.StatusOK)
					tc.who.get(versionsPath(tc.collection.ID, id)).ok(http.StatusOK)
					continue
				}
				tc.who.get(objectPath(tc.collection.ID, id)).wantError(http.StatusNotFound)
				tc.who.get(versionsPath(tc.collection.ID, id)).wantError(http.StatusNotFound)
				tc.who.do(http.MethodDelete, objectPath(tc.collection.ID, id), nil).wantError(http.StatusNotFound)
				// Filters cannot fish for it either.
				r := tc.who.get(withQuery(objectsPath(tc.collection.ID), "match[id]="+id)).ok(http.StatusOK)
				if len(r.envelope().Objects) != 0 || r.header.Get("X-TAXII-Date-Added-First") != "" {
					t.Errorf("%s: match[id] reveals hidden %s (%s)", tc.who.name, label, r.body)
				}
			}
		})
	}
	// Hidden objects survived the DELETE attempts above.
	wantList(t, "A's view after others' deletes", pageThrough(t, w.a, w.energy.ID), w.labels(append(slices.Clone(everyoneInEnergy),
		"amber+strict", "red", "red1", "red for B", "amber+strict for B", "granular red", "green and red")...))
}

func TestLeakCreatedByRefAndRelay(t *testing.T) {
	w := newLeakWorld(t)
	// An analyst of A cannot pass an object off as B's.
	st := w.a.post(w.energy.ID, leakIndicator(50, w.orgB, []string{tlpGreen}, ""))
	if num(t, st, "failure_count") != 1 || !strings.Contains(fmt.Sprint(st["failures"]), "created_by_ref") {
		t.Fatalf("spoofed created_by_ref: %v", st)
	}
	// Not with the key written with JSON escapes either.
	escaped := strings.Replace(leakIndicator(52, w.orgB, []string{tlpGreen}, ""), `"created_by_ref"`, `"created\u005fby_ref"`, 1)
	if st := w.a.post(w.energy.ID, escaped); num(t, st, "failure_count") != 1 || !strings.Contains(fmt.Sprint(st["failures"]), "another organisation of this server") {
		t.Fatalf("spoofed created_by_ref with an escaped key: %v", st)
	}
	// A relay may, and it is recorded; the submitter stays A for TLP.
	st = w.relay.post(w.energy.ID, leakIndicator(51, w.orgB, []string{tlpAmberStrict}, ""))
	if num(t, st, "success_count") != 1 {
		t.Fatalf("relayed object: %v", st)
	}
	w.b.get(objectPath(w.energy.ID, indicatorID(51))).wantError(http.StatusNotFound)
	w.a.get(objectPath(w.energy.ID, indicatorID(51))).ok(http.StatusOK)
	recs, err := w.e.st.ListAudit(w.e.ctx, store.AuditFilter{Action: "objects.relay"})
	if err != nil || len(recs) != 1 || recs[0].Principal != "hub" || recs[0].Objects[0] != indicatorID(51) {
		t.Errorf("relay audit = %+v, %v", recs, err)
	}
}

func TestLeakSightingIdentity(t *testing.T) {
	w := newLeakWorld(t)
	sighting := fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--%s","created":"2025-02-01T00:00:00.000Z","modified":"2025-02-01T00:00:00.000Z","created_by_ref":%q,"sighting_of_ref":%q,"where_sighted_refs":[%q],"count":3,"object_marking_refs":[%q]}`,
		uuidN(70), w.orgB, w.ids["green"], w.orgB, tlpGreen)
	w.b.post(w.energy.ID, sighting)
	// A reads it: B asked for anonymity, so B's identity appears nowhere.
	for _, path := range []string{withQuery(objectsPath(w.energy.ID), "match[type]=sighting"), withQuery(manifestPath(w.energy.ID), "match[type]=sighting"), objectPath(w.energy.ID, "sighting--"+uuidN(70))} {
		body := string(w.a.get(path).ok(http.StatusOK).body)
		if strings.Contains(body, w.orgB) {
			t.Errorf("%s reveals the sighting organisation to A", path)
		}
		if !strings.Contains(path, "manifest") && !strings.Contains(body, `"where_sighted_refs":["identity--00000000-0000-4000-8000-000000000000"]`) {
			t.Errorf("%s: sighting not anonymised: %s", path, body)
		}
	}
	// B sees its own identity.
	if body := string(w.b.get(objectPath(w.energy.ID, "sighting--"+uuidN(70))).ok(http.StatusOK).body); !strings.Contains(body, w.orgB) {
		t.Error("B's own sighting was anonymised for B")
	}
}

func TestLeakAuditOfStrictReads(t *testing.T) {
	w := newLeakWorld(t)
	w.a.get(objectPath(w.energy.ID, w.ids["red"])).ok(http.StatusOK)
	w.a.get(objectPath(w.energy.ID, w.ids["green"])).ok(http.StatusOK)
	recs, err := w.e.st.ListAudit(w.e.ctx, store.AuditFilter{Action: "objects.read", Principal: "anna"})
	if err != nil || len(recs) != 1 || len(recs[0].Objects) != 1 || recs[0].Objects[0] != w.ids["red"] {
		t.Errorf("audit of reads = %+v, %v; want exactly the RED read", recs, err)
	}
	adds, _ := w.e.st.ListAudit(w.e.ctx, store.AuditFilter{Action: "objects.add"})
	if len(adds) < 3 {
		t.Errorf("writes not audited: %+v", adds)
	}
}

// markingDef is a marking-definition object; body holds its members after
// the common ones (with a leading comma).
func markingDef(id, created, body string) string {
	return `{"type":"marking-definition","spec_version":"2.1","id":"` + id + `","created":"` + created + `"` + body + `}`
}

// tlp2Def is a marking definition of one's own carrying a TLP 2.0 level
// through the OASIS extension.
func tlp2Def(id, created, level string) string {
	return markingDef(id, created, `,"name":"TLP:`+strings.ToUpper(level)+`","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"`+level+`"}}`)
}

// TestLeakResolvedMarkings: markings other than the standard TLP ids are
// resolved (OpenCTI's, definitions in the same envelope, definitions
// stored earlier); one that cannot be resolved keeps the object to its
// submitting organisation.
func TestLeakResolvedMarkings(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	const (
		openctiAmberStrict = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37" // OpenCTI's TLP:AMBER+STRICT
		nobodyKnows        = "marking-definition--00000000-0000-4000-8000-00000000a001"
		envRed             = "marking-definition--00000000-0000-4000-8000-00000000a002"
		envStatement       = "marking-definition--00000000-0000-4000-8000-00000000a003"
		storedStrict       = "marking-definition--00000000-0000-4000-8000-00000000a004"
		storedStatement    = "marking-definition--00000000-0000-4000-8000-00000000a005"
		storedClear        = "marking-definition--00000000-0000-4000-8000-00000000a006"
		squatted           = "marking-definition--00000000-0000-4000-8000-00000000a007"
	)
	// Stored earlier, in their own requests.
	for _, def := range []string{
		tlp2Def(storedStrict, "2025-01-01T00:00:00.000Z", "amber+strict"),
		markingDef(storedStatement, "2025-01-01T00:00:00.000Z", `,"definition_type":"statement","definition":{"statement":"Copyright 2025 National CERT"}`),
		tlp2Def(storedClear, "2025-01-01T00:00:00.000Z", "clear"),
	} {
		if st := w.a.post(col, def); num(t, st, "success_count") != 1 {
			t.Fatalf("storing %s: %v", def, st)
		}
	}
	// B defines an id first as CLEAR, hoping A will use it.
	w.b.post(col, tlp2Def(squatted, "2025-01-01T00:00:00.000Z", "clear"))

	// One envelope from A: OpenCTI's marking definitions (as OpenCTI 6
	// exports them) with the objects that use them, its own definitions,
	// and its objects.
	opencti := func(id, name string) string {
		return markingDef(id, "2022-01-01T00:00:00.000Z", `,"name":"`+name+`","definition_type":"TLP","extensions":{"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba":{"extension_type":"property-extension","order":3,"color":"#d84315"}}`)
	}
	objs := []struct {
		label   string
		obj     string
		visible bool // to B
	}{
		{"opencti amber+strict", leakIndicator(80, "", []string{openctiAmberStrict}, ""), false},
		{"opencti green", leakIndicator(81, "", []string{tlpGreen1}, ""), true},
		{"unresolvable", leakIndicator(82, "", []string{nobodyKnows}, ""), false},
		{"unresolvable and green", leakIndicator(83, "", []string{tlpGreen, nobodyKnows}, ""), false},
		{"unresolvable granular", leakIndicator(84, "", []string{tlpGreen}, `,"description":"x","granular_markings":[{"marking_ref":"`+nobodyKnows+`","selectors":["description"]}]`), false},
		{"unresolvable for B", leakIndicator(85, "", []string{nobodyKnows}, `,"x_mitra_recipients":["`+w.orgB+`"]`), false},
		{"envelope red", leakIndicator(86, "", []string{envRed}, ""), false},
		{"envelope statement and green", leakIndicator(87, "", []string{envStatement, tlpGreen}, ""), true},
		{"stored amber+strict", leakIndicator(88, "", []string{storedStrict}, ""), false},
		{"stored statement", leakIndicator(89, "", []string{storedStatement}, ""), true}, // unmarked: the collection's AMBER
		{"stored clear", leakIndicator(90, "", []string{storedClear}, ""), true},
		{"squatted", leakIndicator(91, "", []string{squatted}, ""), false},
	}
	body := []string{
		opencti(openctiAmberStrict, "TLP:AMBER+STRICT"),
		opencti(tlpGreen1, "TLP:GREEN"),
		tlp2Def(envRed, "2025-01-01T00:00:00.000Z", "red"),
		markingDef(envStatement, "2025-01-01T00:00:00.000Z", `,"definition_type":"statement","definition":{"statement":"Do not publish"}`),
		// A's own meaning for the id B defined first: refused as a version
		// of B's object, but it still counts for A's objects.
		tlp2Def(squatted, "2025-01-01T00:00:00.000Z", "red"),
	}
	for i, o := range objs {
		// Objects before the definitions they use, too.
		if i%2 == 0 {
			body = append([]string{o.obj}, body...)
		} else {
			body = append(body, o.obj)
		}
	}
	st := w.a.post(col, body...)
	if num(t, st, "success_count") != len(body)-1 {
		t.Fatalf("A's envelope: %v", st)
	}
	hidden := map[string]string{}
	for _, o := range objs {
		id := o.obj[strings.Index(o.obj, `"indicator--`)+1:]
		id = id[:strings.Index(id, `"`)]
		w.a.get(objectPath(col, id)).ok(http.StatusOK)
		if o.visible {
			w.b.get(objectPath(col, id)).ok(http.StatusOK)
			continue
		}
		hidden[id] = o.label
		likeUnknown(t, w.b, http.MethodGet, col, id, "")
		likeUnknown(t, w.b, http.MethodGet, col, id, "versions/")
		likeUnknown(t, w.b, http.MethodDelete, col, id, "")
	}
	// Listings agree, page by page.
	for _, id := range pageThrough(t, w.b, col) {
		if label, ok := hidden[id]; ok {
			t.Errorf("B lists %s (%s)", id, label)
		}
	}
}
