package federation

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
)

// TestAnonymousKeyRacePostgres: two processes (two stores on one
// PostgreSQL database) create the per-peer id key at the same time, from
// goroutines working on different collections (whose Update locks do not
// exclude one another): all of them end up with the one key stored, round
// after round, so a sighting has one id at a peer whichever process sends
// it.
func TestAnonymousKeyRacePostgres(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stores := []*postgres.Store{open(), open()}
	var cols []string
	for i := range 4 {
		c := &store.Collection{Title: fmt.Sprintf("c%d", i), Alias: fmt.Sprintf("c%d", i)}
		if err := stores[0].CreateCollection(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c.ID)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for round := range 15 {
		if _, err := conn.Exec(t.Context(), `DELETE FROM cursors WHERE key = $1`, anonymousKeyName); err != nil {
			t.Fatal(err)
		}
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				keys[i], errs[i] = anonymousKey(t.Context(), stores[i%2], cols[i%len(cols)])
			}()
		}
		close(start)
		wg.Wait()
		var stored []byte
		if err := conn.QueryRow(t.Context(), `SELECT value FROM cursors WHERE key = $1`, anonymousKeyName).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, goroutine %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], stored) {
				t.Fatalf("round %d: goroutine %d got key %x, the store holds %x: two ids for one sighting at a peer", round, i, keys[i], stored)
			}
		}
	}
}
