package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// BenchQueryPages reads 100,000 stored objects in pages of 1,000 straight
// from the store, without HTTP: the store's share of a paginated TAXII read.
func BenchQueryPages(b *testing.B, open Open) {
	ctx := context.Background()
	s := open(b)
	c := &store.Collection{Title: "bench"}
	if err := s.CreateCollection(ctx, c); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const total = 100_000
	for i := 0; i < total/1000; i++ {
		objs := make([]store.Object, 1000)
		for j := range objs {
			objs[j] = Obj(b, Indicator("indicator--"+uuid.NewString(), base, base))
		}
		if _, err := s.AddObjects(ctx, c.ID, objs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var after time.Time
		n := 0
		for {
			p, err := s.QueryObjects(ctx, c.ID, store.Query{AddedAfter: after, Limit: 1000, WithBody: true})
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Entries)
			if !p.More {
				break
			}
			after = p.Entries[len(p.Entries)-1].DateAdded
		}
		if n != total {
			b.Fatalf("read %d", n)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "objects/s")
}

// BenchAddObjects stores batches of 500 new indicators: the store's share
// of TAXII ingest.
func BenchAddObjects(b *testing.B, open Open) {
	ctx := context.Background()
	s := open(b)
	c := &store.Collection{Title: "bench"}
	if err := s.CreateCollection(ctx, c); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	batches := make([][]store.Object, b.N)
	for i := range batches {
		batches[i] = make([]store.Object, 500)
		for j := range batches[i] {
			// Submitted by an organisation, as TAXII ingest is: each new id
			// records its owner.
			batches[i][j] = Obj(b, Indicator("indicator--"+uuid.NewString(), base, base))
			batches[i][j].Submitter = "identity--00000000-0000-4000-8000-0000000000b1"
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.AddObjects(ctx, c.ID, batches[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "objects/s")
}
