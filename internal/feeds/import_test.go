package feeds_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// A real STIX 2.1 bundle (ATT&CK for ICS) imported and read back over
// TAXII GET comes back byte for byte, and importing it again stores
// nothing.
func TestImportSTIXRoundTripByteFaithful(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("attack", org)
	data := gunzip(t, "/work/shared/data/ics-attack-18.1.json.gz")
	rep := w.importSource(p, col, feeds.STIXSource(bytes.NewReader(data)), feeds.Options{})
	want, err := stix.SplitInput(data)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Received != len(want) || rep.Added != len(want) || rep.Rejected != 0 {
		t.Fatalf("report %+v, want %d added", rep, len(want))
	}
	got := w.objects("alice", col)
	if len(got) != len(want) {
		t.Fatalf("GET returned %d objects, want %d", len(got), len(want))
	}
	for _, raw := range want {
		id, _ := obj(t, raw)["id"].(string)
		if !bytes.Equal(got[id], raw) {
			t.Fatalf("%s came back as\n%s\nwant\n%s", id, got[id], raw)
		}
	}
	again := w.importSource(p, col, feeds.STIXSource(bytes.NewReader(data)), feeds.Options{})
	if again.Added != 0 || again.Updated != 0 || again.Unchanged != len(want) {
		t.Errorf("re-import: %+v, want everything unchanged", again)
	}
}

// STIX 2.0 objects are upgraded as the 2.1 specification requires, keep
// their ids and versions, and import again as unchanged.
func TestImportSTIX20Upgrade(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("old", org)
	rep := w.importSource(p, col, feeds.STIXSource(open(t, "stix20-bundle.json")), feeds.Options{})
	if rep.Added != 8 || rep.Rejected != 0 {
		t.Fatalf("report %+v", rep)
	}
	got := w.objects("alice", col)
	for id, check := range map[string]func(map[string]any) string{
		"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f": func(m map[string]any) string {
			if m["pattern_type"] != "stix" || !same(m["indicator_types"], "malicious-activity") || m["labels"] != nil ||
				m["modified"] != "2016-04-06T20:03:48.000Z" || !same(m["object_marking_refs"], "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da") {
				return "pattern_type, indicator_types, labels, modified or marking"
			}
			return ""
		},
		"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b": func(m map[string]any) string {
			if !same(m["malware_types"], "remote-access-trojan") || m["is_family"] != true || m["labels"] != nil {
				return "malware_types or is_family"
			}
			return ""
		},
		"report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3": func(m map[string]any) string {
			if !same(m["report_types"], "threat-report") {
				return "report_types"
			}
			return ""
		},
		"tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3e": func(m map[string]any) string {
			if !same(m["tool_types"], "remote-access") {
				return "tool_types"
			}
			return ""
		},
		"threat-actor--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f": func(m map[string]any) string {
			if !same(m["threat_actor_types"], "crime-syndicate") {
				return "threat_actor_types"
			}
			return ""
		},
		"observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf": func(m map[string]any) string {
			if _, ok := m["objects"].(map[string]any)["0"]; !ok {
				return "objects container"
			}
			return ""
		},
		"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff": func(m map[string]any) string {
			if m["identity_class"] != "organization" {
				return "identity_class"
			}
			return ""
		},
		"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad": func(m map[string]any) string { return "" },
	} {
		raw, ok := got[id]
		if !ok {
			t.Errorf("%s missing", id)
			continue
		}
		m := obj(t, raw)
		if m["spec_version"] != "2.1" {
			t.Errorf("%s: spec_version %v", id, m["spec_version"])
		}
		if bad := check(m); bad != "" {
			t.Errorf("%s: %s wrong in %s", id, bad, raw)
		}
	}
	again := w.importSource(p, col, feeds.STIXSource(open(t, "stix20-bundle.json")), feeds.Options{})
	if again.Unchanged != 8 || again.Added+again.Updated != 0 {
		t.Errorf("re-import: %+v", again)
	}
}

