package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/schollz/progressbar/v3"
)

// MigrateStoreCmd copies a whole store to another backend.
type MigrateStoreCmd struct {
	From string `required:"" help:"Source store: 'sqlite:DIR' or 'postgres://...'. Stop the servers using it first."`
	To   string `required:"" help:"Target store: 'postgres://...' or 'sqlite:DIR'. It must be empty (it is created and migrated when needed)."`
}

// copyable is a store that can be read and written row for row.
type copyable interface {
	store.Store
	store.Exporter
	store.Importer
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

// Run implements the command: everything (organisations, users, tokens,
// groups, collections with their grants, object versions with their
// date_added and latest flags, change logs, statuses, audit log) is copied
// row for row, then the row counts of both stores are compared.
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
	bar := progressbar.NewOptions64(want.Total(),
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
	if err := store.Copy(ctx, dst, src, func(n int64) { bar.Add64(n) }); err != nil {
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
	fmt.Fprintf(e.stdout, "copied %d rows in %s and verified the counts: %d organisations, %d users, %d tokens, %d groups (%d members), %d collections (%d user grants, %d organisation and group grants), %d object versions, %d change-log records, %d statuses, %d audit records, %d object owners, %d cursors\n",
		got.Total(), time.Since(start).Round(time.Millisecond), got.Organisations, got.Users, got.Tokens, got.Groups, got.GroupMembers,
		got.Collections, got.Grants, got.PartyGrants, got.Objects, got.Changes, got.Statuses, got.Audit, got.Owners, got.Cursors)
	return nil
}
