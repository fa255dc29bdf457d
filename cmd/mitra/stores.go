package main

import (
	"context"

	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/store"
)

// The few store methods the command line's helpers use; the commands
// themselves open a whole store.Store (withStore).

// principalStore resolves an organisation and its sharing groups.
type principalStore interface {
	DefaultOrganisation(ctx context.Context) (*store.Organisation, error)
	GetOrganisation(ctx context.Context, idOrName string) (*store.Organisation, error)
	GroupsOf(ctx context.Context, org string) ([]string, error)
}

// detectStore is what the detector runs on: indicators to read, a
// collection to write sightings to, the organisation it acts for.
type detectStore interface {
	detect.IndicatorStore
	detect.ObjectAdder
	principalStore
}

// adminBootstrap lists users and creates the first admin.
type adminBootstrap interface {
	ListUsers(ctx context.Context) ([]*store.User, error)
	CreateUser(ctx context.Context, u *store.User) error
}
