package detect

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
)

// idNamespace names Mitra's sighting and observed-data ids (UUIDv5,
// STIX 2.1 §2.9: any namespace but the SCO one).
var idNamespace = uuid.MustParse("6d0b3a0e-4f3c-5c55-9a51-6d6974726131")

// tlp20 are the TLP 2.0 marking-definition ids by level.
var tlp20 = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// renderer turns merged deltas into the next versions of sightings.
type renderer struct {
	// idSpace names the sightings of one organisation: every detector of
	// the organisation, and every restart of one, names a bucket alike.
	idSpace    uuid.UUID
	org        string // the organisation (never written when anonymous)
	identity   string // created_by_ref and where_sighted_refs ("" none)
	tlp        access.TLP
	maxObjects int
	marking    func(indicator string) (access.TLP, []string)
	now        func() time.Time
}

func (r *renderer) sightingID(k aggKey) string {
	return "sighting--" + uuid.NewSHA1(r.idSpace, []byte("sighting|"+k.indicator+"|"+strconv.FormatInt(k.bucket, 10))).String()
}

func (r *renderer) dataID(k aggKey) string {
	return "observed-data--" + uuid.NewSHA1(r.idSpace, []byte("observed-data|"+k.indicator+"|"+strconv.FormatInt(k.bucket, 10))).String()
}

// storedSighting is what a write reads back of a stored sighting.
type storedSighting struct {
	Created    string   `json:"created"`
	Modified   string   `json:"modified"`
	FirstSeen  string   `json:"first_seen"`
	LastSeen   string   `json:"last_seen"`
	Count      int64    `json:"count"`
	Markings   []string `json:"object_marking_refs"`
	Recipients []string `json:"x_mitra_recipients"`
}

// storedData is what a write reads back of a stored observed-data.
type storedData struct {
	Created  string   `json:"created"`
	Modified string   `json:"modified"`
	Refs     []string `json:"object_refs"`
}

func parseTS(s string) time.Time {
	t, err := stix.ParseTimestamp(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// render returns the objects of the next version of every key's sighting
// (SCOs first, then the observed-data, then the sighting), merged with
// the stored versions in prev.
func (r *renderer) render(deltas map[aggKey]*delta, prev map[string]json.RawMessage) []json.RawMessage {
	now := r.now().UTC().Truncate(time.Microsecond)
	out := make([]json.RawMessage, 0, 2*len(deltas))
	keys := make([]aggKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	// A stable order keeps the writes of detectors sharing a store in the
	// same lock order and makes tests reproducible.
	slices.SortFunc(keys, func(a, b aggKey) int {
		if a.bucket != b.bucket {
			return int(min(max(a.bucket-b.bucket, -1), 1))
		}
		if a.indicator < b.indicator {
			return -1
		}
		if a.indicator > b.indicator {
			return 1
		}
		return 0
	})
	for _, k := range keys {
		out = r.renderOne(out, k, deltas[k], prev, now)
	}
	return out
}

func (r *renderer) renderOne(out []json.RawMessage, k aggKey, d *delta, prev map[string]json.RawMessage, now time.Time) []json.RawMessage {
	sid, did := r.sightingID(k), r.dataID(k)
	var ps storedSighting
	var pd storedData
	havePS := prev[sid] != nil && json.Unmarshal(prev[sid], &ps) == nil
	havePD := prev[did] != nil && json.Unmarshal(prev[did], &pd) == nil

	first, last := time.Unix(0, d.first).UTC(), time.Unix(0, d.last).UTC()
	count := d.count
	created := now
	mod := now
	level, recipients := access.TLPUnmarked, []string(nil)
	if r.marking != nil {
		level, recipients = r.marking(k.indicator)
	}
	level = max(level, r.tlp)
	if havePS {
		count += ps.Count
		if t := parseTS(ps.FirstSeen); !t.IsZero() && t.Before(first) {
			first = t
		}
		if t := parseTS(ps.LastSeen); t.After(last) {
			last = t
		}
		if t := parseTS(ps.Created); !t.IsZero() {
			created = t
		}
		if t := parseTS(ps.Modified); !mod.After(t) {
			mod = t.Add(time.Microsecond)
		}
		// Never loosen what a stored version was marked with.
		level = max(level, access.Classify(ps.Markings))
		recipients = append(recipients, ps.Recipients...)
	}
	if havePD {
		if t := parseTS(pd.Modified); !mod.After(t) {
			mod = t.Add(time.Microsecond)
		}
	}
	if mod.Before(created) {
		created = mod
	}
	count = min(count, maxCount)
	if level == access.TLPUnmarked {
		level = access.TLPAmber
	}
	markings := []string{tlp20[level]}
	var recips []string
	if level >= access.TLPAmberStrict {
		for _, o := range recipients {
			if o != r.org && o != access.AnonymousIdentity && !slices.Contains(recips, o) {
				recips = append(recips, o)
			}
		}
		slices.Sort(recips)
	}
	mark := func(m map[string]any) {
		m["object_marking_refs"] = markings
		if len(recips) > 0 {
			m[access.RecipientsProperty] = recips
		}
	}

	// The summary: the stored references, then new objects of the samples.
	refs := []string{}
	if havePD {
		refs = append(refs, pd.Refs...)
	}
	if len(refs) < r.maxObjects {
		seen := map[string]bool{}
		for _, id := range refs {
			seen[id] = true
		}
	samples:
		for _, objs := range d.samples {
			for _, s := range summarise(objs) {
				if len(refs) >= r.maxObjects {
					break samples
				}
				if seen[s.id] {
					continue
				}
				seen[s.id] = true
				refs = append(refs, s.id)
				mark(s.m)
				if b, err := json.Marshal(s.m); err == nil {
					out = append(out, b)
				}
			}
		}
	}
	sighting := map[string]any{
		"type": "sighting", "spec_version": "2.1", "id": sid,
		"created": stix.FormatMicro(created), "modified": stix.FormatMicro(mod),
		"first_seen": stix.FormatMicro(first), "last_seen": stix.FormatMicro(last),
		"count": count, "sighting_of_ref": k.indicator,
	}
	if r.identity != "" {
		sighting["created_by_ref"] = r.identity
		sighting["where_sighted_refs"] = []string{r.identity}
	}
	mark(sighting)
	if len(refs) > 0 {
		dcreated := created
		if havePD {
			if t := parseTS(pd.Created); !t.IsZero() {
				dcreated = t
			}
		}
		od := map[string]any{
			"type": "observed-data", "spec_version": "2.1", "id": did,
			"created": stix.FormatMicro(dcreated), "modified": stix.FormatMicro(mod),
			"first_observed": stix.FormatMicro(first), "last_observed": stix.FormatMicro(last),
			"number_observed": max(count, 1), "object_refs": refs,
		}
		if r.identity != "" {
			od["created_by_ref"] = r.identity
		}
		mark(od)
		b, _ := json.Marshal(od)
		out = append(out, b)
		sighting["observed_data_refs"] = []string{did}
	}
	b, _ := json.Marshal(sighting)
	return append(out, b)
}

// sampleOf is the sample a match keeps: the objects of its observations.
func sampleOf(obs []*pattern.Observation) []pattern.Object {
	if len(obs) == 1 {
		return copyObjects(obs[0].Objects)
	}
	var objs []pattern.Object
	for _, o := range obs {
		objs = append(objs, o.Objects...)
	}
	return copyObjects(objs)
}
