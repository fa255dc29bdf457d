package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// testAccountChanges: UpdateUser and SetGroupOrgs replace what they say
// and leave everything unchanged when they refuse.
func testAccountChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	def, err := s.DefaultOrganisation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := &store.Organisation{Name: "Other CERT"}
	if err := s.CreateOrganisation(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "ann", Role: "analyst", PasswordHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Name: "ann", Organisation: other.ID, Role: "admin", PasswordHash: "h2"}
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, "ann")
	if err != nil || got.Organisation != other.ID || got.Role != "admin" || got.PasswordHash != "h2" || got.Created.IsZero() || !got.Created.Equal(u.Created) {
		t.Errorf("after update: %+v (%+v), %v", got, u, err)
	}
	for _, tc := range []struct {
		u    store.User
		want error
	}{
		{store.User{Name: "nobody", Organisation: def.ID, Role: "analyst"}, store.ErrNotFound},
		{store.User{Name: "ann", Organisation: "identity--00000000-0000-4000-8000-000000000000", Role: "reader"}, store.ErrNotFound},
		{store.User{Name: "ann", Role: "reader"}, store.ErrInvalid},
	} {
		if err := s.UpdateUser(ctx, &tc.u); !errors.Is(err, tc.want) {
			t.Errorf("update %+v: %v, want %v", tc.u, err, tc.want)
		}
	}
	if got, _ := s.GetUser(ctx, "ann"); got.Role != "admin" || got.Organisation != other.ID {
		t.Errorf("refused update changed the user: %+v", got)
	}

	third := &store.Organisation{Name: "Third CERT"}
	if err := s.CreateOrganisation(ctx, third); err != nil {
		t.Fatal(err)
	}
	g := &store.Group{Name: "energy", Orgs: []string{def.ID, other.ID}}
	if err := s.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	members := func() []string {
		t.Helper()
		got, err := s.GetGroup(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		o := slices.Clone(got.Orgs)
		slices.Sort(o)
		return o
	}
	want := []string{other.ID, third.ID}
	slices.Sort(want)
	if err := s.SetGroupOrgs(ctx, g.ID, []string{third.ID, other.ID, third.ID}); err != nil {
		t.Fatal(err)
	}
	eq(t, "members", members(), want)
	if in, err := s.GroupsOf(ctx, def.ID); err != nil || len(in) != 0 {
		t.Errorf("removed member still in groups %v, %v", in, err)
	}
	if err := s.SetGroupOrgs(ctx, g.ID, []string{def.ID, "identity--00000000-0000-4000-8000-000000000000"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown organisation: %v", err)
	}
	eq(t, "members after a refused change", members(), want)
	if err := s.SetGroupOrgs(ctx, "no-such-group", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if err := s.SetGroupOrgs(ctx, g.ID, nil); err != nil {
		t.Fatal(err)
	}
	eq(t, "members after emptying", members(), nil)
}
