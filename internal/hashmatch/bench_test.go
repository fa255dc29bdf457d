package hashmatch_test

import (
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/store"
)

// BenchmarkMatch loads MITRA_BENCH_HASH_N (default 20,000) shared hashes
// through the TAXII ingest into a SQLite store, half of them TLP:RED to
// their owner, and queries the service as another organisation with PDQ
// hashes 8 bits away from stored ones: the whole match path (index, access
// decision per candidate, verdicts), without HTTP. It reports the load
// time and p50/p99 query latency.
func BenchmarkMatch(b *testing.B) {
	n := 20000
	if v := os.Getenv("MITRA_BENCH_HASH_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	w := newWorldB(b, openSQLite)
	a, o := w.org("A", false), w.org("B", false)
	anna := w.member("anna", a, access.RoleAnalyst)
	g := w.group("all", a, o)
	coll := w.collection(&store.Collection{Title: "hashes", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g, Read: true, Write: true}}})
	r := rand.New(rand.NewPCG(1, 2))
	pdqs := make([][32]byte, n)
	now := time.Now()
	for lo := 0; lo < n; lo += 500 {
		var objs []json.RawMessage
		for i := lo; i < min(lo+500, n); i++ {
			for j := range pdqs[i] {
				pdqs[i][j] = byte(r.UintN(256))
			}
			var sha [32]byte
			for j := range sha {
				sha[j] = byte(r.UintN(256))
			}
			tlp := "green"
			if i%2 == 1 {
				tlp = "red"
			}
			ob, err := hashmatch.Share{Hashes: hashmatch.Hashes{PDQ: hex.EncodeToString(pdqs[i][:]), SHA256: hex.EncodeToString(sha[:])},
				Labels: []string{"propaganda"}, TLP: tlp}.Objects(now)
			if err != nil {
				b.Fatal(err)
			}
			objs = append(objs, ob[1])
		}
		anna.taxiiPost(coll, objs...)
	}
	start := time.Now()
	if err := w.svc.Sync(b.Context()); err != nil {
		b.Fatal(err)
	}
	load := time.Since(start)
	auth := access.NewAuthenticator(w.st, nil)
	if err := w.st.CreateUser(b.Context(), &store.User{Name: "bea", Organisation: o, Role: access.RoleAnalyst, PasswordHash: passwordHash()}); err != nil {
		b.Fatal(err)
	}
	p, err := auth.Password(b.Context(), "bea", password)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	found := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := pdqs[r.IntN(n)]
		for k := range 8 {
			q[(k*5+i)%32] ^= 1 << (k % 8)
		}
		t0 := time.Now()
		res, err := w.svc.Match(p, hashmatch.Query{Hashes: hashmatch.Hashes{PDQ: hex.EncodeToString(q[:])}})
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		found += len(res.Matches)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(load.Milliseconds()), "load-ms")
	b.ReportMetric(float64(found)/float64(len(lat)), "matches/op")
}
