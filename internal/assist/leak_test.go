package assist_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestListingLeaks: requests, their steps and directory entries are shown
// only as access.Decide allows: an organisation with a read grant sees
// AMBER, not AMBER+STRICT or RED; a sharing group's member likewise; an
// organisation without a grant (the peer, which only writes) sees
// nothing; a hidden request is answered exactly as a missing one.
func TestListingLeaks(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		ctx := t.Context()
		clk := &clock{t: t0}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		duty, _ := contactsOfB(t, a, b)
		other := &store.Organisation{Name: "Other ministry"}
		member := &store.Organisation{Name: "Group member"}
		outsider := &store.Organisation{Name: "Outsider"}
		for _, o := range []*store.Organisation{other, member, outsider} {
			must(t, a.st.CreateOrganisation(ctx, o))
		}
		g := &store.Group{Name: "national-csirts", Orgs: []string{member.ID}}
		must(t, a.st.CreateGroup(ctx, g))
		for _, c := range []*store.Collection{a.assistCol, a.dirCol} {
			must(t, a.st.SetPartyGrant(ctx, c.ID, store.GrantOrg, other.ID, true, true))
			must(t, a.st.SetPartyGrant(ctx, c.ID, store.GrantGroup, g.ID, true, false))
		}
		secret, err := a.svc.AddContact(ctx, a.staff, assist.Contact{Name: "Liaison officer", Country: "BB", Kind: "diplomatic", TLP: "amber+strict", Organisation: b.cert.ID})
		if err != nil {
			t.Fatal(err)
		}
		raise := func(tlp string) string {
			r, err := a.svc.Raise(ctx, a.staff, assist.RaiseInput{Contact: duty.ID, Kind: "analysis", TLP: tlp, ResponseTime: time.Hour,
				Concerns: []string{"malware--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}})
			if err != nil {
				t.Fatal(err)
			}
			return r.ID
		}
		amber, strict, red := raise("amber"), raise("amber+strict"), raise("red")
		tick(t, a)
		// B acknowledges the strict one: the step comes back to A.
		if _, err := b.svc.AddStep(ctx, b.staff, strict, assist.MsgAcknowledge, "seen"); err != nil {
			t.Fatal(err)
		}
		tick(t, b)
		peerOfB, _ := a.st.GetOrganisation(ctx, "Peer CERT B")
		pr := func(org *store.Organisation) *access.Principal {
			groups, _ := a.st.GroupsOf(ctx, org.ID)
			return &access.Principal{User: "u", Organisation: org.ID, Groups: groups, Role: access.RoleAnalyst}
		}
		cases := []struct {
			name     string
			p        *access.Principal
			requests []string
			contacts int
		}{
			{"own CERT", a.staff, []string{amber, strict, red}, 3},
			{"organisation with a read grant", pr(other), []string{amber}, 2},
			{"sharing group member", pr(member), []string{amber}, 2},
			{"organisation without a grant", pr(outsider), nil, 0},
			{"the peer (writes only)", pr(peerOfB), nil, 0},
		}
		for _, c := range cases {
			l, err := a.svc.List(ctx, c.p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range l {
				got = append(got, r.ID)
				if r.ID == amber && len(r.Steps) != 0 {
					t.Errorf("%s: steps on the amber request: %v", c.name, r.Steps)
				}
			}
			slices.Sort(got)
			want := slices.Clone(c.requests)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s sees %v, want %v", c.name, got, want)
			}
			contacts, _ := a.svc.Contacts(ctx, c.p)
			if len(contacts) != c.contacts {
				t.Errorf("%s sees %d contacts, want %d", c.name, len(contacts), c.contacts)
			}
			for _, id := range []string{strict, red} {
				if slices.Contains(c.requests, id) {
					continue
				}
				_, hidden := a.svc.Get(ctx, c.p, id)
				_, missing := a.svc.Get(ctx, c.p, "note--00000000-0000-4000-8000-000000000000")
				if !errors.Is(hidden, assist.ErrNotFound) || !errors.Is(missing, assist.ErrNotFound) {
					t.Errorf("%s: hidden %v, missing %v", c.name, hidden, missing)
				}
				if _, err := a.svc.AddStep(ctx, c.p, id, assist.MsgAcknowledge, ""); !errors.Is(err, assist.ErrNotFound) {
					t.Errorf("%s: step on a hidden request: %v", c.name, err)
				}
			}
		}
		// An organisation that sees A's outgoing request cannot answer it
		// in B's name.
		if _, err := a.svc.AddStep(ctx, pr(other), amber, assist.MsgAnswer, "forged"); !errors.Is(err, assist.ErrForbidden) {
			t.Errorf("another organisation answering A's request: %v", err)
		}
		// The strict request's steps reach A's own staff (named recipients).
		got, err := a.svc.Get(ctx, a.staff, strict)
		if err != nil || len(got.Steps) != 1 || got.Steps[0].Message != assist.MsgAcknowledge {
			t.Errorf("A's staff on the strict request: %+v, %v", got, err)
		}
		// On B, only B's staff see the incoming requests (AMBER+STRICT and
		// RED name B's CERT as recipient).
		if l, _ := b.svc.List(ctx, b.staff); len(l) != 3 {
			t.Errorf("B's staff see %d requests", len(l))
		}
		_ = secret
	})
}
