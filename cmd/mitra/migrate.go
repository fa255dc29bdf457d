package main

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store/postgres"
)

// MigrateCmd applies pending schema migrations and does nothing else, so
// that a deployment can migrate its database before starting (or
// upgrading) its servers. Servers also migrate when they start; concurrent
// starts are safe either way.
type MigrateCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *MigrateCmd) Run(ctx context.Context, e *env) error {
	if !postgres.IsDSN(c.Store) {
		// The embedded store migrates when it is opened.
		st, err := c.open(ctx)
		if err != nil {
			return err
		}
		if err := st.Close(); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "embedded store migrated")
		return nil
	}
	version, applied, err := postgres.Migrate(ctx, c.Store)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "PostgreSQL schema at version %d (%d migrations applied now)\n", version, applied)
	return nil
}
