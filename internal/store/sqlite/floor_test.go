package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/bench"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// BenchmarkSQLiteFloor measures what SQLite itself (the driver the store
// uses, in WAL mode with synchronous FULL) can insert on this machine,
// with none of the store's work: one table of object rows with the two
// indexes no STIX store can do without (by collection and time of
// addition, for TAXII pages; by id and version, for lookups and
// versioning), generated indicators with random UUIDv4 ids, transactions
// of 2,000 rows through one prepared statement, as the store's committer
// writes four requests of 500. No owners, change log, search index,
// console counts, validation or HTTP. It is the ceiling of any ingest
// built on this engine: the store's figures (BenchmarkAddGrowing, mitra
// bench ingest) are to be read against it. It logs objects/s and CPU µs
// per object for each step of 100,000 rows up to MITRA_FLOOR_OBJECTS
// (default 200,000); with MITRA_FLOOR_IDS=sequential the ids increase,
// which shows what the random places of the id index cost, and
// MITRA_FLOOR_TX sets the rows per transaction (a federation page can be
// larger than what four clients have in flight). With
// MITRA_FLOOR_SCHEMA=store each row also writes what the store's durable
// state needs beside the object, in the store's own shapes: a change-log
// record (the federation feed) and, for a new id, its owner (the trust
// rules), still without search, console counts or provenance. With
// MITRA_FLOOR_CHECKPOINT=background the writer never checkpoints itself and
// the store's checkpointer copies the WAL from a connection of its own, as
// the store does; by default SQLite checkpoints inside the commits.
func BenchmarkSQLiteFloor(b *testing.B) {
	total := 200000
	if v, err := strconv.Atoi(os.Getenv("MITRA_FLOOR_OBJECTS")); err == nil && v > 0 {
		total = v
	}
	sequential := os.Getenv("MITRA_FLOOR_IDS") == "sequential"
	const step = 100000
	txRows := 2000
	if v, err := strconv.Atoi(os.Getenv("MITRA_FLOOR_TX")); err == nil && v > 0 {
		txRows = v
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "floor.db")
	background := os.Getenv("MITRA_FLOOR_CHECKPOINT") == "background"
	dsn := "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	writer := dsn + "&_pragma=cache_size(-262144)&_txlock=immediate"
	if background {
		writer += "&_pragma=wal_autocheckpoint(0)"
	}
	db, err := sql.Open("sqlite", writer)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	storeSchema := os.Getenv("MITRA_FLOOR_SCHEMA") == "store"
	schema := []string{
		`CREATE TABLE objects (rid INTEGER PRIMARY KEY, cid INTEGER NOT NULL, id TEXT NOT NULL, version TEXT NOT NULL,
			date_added INTEGER NOT NULL, type TEXT NOT NULL, body BLOB NOT NULL)`,
		`CREATE INDEX objects_added ON objects (cid, date_added)`,
		`CREATE UNIQUE INDEX objects_version ON objects (cid, id, version)`,
	}
	if storeSchema {
		// migrations 0001, 0003 and 0004
		schema = append(schema,
			`CREATE TABLE changes (cid INTEGER NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL, object_id TEXT NOT NULL,
				version_raw TEXT NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL, submitter TEXT NOT NULL,
				tlp INTEGER NOT NULL, recipients TEXT NOT NULL, PRIMARY KEY (cid, seq)) WITHOUT ROWID`,
			`CREATE INDEX changes_at ON changes (at)`,
			`CREATE TABLE owners (id TEXT PRIMARY KEY, owner TEXT NOT NULL) WITHOUT ROWID`)
	}
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	if background {
		stop, err := sqlite.StartCheckpointer(dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
	}
	type row struct {
		id, version, typ string
		body             []byte
	}
	g := bench.NewGenerator(1)
	added := int64(0)
	var allCPU, allWall time.Duration
	for stored := 0; stored < total; stored += step {
		b.StopTimer()
		rows := make([]row, 0, step)
		for len(rows) < step {
			var env struct{ Objects []json.RawMessage }
			if err := json.Unmarshal(g.Envelope(500), &env); err != nil {
				b.Fatal(err)
			}
			for _, raw := range env.Objects {
				var h struct{ ID, Modified, Type string }
				if err := json.Unmarshal(raw, &h); err != nil {
					b.Fatal(err)
				}
				if sequential {
					h.ID = fmt.Sprintf("indicator--%036d", stored+len(rows))
				}
				rows = append(rows, row{h.ID, h.Modified, h.Type, raw})
			}
		}
		b.StartTimer()
		cpu0, wall0 := processCPU(b), time.Now()
		for lo := 0; lo < len(rows); lo += txRows {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			st, err := tx.PrepareContext(ctx, `INSERT INTO objects (cid, id, version, date_added, type, body) VALUES (1, ?, ?, ?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			var ch, own *sql.Stmt
			if storeSchema {
				if ch, err = tx.PrepareContext(ctx, `INSERT INTO changes (cid, seq, op, object_id, version_raw, at, type, submitter, tlp, recipients)
					VALUES (1, ?, 'add', ?, ?, ?, ?, 'identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f', 1, '[]')`); err != nil {
					b.Fatal(err)
				}
				if own, err = tx.PrepareContext(ctx, `INSERT INTO owners (id, owner) VALUES (?, 'identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f')`); err != nil {
					b.Fatal(err)
				}
			}
			for _, r := range rows[lo:min(lo+txRows, len(rows))] {
				added++
				if _, err := st.ExecContext(ctx, r.id, r.version, added, r.typ, r.body); err != nil {
					b.Fatal(err)
				}
				if storeSchema {
					if _, err := ch.ExecContext(ctx, added, r.id, r.version, added, r.typ); err != nil {
						b.Fatal(err)
					}
					if _, err := own.ExecContext(ctx, r.id); err != nil {
						b.Fatal(err)
					}
				}
			}
			st.Close()
			if storeSchema {
				ch.Close()
				own.Close()
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		cpu, wall := processCPU(b)-cpu0, time.Since(wall0)
		allCPU += cpu
		allWall += wall
		b.Logf("to %d rows: %.1f CPU µs/row, %.0f rows/s", stored+step, float64(cpu.Microseconds())/step, step/wall.Seconds())
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil || int64(n) != added {
		b.Fatalf("%d rows stored, want %d (%v)", n, added, err)
	}
	b.ReportMetric(float64(allCPU.Microseconds())/float64(added), "cpu-µs/row")
	b.ReportMetric(float64(added)/allWall.Seconds(), "rows/s")
}
