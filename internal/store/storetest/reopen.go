package storetest

import (
	"context"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// ReopenKeepsData checks that what a store holds survives closing it:
// reopen opens the same database again each time it is called (and closes
// it at the test's end). The default organisation is created once.
func ReopenKeepsData(t *testing.T, reopen Open) {
	ctx := context.Background()
	s := reopen(t)
	org1, err := s.DefaultOrganisation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "kept"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = reopen(t)
	org2, err := s.DefaultOrganisation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if org1.ID != org2.ID {
		t.Errorf("default organisation changed on reopen: %s then %s", org1.ID, org2.ID)
	}
	if _, err := s.GetCollection(ctx, c.ID); err != nil {
		t.Errorf("collection lost on reopen: %v", err)
	}
}
