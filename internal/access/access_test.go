package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

func TestClassifyAndParseTLP(t *testing.T) {
	for _, tc := range []struct {
		refs []string
		want TLP
	}{
		{nil, TLPUnmarked},
		{[]string{"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"}, TLPClear}, // TLP 1.0 WHITE
		{[]string{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"}, TLPAmber},
		{[]string{"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"}, TLPAmberStrict},
		{[]string{"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"}, TLPRed},
		// OpenCTI's TLP:AMBER+STRICT.
		{[]string{"marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"}, TLPAmberStrict},
		// A marking nobody told the server about may mean anything.
		{[]string{"marking-definition--00000000-0000-4000-8000-000000000001"}, TLPUnresolved},
		{[]string{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--00000000-0000-4000-8000-000000000001"}, TLPUnresolved},
	} {
		if got := Classify(tc.refs); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.refs, got, tc.want)
		}
	}
	for in, want := range map[string]TLP{"clear": TLPClear, "WHITE": TLPClear, "TLP:AMBER+STRICT": TLPAmberStrict, "red": TLPRed, "Green": TLPGreen} {
		if got, err := ParseTLP(in); err != nil || got != want {
			t.Errorf("ParseTLP(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseTLP("purple"); err == nil {
		t.Error("ParseTLP(purple) succeeded")
	}
}

func TestDecide(t *testing.T) {
	const orgA, orgB, orgC, group = "identity--a", "identity--b", "identity--c", "g1"
	col := &store.Collection{Readers: []string{"solo"}, Grants: []store.Grant{{Kind: store.GrantGroup, Subject: group, Read: true}}, Recipients: []string{orgC}}
	a := &Principal{User: "a", Organisation: orgA, Groups: []string{group}, Role: RoleAnalyst}
	b := &Principal{User: "b", Organisation: orgB, Groups: []string{group}, Role: RoleAnalyst}
	c := &Principal{User: "solo", Organisation: orgC, Role: RoleAnalyst}
	out := &Principal{User: "x", Organisation: "identity--x", Role: RoleAdmin}
	sensor := &Principal{User: "s", Organisation: orgA, Groups: []string{group}, Role: RoleSensor}
	for _, tc := range []struct {
		name string
		p    *Principal
		e    store.Entry
		want bool
	}{
		{"green via group", b, store.Entry{TLP: int(TLPGreen), Submitter: orgA}, true},
		{"unmarked is AMBER by default", b, store.Entry{Submitter: orgA}, true},
		{"amber+strict other org", b, store.Entry{TLP: int(TLPAmberStrict), Submitter: orgA}, false},
		{"amber+strict own org", a, store.Entry{TLP: int(TLPAmberStrict), Submitter: orgA}, true},
		{"red named in object", b, store.Entry{TLP: int(TLPRed), Submitter: orgA, Recipients: []string{orgB}}, true},
		{"red named by collection", c, store.Entry{TLP: int(TLPRed), Submitter: orgA}, true},
		{"red not named", b, store.Entry{TLP: int(TLPRed), Submitter: orgA}, false},
		{"no grant, even admin", out, store.Entry{TLP: int(TLPClear)}, false},
		{"sensor reads nothing", sensor, store.Entry{TLP: int(TLPClear)}, false},
		{"nil principal", nil, store.Entry{TLP: int(TLPClear)}, false},
	} {
		d := Decide(tc.p, col, &tc.e)
		if d.Allowed != tc.want || d.Path == "" {
			t.Errorf("%s: %+v, want allowed=%v with a path", tc.name, d, tc.want)
		}
	}
	strict := &store.Collection{Readers: []string{"b"}, DefaultTLP: int(TLPRed)}
	if Decide(b, strict, &store.Entry{Submitter: orgA}).Allowed {
		t.Error("collection default RED ignored for unmarked objects")
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := CreateUser(ctx, st, "ann", "a-long-password", RoleAnalyst, ""); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	auth := NewAuthenticator(st, func() time.Time { return clock })
	secret, tok, err := CreateToken(ctx, st, "ann", RoleReadOnly, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok.Hash, secret) || tok.Hash == secret {
		t.Fatal("the store keeps the secret")
	}
	p, err := auth.Token(ctx, secret)
	if err != nil || p.Role != RoleReadOnly || p.TokenID != tok.ID {
		t.Fatalf("token: %+v, %v", p, err)
	}
	// Scope: a read-only token cannot write, whatever the user may.
	if _, w := CollectionAccess(p, &store.Collection{Readers: []string{"ann"}, Writers: []string{"ann"}}); w {
		t.Error("read-only token may write")
	}
	if _, _, err := CreateToken(ctx, st, "ann", RoleAdmin, 0, now); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("token above the user's role: %v", err)
	}
	// A secret differing in its last character is refused.
	wrong := secret[:len(secret)-1] + string(rune(secret[len(secret)-1])^1)
	if _, err := auth.Token(ctx, wrong); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("near-miss secret: %v", err)
	}
	clock = now.Add(time.Hour)
	if _, err := auth.Token(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired token: %v", err)
	}
	clock = now
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Token(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	// Passwords: the wrong one and an unknown user fail alike.
	if _, err := auth.Password(ctx, "ann", "wrong-password"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := auth.Password(ctx, "nobody", "a-long-password"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("unknown user: %v", err)
	}
	if p, err := auth.Password(ctx, "ann", "a-long-password"); err != nil || p.User != "ann" {
		t.Errorf("right password: %v, %v", p, err)
	}
}

func TestIdentityObjectIsValidSTIX(t *testing.T) {
	o := &store.Organisation{ID: "identity--56aa563d-042b-419c-9a1f-cf21df626a34", Name: "Grid \"Operator\"", Created: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)}
	raw := IdentityObject(o)
	if ps := (&stix.Validator{}).Validate(raw); len(ps) > 0 {
		t.Fatalf("identity %s: %v", raw, ps)
	}
	if !strings.Contains(string(raw), `"identity_class":"organization"`) || !strings.Contains(string(raw), o.ID) {
		t.Errorf("identity = %s", raw)
	}
}
