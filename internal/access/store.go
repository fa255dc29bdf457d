package access

import (
	"context"

	"github.com/mitra-cert/mitra/internal/store"
)

// The few store methods each part of this package uses: callers pass any
// store.Store (or a narrower value).

// UserStore finds users and their sharing groups, for authentication.
type UserStore interface {
	GetUser(ctx context.Context, name string) (*store.User, error)
	TokenByHash(ctx context.Context, hash string) (*store.Token, error)
	GroupsOf(ctx context.Context, org string) ([]string, error)
}

// TokenStore creates tokens for existing users.
type TokenStore interface {
	GetUser(ctx context.Context, name string) (*store.User, error)
	CreateToken(ctx context.Context, t *store.Token) error
}

// UserCreator creates users.
type UserCreator interface {
	CreateUser(ctx context.Context, u *store.User) error
}
