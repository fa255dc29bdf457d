package admin

import "github.com/mitra-cert/mitra/internal/store"

// Store is what the admin API manages: collections and their grants,
// organisations and users, sharing groups, tokens and the audit log. Any
// store.Store is one.
type Store interface {
	store.Collections
	store.Users
	store.Groups
	store.Tokens
	store.Audit
}
