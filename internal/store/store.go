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
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"
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
	Groups
	Tokens
	Statuses
	Audit
	Owners
	Updater
	Markings
	AccountChanges
	Retention
	Feed
	ChangeRetention
	Health
	Sessions
	ObjectCounts
	Peers
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
	// Submitter is the organisation (identity id) of the principal that
	// sent the object: recorded by the server, never read from the object.
	Submitter string
	// TLP is the strictest TLP level the object is marked with (0 when
	// unmarked), as the access package numbers them.
	TLP int
	// Recipients are organisations named as recipients in the object.
	Recipients []string
	// Owner is the organisation that owns the object when this is its
	// first version on the server (Submitter when empty): the organisation
	// named by created_by_ref when the server accepts that the submitter
	// speaks for it. Later versions must come from the owner (contract.go).
	Owner string
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

	// AddBatches is AddObjects for objects that arrive in batches, all in
	// one transaction: the caller can still be validating later batches
	// while the store writes earlier ones. Results are in arrival order.
	AddBatches(ctx context.Context, collectionID string, batches iter.Seq[[]Object], status *Status) ([]AddResult, error)

	// QueryObjects returns one page of entries in date_added order. It
	// returns ErrNotFound when the collection does not exist.
	QueryObjects(ctx context.Context, collectionID string, q Query) (*Page, error)

	// DeleteObject removes the versions of an object selected by q.Versions
	// and q.SpecVersions (all versions when both are empty) and admitted by
	// q.Visible (when set) from the
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
	// Owner, for DeleteObject: when set, the object must be owned by this
	// organisation, else ErrForbidden (contract.go).
	Owner string
	// Visible, when set, decides entry by entry what the caller may see.
	// Entries it rejects are skipped as if absent: pages are still filled
	// up to Limit and More says whether a visible entry follows, so page
	// sizes and flags reveal nothing about hidden entries.
	Visible func(*Entry) bool
}

// Entry is one object version in a collection.
type Entry struct {
	ID          string
	Type        string
	SpecVersion string
	VersionRaw  string
	DateAdded   time.Time
	Raw         []byte
	Submitter   string
	TLP         int
	Recipients  []string
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
	// Deleted is, for a delete, what the access decision needs of the
	// version it removed (Type, Submitter, TLP, Recipients), recorded when
	// it was deleted: the change feed sends the tombstone only to readers
	// of that version. Nil for adds and for tombstones recorded without it
	// (which the feed sends to nobody).
	Deleted *Entry
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
	// Grants to organisations and sharing groups.
	Grants []Grant
	// DefaultTLP applies to objects without a TLP marking (access.TLP
	// numbering; AMBER when zero at creation).
	DefaultTLP int
	// Recipients are organisations named as recipients of the collection's
	// AMBER+STRICT and RED objects.
	Recipients []string
}

// Grant kinds besides users.
const (
	GrantOrg   = "org"
	GrantGroup = "group"
)

// Grant gives an organisation or a sharing group access to a collection.
type Grant struct {
	Kind    string // GrantOrg or GrantGroup
	Subject string // organisation identity id or group id
	Read    bool
	Write   bool
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
	// SetPartyGrant gives (or with read and write false removes) access to
	// an organisation or a group (kind GrantOrg or GrantGroup).
	SetPartyGrant(ctx context.Context, collectionID, kind, subject string, read, write bool) error
	// SetCollectionPolicy sets the default TLP and the recipient list.
	SetCollectionPolicy(ctx context.Context, collectionID string, defaultTLP int, recipients []string) error
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
	// AnonymiseSightings hides the organisation's identity in the sightings
	// it submits from readers outside it.
	AnonymiseSightings bool
	Default            bool
}

// Users manages organisations and user accounts.
type Users interface {
	// DefaultOrganisation returns the organisation created with the store.
	DefaultOrganisation(ctx context.Context) (*Organisation, error)
	// CreateOrganisation stores o; o.ID (identity--UUID) is generated when
	// empty. A taken name gives ErrConflict.
	CreateOrganisation(ctx context.Context, o *Organisation) error
	// GetOrganisation finds an organisation by identity id or by name.
	GetOrganisation(ctx context.Context, idOrName string) (*Organisation, error)
	ListOrganisations(ctx context.Context) ([]*Organisation, error)
	// DeleteOrganisation removes an organisation without users; ErrConflict
	// while users belong to it or for the default organisation.
	DeleteOrganisation(ctx context.Context, id string) error
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	// DeleteUser removes the user, its grants and its tokens.
	DeleteUser(ctx context.Context, name string) error
}

// Group is a sharing group: a named set of organisations.
type Group struct {
	ID      string
	Name    string
	Orgs    []string // organisation identity ids
	Created time.Time
}

// Groups manages sharing groups.
type Groups interface {
	// CreateGroup stores g; g.ID is generated when empty. Unknown
	// organisations give ErrNotFound, a taken name ErrConflict.
	CreateGroup(ctx context.Context, g *Group) error
	// GetGroup finds a group by id or by name.
	GetGroup(ctx context.Context, idOrName string) (*Group, error)
	ListGroups(ctx context.Context) ([]*Group, error)
	DeleteGroup(ctx context.Context, id string) error
	// GroupsOf lists the ids of the groups org belongs to.
	GroupsOf(ctx context.Context, org string) ([]string, error)
}

// AuditRecord is one entry of the audit log.
type AuditRecord struct {
	Seq          int64
	At           time.Time
	Principal    string // user name
	Organisation string
	Action       string // e.g. "objects.add", "objects.read", "admin.user.create"
	Path         string // the request path or command
	Collection   string
	Objects      []string
	Detail       string
}

// AuditFilter selects audit records; zero fields do not filter.
type AuditFilter struct {
	Principal string
	Action    string // exact, or a prefix ending in "."
	Object    string
	Since     time.Time
	Limit     int // 0: 1000
	// Before, when > 0, keeps records with Seq < Before: the cursor for
	// the next page of a newest-first listing.
	Before int64
}

// Audit keeps the audit log. Records are never changed; only retention
// (Retention.PruneAudit) removes old ones.
type Audit interface {
	AppendAudit(ctx context.Context, recs ...AuditRecord) error
	// ListAudit returns matching records, newest first (greatest Seq);
	// the next page is f.Before = the last record's Seq.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
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

// Prepare checks a new collection and fills in its generated id; backends
// call it at the start of CreateCollection.
func (c *Collection) Prepare() error {
	if strings.TrimSpace(c.Title) == "" {
		return fmt.Errorf("collection title is empty: %w", ErrInvalid)
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	} else if _, err := uuid.Parse(c.ID); err != nil {
		return fmt.Errorf("collection id %q is not a UUID: %w", c.ID, ErrInvalid)
	}
	// An alias that parses as a UUID could shadow another collection's id
	// in URLs (TAXII 2.1 §5.2.1 lets either name a collection).
	if c.Alias != "" {
		if _, err := uuid.Parse(c.Alias); err == nil {
			return fmt.Errorf("collection alias %q must not look like a collection id: %w", c.Alias, ErrInvalid)
		}
	}
	return nil
}
