package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// ImportFeeds checks store.ImportFeeds and store.ImportTx (issue 16):
// feeds round-trip with their run records, warning lists are replaced by
// name, and inactive flags commit (and roll back) with their transaction.
func ImportFeeds(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, ok := s.(store.ImportFeeds)
	if !ok {
		t.Fatal("the store does not implement store.ImportFeeds")
	}
	f := &store.ImportFeed{Name: "abuse", URL: "https://example.org/feed.csv", Format: "csv", Collection: "c1",
		User: "alice", Organisation: "identity--1", Options: []byte(`{"tlp":"green"}`), Interval: time.Hour}
	if err := st.CreateImportFeed(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateImportFeed(ctx, f); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second feed with the same name: %v, want ErrConflict", err)
	}
	next := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	f.ETag, f.LastModified, f.LastRun, f.NextRun, f.LastReport = `"v1"`, "Mon, 02 Jan 2026 00:00:00 GMT", next.Add(-time.Hour), next, []byte(`{"added":3}`)
	if err := st.SaveImportFeedRun(ctx, f); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetImportFeed(ctx, "abuse")
	if err != nil {
		t.Fatal(err)
	}
	if got.ETag != `"v1"` || got.LastModified != f.LastModified || !got.NextRun.Equal(next) || string(got.LastReport) != `{"added":3}` ||
		got.Interval != time.Hour || string(got.Options) != `{"tlp":"green"}` || got.User != "alice" {
		t.Errorf("feed read back as %+v", got)
	}
	// Of two servers claiming the same due run, one gets it.
	won, err := st.ClaimImportFeed(ctx, "abuse", next, next.Add(time.Hour))
	if err != nil || !won {
		t.Errorf("first claim: %v, %v", won, err)
	}
	if won, err := st.ClaimImportFeed(ctx, "abuse", next, next.Add(time.Hour)); err != nil || won {
		t.Errorf("second claim of the same run: %v, %v", won, err)
	}
	if l, err := st.ListImportFeeds(ctx); err != nil || len(l) != 1 {
		t.Errorf("ListImportFeeds = %d, %v", len(l), err)
	}
	if err := st.DeleteImportFeed(ctx, "abuse"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetImportFeed(ctx, "abuse"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted feed: %v", err)
	}

	for _, entries := range [][]string{{"10.0.0.0/8"}, {"192.0.2.0/24", "198.51.100.0/24"}} {
		if err := st.PutWarningList(ctx, &store.WarningList{Name: "own", Kind: "cidr", Entries: entries}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := st.ListWarningLists(ctx)
	if err != nil || len(ls) != 1 || len(ls[0].Entries) != 2 || ls[0].Entries[1] != "198.51.100.0/24" {
		t.Errorf("ListWarningLists = %+v, %v", ls, err)
	}
	if err := st.DeleteWarningList(ctx, "own"); err != nil {
		t.Fatal(err)
	}

	col := &store.Collection{Title: "flags"}
	if err := s.CreateCollection(ctx, col); err != nil {
		t.Fatal(err)
	}
	flag := store.InactiveFlag{ObjectID: "indicator--a", Collection: col.ID, List: "rfc1918", Value: "10.1.1.1", Reason: "10.1.1.1 is on warning list rfc1918", At: next}
	rollback := errors.New("roll back")
	err = s.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		if err := tx.(store.ImportTx).FlagInactive(ctx, []store.InactiveFlag{flag}); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	if _, in, err := st.Inactive(ctx, "indicator--a"); err != nil || in {
		t.Errorf("a rolled back flag is visible (%v, %v)", in, err)
	}
	err = s.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		return tx.(store.ImportTx).FlagInactive(ctx, []store.InactiveFlag{flag, {ObjectID: "indicator--b", Collection: col.ID, List: "x", Value: "v", Reason: "r", At: next}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if reason, in, err := st.Inactive(ctx, "indicator--a"); err != nil || !in || reason != flag.Reason {
		t.Errorf("Inactive = %q, %v, %v", reason, in, err)
	}
	if l, err := st.ListInactive(ctx, col.ID); err != nil || len(l) != 2 || l[0].Value != "10.1.1.1" || !l[0].At.Equal(next) {
		t.Errorf("ListInactive = %+v, %v", l, err)
	}
	err = s.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		return tx.(store.ImportTx).ClearInactive(ctx, []string{"indicator--a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, in, _ := st.Inactive(ctx, "indicator--a"); in {
		t.Error("a cleared flag is still there")
	}
}
