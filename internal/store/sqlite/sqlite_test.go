package sqlite_test

import (
	"context"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

func open(t testing.TB) store.Store {
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	org1, _ := s.DefaultOrganisation(ctx)
	c := &store.Collection{Title: "kept"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	org2, _ := s.DefaultOrganisation(ctx)
	if org1.ID != org2.ID {
		t.Errorf("default organisation changed on reopen: %s then %s", org1.ID, org2.ID)
	}
	if _, err := s.GetCollection(ctx, c.ID); err != nil {
		t.Errorf("collection lost on reopen: %v", err)
	}
}

// Two handles on one file, as a running server and a CLI command have: a
// change made through one is visible through the other at once.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateUser(ctx, &store.User{Name: "late", Role: "analyst", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetUser(ctx, "late"); err != nil {
		t.Errorf("user created by the other handle not visible: %v", err)
	}
}

func TestSyncOption(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Sync: "normal"})
	if err != nil {
		t.Fatalf("sync=normal: %v", err)
	}
	s.Close()
	if _, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Sync: "sometimes"}); err == nil {
		t.Error("sync=sometimes accepted")
	}
}
