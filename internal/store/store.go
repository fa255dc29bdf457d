// Package store defines how Mitra keeps STIX objects, collections, users,
// API tokens and TAXII status resources, independent of the database.
//
// Backends (store/sqlite, store/postgres) implement Store and must pass the
// behaviour suite in store/storetest unchanged. The store enforces no access
// policy: deciding who may see what is the access package's job, so that one
// decision point answers every read path.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: the collection, object, user, token or status does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name (user name, collection alias) is taken, or a
	// different object already has the same id and version.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request to the store is malformed (empty name, bad id).
	ErrInvalid = errors.New("invalid")
)

// Store is the whole persistence API. Every method is safe for concurrent
// use, including from several processes sharing one database.
type Store interface {
	Objects
	Collections
	Users
	Tokens
	Statuses
	Close() error
}

// Object is one version of a STIX object to add to a collection. Raw is kept
// byte for byte; the other fields are read from it by the caller.
type Object struct {
	ID          string
	Type        string
	SpecVersion string
	// Version identifies this version: modified, else created. Zero for
	// unversioned objects, which the store versions by their date_added.
	Version time.Time
	// VersionRaw is Version as written in the object ("" when zero).
	VersionRaw string
	Raw        []byte
}

// AddResult says what happened to one object of an AddObjects call.
type AddResult struct {
	// Version is the version string reported to clients (TAXII status-details).
	Version string
	// Duplicate is true when the identical object was already in the
	// collection: it is not added twice and is not an error (TAXII 2.1 §5.5).
	Duplicate bool
	// Err is non-nil when the object was refused (wraps ErrConflict when a
	// different object with the same id and version is stored).
	Err error
}

// Objects keeps object versions per collection and the collection change log.
type Objects interface {
	// AddObjects stores objs in the collection in one transaction. When
	// status is not nil, it appends each object's outcome to status
	// (Successes, or Failures with the reason) and saves status in the same
	// transaction, so a request's objects and its status are durable together. Each object
	// gets its own date_added, strictly increasing within the collection in
	// commit order, so that added_after pagination never skips an object.
	// Each stored version appends an "add" change to the collection's log.
	// When AddObjects returns nil the objects are durable.
	AddObjects(ctx context.Context, collectionID string, objs []Object, status *Status) ([]AddResult, error)

	// QueryObjects returns one page of entries in date_added order. It
	// returns ErrNotFound when the collection does not exist.
	QueryObjects(ctx context.Context, collectionID string, q Query) (*Page, error)

	// DeleteObject removes the versions of an object selected by q.Versions
	// and q.SpecVersions (all versions when both are empty) from the
	// collection, appending a "delete" tombstone per version to the change
	// log. It returns the number of versions removed; ErrNotFound when none.
	DeleteObject(ctx context.Context, collectionID, objectID string, q Query) (int, error)

	// Changes returns up to limit change-log records with Seq > afterSeq, in
	// Seq order.
	Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]Change, error)
}

// VersionFilter selects versions (TAXII 2.1 §3.4.1 match[version]). The zero
// value means "last".
type VersionFilter struct {
	All   bool
	First bool
	Last  bool
	// Exact lists specific versions, compared as instants.
	Exact []time.Time
}

// IsZero reports whether no version filter was given.
func (v VersionFilter) IsZero() bool {
	return !v.All && !v.First && !v.Last && len(v.Exact) == 0
}

// Query selects entries of a collection (TAXII 2.1 §3.4). Filters are ANDed;
// the values within one filter are ORed.
type Query struct {
	// AddedAfter keeps entries added strictly after it (zero: no bound).
	AddedAfter time.Time
	// Limit is the page size; 0 means the backend's maximum.
	Limit        int
	IDs          []string
	Types        []string
	SpecVersions []string // empty: only the latest spec version per object
	Versions     VersionFilter
	// WithBody loads Raw; manifests and versions do not need it.
	WithBody bool
}

// Entry is one object version in a collection.
type Entry struct {
	ID          string
	Type        string
	SpecVersion string
	VersionRaw  string
	DateAdded   time.Time
	Raw         []byte
}

// Page is one page of a query. More is true when entries after the last one
// match too.
type Page struct {
	Entries []Entry
	More    bool
}

// ChangeOp is the kind of a change-log record.
type ChangeOp string

// Change-log operations.
const (
	OpAdd    ChangeOp = "add"
	OpDelete ChangeOp = "delete"
)

// Change is one record of a collection's change log: strictly increasing Seq
// per collection; a delete leaves a tombstone (Op == OpDelete, no body).
type Change struct {
	Seq        int64
	Op         ChangeOp
	ObjectID   string
	VersionRaw string
	At         time.Time
}

// Collection is a TAXII collection with its grants.
type Collection struct {
	ID          string
	Title       string
	Description string
	Alias       string
	Created     time.Time
	// Readers and Writers are user names.
	Readers []string
	Writers []string
}

// Collections manages collections and who may read and write them.
type Collections interface {
	// CreateCollection stores c; c.ID is generated when empty. An alias
	// already used by another collection gives ErrConflict.
	CreateCollection(ctx context.Context, c *Collection) error
	// GetCollection finds a collection by id or by alias.
	GetCollection(ctx context.Context, idOrAlias string) (*Collection, error)
	// ListCollections returns every collection, ordered by creation.
	ListCollections(ctx context.Context) ([]*Collection, error)
	// DeleteCollection removes a collection and everything in it.
	DeleteCollection(ctx context.Context, id string) error
	// SetGrant gives (or with read and write false removes) a user's access.
	SetGrant(ctx context.Context, collectionID, user string, read, write bool) error
}

// User is an account that authenticates with a password or API tokens.
type User struct {
	Name         string
	Organisation string // the organisation's STIX identity id
	Role         string
	PasswordHash string
	Created      time.Time
}

// Organisation is a member organisation, known in STIX as an identity.
type Organisation struct {
	ID      string // identity--UUID
	Name    string
	Created time.Time
}

// Users manages organisations and user accounts.
type Users interface {
	// DefaultOrganisation returns the organisation created with the store.
	DefaultOrganisation(ctx context.Context) (*Organisation, error)
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	// DeleteUser removes the user, its grants and its tokens.
	DeleteUser(ctx context.Context, name string) error
}

// Token is an API token. Only the hash of the secret is kept.
type Token struct {
	ID      string
	User    string
	Hash    string
	Role    string
	Created time.Time
	Expires time.Time // zero: never
	Revoked bool
}

// Tokens manages API tokens.
type Tokens interface {
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash finds a token by the hash of its secret.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	ListTokens(ctx context.Context, user string) ([]*Token, error)
	RevokeToken(ctx context.Context, id string) error
}

// StatusDetail is a TAXII status-details record (TAXII 2.1 §4.3.1).
type StatusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// Status is a TAXII status resource, kept so clients can fetch it later
// (also after a restart).
type Status struct {
	ID               string
	Owner            string // user who made the request
	CollectionID     string
	RequestTimestamp time.Time
	Complete         bool
	TotalCount       int
	Successes        []StatusDetail
	Failures         []StatusDetail
	Pendings         []StatusDetail
}

// Statuses keeps TAXII status resources.
type Statuses interface {
	SaveStatus(ctx context.Context, s *Status) error
	GetStatus(ctx context.Context, id string) (*Status, error)
}
