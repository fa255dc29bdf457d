package web

import "github.com/mitra-cert/mitra/internal/store"

// Store is what the console reads and keeps: the objects of collections
// (read through access.Decide, as TAXII reads them), collections and
// users (to rebuild a session's principal), the organisations (to redact
// sightings), the dashboard's counts, and its sessions. Any store.Store
// is one.
type Store interface {
	store.Objects
	store.Collections
	store.Users
	store.Groups
	store.Audit
	store.Sessions
	store.ObjectCounts
}
