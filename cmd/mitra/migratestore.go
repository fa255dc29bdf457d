package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
	"github.com/schollz/progressbar/v3"
)

// MigrateStoreCmd copies a whole store to another backend.
type MigrateStoreCmd struct {
	From string `required:"" help:"Source store: 'sqlite:DIR' or 'postgres://...'. Stop the servers using it first."`
	To   string `required:"" help:"Target store: 'postgres://...' or 'sqlite:DIR'. It must be empty (it is created and migrated when needed)."`
}

// copyable is a store that can be read and written row for row, table by
// table.
type copyable interface {
	store.Store
	store.Exporter
	store.Importer
	SQLStore() *sqlstore.Store
}

func (c *MigrateStoreCmd) openCopyable(ctx context.Context, flag, dsn string) (copyable, error) {
	if dsn == "sqlite:" || (!strings.HasPrefix(dsn, "sqlite:") && !strings.Contains(dsn, "://")) {
		return nil, fmt.Errorf("--%s %q: give sqlite:DIR or a postgres:// URL", flag, dsn)
	}
	st, err := openStore(ctx, dsn, "")
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	cs, ok := st.(copyable)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("--%s: this backend cannot export and import rows", flag)
	}
	return cs, nil
}

// Run implements the command. Organisations, users, tokens, groups,
// collections with their grants, object versions with their date_added and
// latest flags, change logs, statuses, audit log, owners and cursors are
// copied by the stores' typed methods; every other table of the schema
// (peers and their links, provenance, incidents, notification and
// assistance queues, import feeds, console sessions, and whatever a later
// migration adds) row for row by the generic copier. Then the row counts
// of both stores, and the checksums of the generically copied tables, are
// compared.
func (c *MigrateStoreCmd) Run(ctx context.Context, e *env) error {
	if c.From == c.To {
		return errors.New("--from and --to name the same store")
	}
	src, err := c.openCopyable(ctx, "from", c.From)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := c.openCopyable(ctx, "to", c.To)
	if err != nil {
		return err
	}
	defer dst.Close()
	want, err := src.Counts(ctx)
	if err != nil {
		return err
	}
	// Plan first: a schema mismatch or a target that is not empty is
	// refused before anything is written.
	have, err := dst.Counts(ctx)
	if err != nil {
		return err
	}
	if have.Total()-have.Organisations > 0 || have.Organisations > 1 {
		return fmt.Errorf("migrate-store: %w: %+v", store.ErrNotEmpty, have)
	}
	plan, err := sqlstore.PlanCopy(ctx, dst.SQLStore(), src.SQLStore())
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	wantTables, err := plan.Stats(ctx, src.SQLStore())
	if err != nil {
		return fmt.Errorf("migrate-store: source: %w", err)
	}
	total := want.Total()
	for _, t := range wantTables {
		total += t.Rows
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("copying rows"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
	start := time.Now()
	progress := func(n int64) { bar.Add64(n) }
	if err := store.Copy(ctx, dst, src, progress); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	if err := plan.Copy(ctx, dst.SQLStore(), src.SQLStore(), progress); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	bar.Finish()
	got, err := dst.Counts(ctx)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("migrate-store: row counts differ after the copy:\n  source %+v\n  target %+v", want, got)
	}
	gotTables, err := plan.Stats(ctx, dst.SQLStore())
	if err != nil {
		return fmt.Errorf("migrate-store: target: %w", err)
	}
	var tables []string
	for i, w := range wantTables {
		g := gotTables[i]
		if g != w {
			return fmt.Errorf("migrate-store: table %s differs after the copy: source %d rows (sha256 %s), target %d rows (sha256 %s)", w.Table, w.Rows, w.Checksum, g.Rows, g.Checksum)
		}
		tables = append(tables, fmt.Sprintf("%s %d", w.Table, w.Rows))
	}
	fmt.Fprintf(e.stdout, "copied %d rows in %s and verified the counts: %d organisations, %d users, %d tokens, %d groups (%d members), %d collections (%d user grants, %d organisation and group grants), %d object versions, %d change-log records, %d statuses, %d audit records, %d object owners, %d cursors\n",
		total, time.Since(start).Round(time.Millisecond), got.Organisations, got.Users, got.Tokens, got.Groups, got.GroupMembers,
		got.Collections, got.Grants, got.PartyGrants, got.Objects, got.Changes, got.Statuses, got.Audit, got.Owners, got.Cursors)
	fmt.Fprintf(e.stdout, "copied %d more tables row for row and verified their counts and checksums: %s\n", len(tables), strings.Join(tables, ", "))
	fmt.Fprintf(e.stdout, "not copied: %s (the search index is rebuilt by the target from the objects; the schema versions were compared)\n", strings.Join(derivedNames(), ", "))
	return nil
}

// derivedNames lists the tables the copy leaves to the target, sorted.
func derivedNames() []string {
	var out []string
	for n := range sqlstore.Derived {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
