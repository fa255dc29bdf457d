package access

import (
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

func TestMarkingLevel(t *testing.T) {
	const head = `{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000009","created":"2022-10-01T00:00:00.000Z"`
	for _, tc := range []struct {
		name string
		body string
		want TLP
	}{
		{"TLP 1.0 definition", head + `,"definition_type":"tlp","name":"TLP:GREEN","definition":{"tlp":"green"}}`, TLPGreen},
		{"TLP 1.0 white", head + `,"definition_type":"tlp","definition":{"tlp":"white"}}`, TLPClear},
		{"TLP 2.0 extension", head + `,"name":"TLP:AMBER+STRICT","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"amber+strict"}}}`, TLPAmberStrict},
		// OpenCTI (current): definition_type "TLP", the level in the name,
		// its own extension.
		{"OpenCTI", head + `,"name":"TLP:AMBER+STRICT","definition_type":"TLP","extensions":{"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba":{"extension_type":"property-extension","order":3,"color":"#d84315"}}}`, TLPAmberStrict},
		// OpenCTI (older): the level without "TLP:" in definition.tlp.
		{"OpenCTI older", head + `,"name":"TLP:RED","definition_type":"tlp","definition":{"tlp":"RED"}}`, TLPRed},
		{"statement", head + `,"definition_type":"statement","definition":{"statement":"Copyright 2025 ACME"}}`, TLPUnmarked},
		{"PAP", head + `,"name":"PAP:RED","definition_type":"PAP","definition":{"PAP":"PAP:RED"}}`, TLPUnmarked},
		// Contradictions resolve to the strictest.
		{"definition and name disagree", head + `,"definition_type":"tlp","name":"TLP:RED","definition":{"tlp":"green"}}`, TLPRed},
		{"statement named TLP", head + `,"definition_type":"statement","name":"TLP:AMBER","definition":{"statement":"handle as amber"}}`, TLPAmber},
		// TLP without a level Mitra knows: never weaker than RED.
		{"unknown TLP level", head + `,"definition_type":"tlp","definition":{"tlp":"black"}}`, TLPUnresolved},
		{"TLP extension without a level", head + `,"extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension"}}}`, TLPUnresolved},
	} {
		got, err := MarkingLevel([]byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%s: MarkingLevel = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"type":"indicator"}`, `[1]`, `{`} {
		if _, err := MarkingLevel([]byte(bad)); err == nil {
			t.Errorf("MarkingLevel(%s) succeeded", bad)
		}
	}
}

func TestResolver(t *testing.T) {
	const (
		custom    = "marking-definition--00000000-0000-4000-8000-000000000001"
		statement = "marking-definition--00000000-0000-4000-8000-000000000002"
		unknown   = "marking-definition--00000000-0000-4000-8000-000000000003"
		green1    = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
		red2      = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
	)
	var r Resolver
	r.Learn(custom, TLPAmberStrict)
	r.Learn(custom, TLPClear) // a second, weaker body for the same id does not weaken it
	r.Learn(statement, TLPUnmarked)
	r.Learn(red2, TLPClear) // the well-known ids cannot be redefined
	for _, tc := range []struct {
		refs []string
		want TLP
	}{
		{nil, TLPUnmarked},
		{[]string{statement}, TLPUnmarked},
		{[]string{statement, green1}, TLPGreen},
		{[]string{custom, green1}, TLPAmberStrict},
		{[]string{red2}, TLPRed},
		{[]string{green1, unknown}, TLPUnresolved},
	} {
		if got := r.Classify(tc.refs); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.refs, got, tc.want)
		}
	}
	if got := r.Unknown([]string{green1, unknown, custom, unknown}); len(got) != 1 || got[0] != unknown {
		t.Errorf("Unknown = %v", got)
	}
	var nilR *Resolver
	if got := nilR.Classify([]string{custom}); got != TLPUnresolved {
		t.Errorf("nil resolver: %v", got)
	}
}

func TestDecideUnresolved(t *testing.T) {
	const orgA, orgB = "identity--a", "identity--b"
	col := &store.Collection{Grants: []store.Grant{{Kind: store.GrantGroup, Subject: "g", Read: true}}, Recipients: []string{orgB}}
	e := &store.Entry{TLP: int(TLPUnresolved), Submitter: orgA, Recipients: []string{orgB}}
	if d := Decide(&Principal{Organisation: orgA, Groups: []string{"g"}, Role: RoleAnalyst}, col, e); !d.Allowed {
		t.Errorf("submitter refused: %+v", d)
	}
	// Not even a recipient named in the object or by the collection: the
	// author's intent is unknown.
	if d := Decide(&Principal{Organisation: orgB, Groups: []string{"g"}, Role: RoleAdmin}, col, e); d.Allowed {
		t.Errorf("another organisation reads an unresolved marking: %+v", d)
	}
	if TLPUnresolved.String() != "unresolved marking" || TLPUnresolved <= TLPRed {
		t.Error("TLPUnresolved must be named and stricter than RED")
	}
}