func same(v any, want ...string) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

// The chosen TLP and confidence go on objects that carry none, without
// touching the rest of their bytes; an object's own marking stays; the
// TLP applies to readers exactly as for a POST.
func TestImportTLPAndConfidence(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.org("a"), w.org("b")
	pa := w.member("alice", a)
	w.member("bob", b)
	col := w.collection("shared", a, b)
	unmarked := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b001","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[domain-name:value = 'bad.org']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	marked := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b002","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","confidence":10,"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],"pattern":"[domain-name:value = 'worse.org']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	sco := `{"type":"domain-name","spec_version":"2.1","id":"domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5","value":"bad.org"}`
	conf := 80
	rep := w.importSource(pa, col, feeds.STIXSource(strings.NewReader(`{"type":"bundle","id":"bundle--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b000","objects":[`+unmarked+`,`+marked+`,`+sco+`]}`)),
		feeds.Options{TLP: "red", Confidence: &conf})
	if rep.Added != 3 {
		t.Fatalf("report %+v", rep)
	}
	mine := w.objects("alice", col)
	wantUnmarked := `{"object_marking_refs":["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"],"confidence":80,` + unmarked[1:]
	if got := string(mine["indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b001"]); got != wantUnmarked {
		t.Errorf("unmarked indicator stored as\n%s\nwant\n%s", got, wantUnmarked)
	}
	if got := string(mine["indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b002"]); got != marked {
		t.Errorf("marked indicator changed:\n%s", got)
	}
	if got := string(mine["domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5"]); !strings.HasPrefix(got, `{"object_marking_refs":["marking-definition--e828b379`) || strings.Contains(got, "confidence") {
		t.Errorf("observable stored as %s (marked, never a confidence)", got)
	}
	theirs := w.objects("bob", col)
	if _, ok := theirs["indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b001"]; ok {
		t.Error("another organisation reads the RED indicator")
	}
	if _, ok := theirs["indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b002"]; !ok {
		t.Error("the GREEN indicator is hidden from the collection's other reader")
	}
	if _, err := w.imp.Import(t.Context(), pa, col, feeds.STIXSource(strings.NewReader(sco)), feeds.Options{Confidence: new(101)}, nil); !errors.Is(err, feeds.ErrInvalid) {
		t.Errorf("confidence 101: %v", err)
	}
}

// An import into a collection the caller may not write to is refused as
// a TAXII POST is, and stores nothing.
func TestImportNeedsWriteAccess(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.org("a"), w.org("b")
	w.member("alice", a)
	pb := w.member("bob", b)
	col := w.collection("a-only", a)
	_, err := w.imp.Import(t.Context(), pb, col, feeds.STIXSource(open(t, "stix20-bundle.json")), feeds.Options{}, nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("import into another's collection: %v", err)
	}
	if n := len(w.objects("alice", col)); n != 0 {
		t.Errorf("%d objects stored", n)
	}
}

// Refusals by the TAXII checks are counted with their reasons, and the
// valid objects of the same batch are stored.
func TestImportReportsRejections(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("c", org)
	good := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b011","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[domain-name:value = 'bad.org']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	bad := `{"type":"indicator","spec_version":"2.1","id":"indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b012","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[domain-name:value = ","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	rep := w.importSource(p, col, feeds.STIXSource(strings.NewReader(`{"objects":[`+good+`,`+bad+`]}`)), feeds.Options{})
	if rep.Added != 1 || rep.Rejected != 1 || len(rep.Rejections) != 1 || rep.Rejections[0].ID != "indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b012" ||
		!strings.Contains(rep.Rejections[0].Reason, "pattern") {
		t.Errorf("report %+v", rep)
	}
	if !slices.Contains(keys(w.objects("alice", col)), "indicator--6ad6e0b1-8f0e-4c62-a1b6-0a7ea1e1b011") {
		t.Error("the valid object was not stored")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
