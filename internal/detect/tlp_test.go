package detect_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

const (
	tRed   = "indicator--d0000000-0000-4000-8000-00000000000r"
	tGreen = "indicator--d0000000-0000-4000-8000-00000000000g"
	red20  = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
	grn20  = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
)

// addMarked stores raw as the store does for a TAXII POST: TLP and
// recipients from the object.
func addMarked(t *testing.T, st store.Store, coll, org string, raw json.RawMessage) {
	t.Helper()
	h, probs := (&stix.Validator{}).Inspect(raw)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: "2.1", Raw: raw, Submitter: org,
		TLP: int(access.Classify(h.MarkingRefs)), Recipients: h.Recipients}
	o.Version, o.VersionRaw, _ = h.Version()
	res, err := st.AddObjects(t.Context(), coll, []store.Object{o}, nil)
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
}

// A RED indicator released to the detector's organisation: its sighting,
// observed-data and SCOs are RED, readable by the detector's organisation
// and the indicator's producer (a named recipient), by nobody else who
// reads the sightings collection. The detector's organisation asked for
// anonymity: its identity is in none of the objects written.
func TestSightingTLPAndAnonymity(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	producer := &store.Organisation{Name: "Producer CERT"}
	sensor := &store.Organisation{Name: "Grid Operator", AnonymiseSightings: true}
	other := &store.Organisation{Name: "Other Member"}
	for _, o := range []*store.Organisation{producer, sensor, other} {
		if err := st.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	intel := &store.Collection{Title: "Indicators"}
	out := &store.Collection{Title: "Sightings"}
	for _, c := range []*store.Collection{intel, out} {
		if err := st.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, o := range []*store.Organisation{producer, sensor, other} {
			if err := st.SetPartyGrant(ctx, c.ID, store.GrantOrg, o.ID, true, o == sensor || c == intel); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out, err = st.GetCollection(ctx, out.ID); err != nil {
		t.Fatal(err)
	}
	tRedID := strings.Replace(tRed, "00000000000r", "000000000001", 1)
	tGreenID := strings.Replace(tGreen, "00000000000g", "000000000002", 1)
	addMarked(t, st, intel.ID, producer.ID, indicator(tRedID, "[domain-name:value = 'secret.example.org']", "2024-01-01T00:00:00.000Z",
		map[string]any{"object_marking_refs": []string{red20}, access.RecipientsProperty: []string{sensor.ID}}))
	addMarked(t, st, intel.ID, producer.ID, indicator(tGreenID, "[domain-name:value = 'public.example.org']", "2024-01-01T00:00:00.000Z",
		map[string]any{"object_marking_refs": []string{grn20}}))

	principal := func(o *store.Organisation) *access.Principal {
		groups, err := st.GroupsOf(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		return &access.Principal{Organisation: o.ID, Groups: groups, Role: access.RoleAnalyst}
	}
	d, err := detect.New(detect.Config{
		Indicators: &detect.StoreIndicators{Store: st, Principal: principal(sensor)},
		Sink:       &detect.StoreSink{Store: st, Collection: out.ID, Submitter: sensor.ID},
		Identity:   sensor.ID, Anonymous: sensor.AnonymiseSightings, Flush: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := dnsAt(0, 10, "secret.example.org") + dnsAt(0, 11, "public.example.org") + dnsAt(0, 12, "secret.example.org")
	if err := d.Run(ctx, &detect.ReaderSource{Label: "stdin", R: io.NopCloser(strings.NewReader(in))}); err != nil {
		t.Fatal(err)
	}

	all := allVersions(t, st, out.ID)
	if len(all) == 0 {
		t.Fatal("nothing written")
	}
	var redSighting, greenSighting *store.Entry
	for id, vs := range all {
		for i := range vs {
			e := &vs[i]
			if bytes.Contains(e.Raw, []byte(sensor.ID)) {
				t.Errorf("%s names the anonymous organisation: %s", id, e.Raw)
			}
			if e.Type == "sighting" {
				switch {
				case bytes.Contains(e.Raw, []byte(tRedID)):
					redSighting = e
				case bytes.Contains(e.Raw, []byte(tGreenID)):
					greenSighting = e
				}
			}
			// Whatever the other member can read says nothing of the RED
			// indicator.
			if access.Decide(principal(other), out, e).Allowed && (bytes.Contains(e.Raw, []byte("secret.example.org")) || bytes.Contains(e.Raw, []byte(tRedID))) {
				t.Errorf("%s readable outside the RED indicator's audience: %s", id, e.Raw)
			}
		}
	}
	if redSighting == nil || greenSighting == nil {
		t.Fatalf("sightings missing: red %v green %v", redSighting, greenSighting)
	}
	if access.TLP(redSighting.TLP) != access.TLPRed {
		t.Errorf("RED indicator's sighting is %v", access.TLP(redSighting.TLP))
	}
	for _, o := range []*store.Organisation{sensor, producer} {
		if !access.Decide(principal(o), out, redSighting).Allowed {
			t.Errorf("%s cannot read the RED sighting: %s", o.Name, redSighting.Raw)
		}
	}
	if access.Decide(principal(other), out, redSighting).Allowed {
		t.Error("the other member reads the RED sighting")
	}
	// The GREEN indicator's sighting takes the telemetry's AMBER and is
	// readable by every reader of the collection.
	if access.TLP(greenSighting.TLP) != access.TLPAmber || !access.Decide(principal(other), out, greenSighting).Allowed {
		t.Errorf("GREEN indicator's sighting: %v, readable by the other member: %v", access.TLP(greenSighting.TLP), access.Decide(principal(other), out, greenSighting))
	}
	var s struct {
		Count     int64    `json:"count"`
		CreatedBy string   `json:"created_by_ref"`
		Where     []string `json:"where_sighted_refs"`
	}
	json.Unmarshal(redSighting.Raw, &s)
	if s.Count != 2 || s.CreatedBy != access.AnonymousIdentity || len(s.Where) != 1 || s.Where[0] != access.AnonymousIdentity {
		t.Errorf("RED sighting: %s", redSighting.Raw)
	}
	checkSummaries(t, st, out.ID)
}
