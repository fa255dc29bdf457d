package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one schema change, applied once, in version order.
type Migration struct {
	Version  int
	Name     string // the file name
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

// Migrations reads dir/*.sql of files; a file's name starts with its
// version (0001_init.sql), and versions run from 1 without gaps.
func Migrations(files fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(files, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d first in its name", base, i+1)
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: base, SQL: string(body), Checksum: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// Migrate applies the migrations not yet recorded in schema_migrations, in
// one transaction, under the dialect's migration lock: when several
// processes start at once, one migrates and the others wait for it, then
// find nothing left to do. It returns the schema version and how many
// migrations it applied.
//
// Every applied migration is recorded with the checksum of its text. A
// database whose recorded migrations differ from this binary's (changed
// after they were applied) or that is at a version this binary does not
// know (migrated by a newer mitra) is refused rather than touched.
// Databases recorded by the first runner (no names, no checksums) are
// upgraded in place: their records get the names and checksums of the
// binary's migrations of the same versions.
func Migrate(ctx context.Context, db DB, d Dialect, ms []Migration, now func() time.Time) (version, applied int, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := d.LockMigrations(ctx, tx); err != nil {
		return 0, 0, fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', applied BIGINT NOT NULL, checksum TEXT NOT NULL DEFAULT '')`); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if err := upgradeMigrationsTable(ctx, tx, d); err != nil {
		return 0, 0, err
	}
	rows, err := tx.Query(ctx, `SELECT version, name, checksum FROM schema_migrations ORDER BY version`)
	type record struct {
		version        int
		name, checksum string
	}
	recs, err := collect(rows, err, "migrate", func(r Row) (record, error) {
		var rec record
		return rec, r.Scan(&rec.version, &rec.name, &rec.checksum)
	})
	if err != nil {
		return 0, 0, err
	}
	cur := 0
	for _, rec := range recs {
		if rec.version > len(ms) || rec.version < 1 {
			return rec.version, 0, fmt.Errorf("migrate: the database schema is at version %d, newer than this mitra knows (%d): upgrade mitra", rec.version, len(ms))
		}
		m := ms[rec.version-1]
		switch rec.checksum {
		case m.Checksum:
		case "":
			// Recorded by the first runner: adopt this binary's record.
			if _, err := tx.Exec(ctx, `UPDATE schema_migrations SET name = ?, checksum = ? WHERE version = ?`, m.Name, m.Checksum, m.Version); err != nil {
				return 0, 0, fmt.Errorf("migrate: %w", err)
			}
		default:
			return rec.version, 0, fmt.Errorf("migrate: migration %d (%s) applied to this database differs from this mitra's %s: refusing to start", rec.version, rec.name, m.Name)
		}
		cur = max(cur, rec.version)
	}
	for _, m := range ms[cur:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return cur, 0, fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied, checksum) VALUES (?, ?, ?, ?)`, m.Version, m.Name, micros(now()), m.Checksum); err != nil {
			return cur, 0, fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		applied++
	}
	if err := tx.Commit(ctx); err != nil {
		return cur, 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return len(ms), applied, nil
}

// upgradeMigrationsTable adds the columns the first runner's table lacks
// (SQLite's had version and applied; PostgreSQL's also name).
func upgradeMigrationsTable(ctx context.Context, tx Tx, d Dialect) error {
	rows, err := tx.Query(ctx, d.ColumnsSQL(), "schema_migrations")
	cols, err := collect(rows, err, "migrate", func(r Row) (string, error) {
		var c string
		return c, r.Scan(&c)
	})
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c] = true
	}
	for _, c := range []string{"name", "checksum"} {
		if !have[c] {
			if _, err := tx.Exec(ctx, `ALTER TABLE schema_migrations ADD COLUMN `+c+` TEXT NOT NULL DEFAULT ''`); err != nil {
				return fmt.Errorf("migrate: upgrade schema_migrations: %w", err)
			}
		}
	}
	return nil
}

// SchemaVersion returns the greatest applied migration.
func SchemaVersion(ctx context.Context, q Querier) (int, error) {
	var v int
	if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
