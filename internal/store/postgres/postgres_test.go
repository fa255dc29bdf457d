package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

func openDSN(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func open(t testing.TB) store.Store {
	return openDSN(t, pgtest.NewSchema(t))
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

func TestIsDSN(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db": true, "postgresql://h/db": true, "sqlite:": false, "sqlite:/x": false, "": false, "postgres:x": false,
	} {
		if got := postgres.IsDSN(dsn); got != want {
			t.Errorf("IsDSN(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	storetest.ReopenKeepsData(t, func(t testing.TB) store.Store { return openDSN(t, dsn) })
}

// Several processes starting at once on a new database: every Open succeeds,
// the schema is migrated once and there is one default organisation.
func TestConcurrentFirstStart(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn, postgres.Options{})
		}()
	}
	wg.Wait()
	var orgs []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
		o, err := stores[i].DefaultOrganisation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o.ID)
	}
	for _, o := range orgs[1:] {
		if o != orgs[0] {
			t.Fatalf("default organisations differ: %v", orgs)
		}
	}
	conn := rawConn(t, dsn)
	var migrations, defaults int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM organisations WHERE is_default)`).Scan(&migrations, &defaults); err != nil {
		t.Fatal(err)
	}
	version, applied, err := postgres.Migrate(ctx, dsn)
	if err != nil || applied != 0 {
		t.Errorf("Migrate on a migrated database = %d, %d, %v; want nothing applied", version, applied, err)
	}
	if migrations != version || defaults != 1 {
		t.Errorf("%d migration records and %d default organisations, want %d and 1", migrations, defaults, version)
	}
}

func TestMigrateOnly(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	version, applied, err := postgres.Migrate(ctx, dsn)
	if err != nil || version < 2 || applied != version {
		t.Fatalf("Migrate = %d, %d, %v; want every migration applied", version, applied, err)
	}
	var tables int
	if err := rawConn(t, dsn).QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables < 9 {
		t.Errorf("%d tables after Migrate", tables)
	}
}

// A database migrated by a newer mitra is refused, not altered.
func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	openDSN(t, dsn).Close()
	conn := rawConn(t, dsn)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer schema: %v, want a refusal", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("open of an unreachable database: %v", err)
	}
}

// Two stores on one database stand for two server processes: writers on
// both, a reader paging by date_added through a third sees every object
// exactly once. The collection-row lock is what makes this hold.
func TestTwoProcessesPaginate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	a, b, r := openDSN(t, dsn), openDSN(t, dsn), openDSN(t, dsn)
	c := &store.Collection{Title: "shared"}
	if err := a.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const writers, batches, per = 4, 20, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				objs := make([]store.Object, per)
				for i := range objs {
					objs[i] = storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))
				}
				if _, err := s.AddObjects(ctx, c.ID, objs, nil); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var after time.Time
	finished := false
	for {
		p, err := r.QueryObjects(ctx, c.ID, store.Query{AddedAfter: after, Limit: 13})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			seen[e.ID]++
			after = e.DateAdded
		}
		if !p.More {
			if finished {
				break
			}
			select {
			case <-done:
				finished = true
			default:
			}
		}
	}
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(seen) != writers*batches*per {
		t.Errorf("reader saw %d distinct objects, want %d", len(seen), writers*batches*per)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", id, n)
		}
	}
	ch, err := r.Changes(ctx, c.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range ch {
		if x.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d: the log has gaps or repeats", i, x.Seq)
		}
	}
}

// Deleting a collection while it is written to either waits for the
// writer or makes it fail with ErrNotFound; nothing is left behind.
func TestDeleteCollectionWhileWriting(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	s := openDSN(t, dsn)
	c := &store.Collection{Title: "doomed"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	errc := make(chan error, 1)
	go func() {
		for {
			objs := []store.Object{storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))}
			if _, err := s.AddObjects(ctx, c.ID, objs, nil); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.DeleteCollection(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, store.ErrNotFound) {
		t.Errorf("writer after delete: %v, want ErrNotFound", err)
	}
	var left int
	if err := rawConn(t, dsn).QueryRow(ctx, `SELECT (SELECT count(*) FROM objects) + (SELECT count(*) FROM changes)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d object or change rows left after deleting the collection", left)
	}
}

func rawConn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// A database made by the first migration runner (schema_migrations with
// version, name and applied) upgrades in place: data kept, records get
// checksums. Afterwards a changed migration record makes Open refuse.
func TestUpgradeFirstRunnerDatabase(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	conn := rawConn(t, dsn)
	files, err := filepath.Glob("migrations/000[12]_*.sql")
	if err != nil || len(files) != 2 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, 1)`, i+1, filepath.Base(f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO collections (id, title, created) VALUES ('00000000-0000-4000-8000-000000000001', 'old', 1)`); err != nil {
		t.Fatal(err)
	}
	s := openDSN(t, dsn)
	if c, err := s.GetCollection(ctx, "00000000-0000-4000-8000-000000000001"); err != nil || c.Title != "old" {
		t.Errorf("collection after upgrade: %+v, %v", c, err)
	}
	s.Close()
	var unsummed int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE checksum = ''`).Scan(&unsummed); err != nil {
		t.Fatal(err)
	}
	if unsummed != 0 {
		t.Errorf("%d migration records without checksum after the upgrade", unsummed)
	}
	if _, err := conn.Exec(ctx, `UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("open with a changed migration: %v, want a refusal", err)
	}
}
