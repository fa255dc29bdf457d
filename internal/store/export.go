package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The optional interfaces below let a whole store be copied to another
// backend (mitra migrate-store) row for row: date_added values, version keys,
// latest flags, change-log sequence numbers, high-water marks, password and
// token hashes, audit sequence numbers are carried over as they are, so that
// clients' added_after cursors and federation peers' change-log positions
// stay valid. Organisations, groups, users and tokens are read with the
// Store methods ListOrganisations, ListGroups, ListUsers and
// ListTokens(ctx, "").

// CollectionRecord is a collection with its grants, policy and high-water
// marks.
type CollectionRecord struct {
	Collection
	// LastAdded is the greatest date_added the collection ever handed out
	// (deleted objects included); new objects get later ones.
	LastAdded time.Time
	// LastSeq is the greatest change-log seq of the collection.
	LastSeq int64
}

// ObjectRecord is one stored object version.
type ObjectRecord struct {
	Entry
	// Version is the key versions are ordered and matched by
	// (stix.SortKey of modified, created or, for unversioned objects, of
	// the date_added of the version).
	Version string
	// Latest marks the version a default read serves for its id.
	Latest bool
}

// Counts is how many rows of each kind a store holds.
type Counts struct {
	Organisations int64
	Users         int64
	Tokens        int64
	Groups        int64
	GroupMembers  int64
	Collections   int64
	Grants        int64 // user grants
	PartyGrants   int64 // organisation and group grants
	Objects       int64
	Changes       int64
	Statuses      int64
	Audit         int64
	Owners        int64 // recorded object owners
	Cursors       int64 // Updater cursors
}

// Total is the number of rows of all kinds.
func (c Counts) Total() int64 {
	return c.Organisations + c.Users + c.Tokens + c.Groups + c.GroupMembers + c.Collections + c.Grants +
		c.PartyGrants + c.Objects + c.Changes + c.Statuses + c.Audit + c.Owners + c.Cursors
}

// ExportBatch is the number of rows Export methods hand out at a time.
const ExportBatch = 1000

// Exporter reads a store's rows as they are stored. Reads are not one
// snapshot: copy a store that no server writes to.
type Exporter interface {
	// Counts counts the rows of each kind.
	Counts(ctx context.Context) (Counts, error)
	// ExportCollections returns every collection, with grants, policy and
	// marks, in creation order.
	ExportCollections(ctx context.Context) ([]CollectionRecord, error)
	// ExportObjects calls fn with the collection's object versions in
	// date_added order, at most ExportBatch at a time, bodies included.
	ExportObjects(ctx context.Context, collectionID string, fn func([]ObjectRecord) error) error
	// ExportStatuses calls fn with every status, at most ExportBatch at a
	// time.
	ExportStatuses(ctx context.Context, fn func([]*Status) error) error
	// ExportAudit calls fn with the audit log in seq order, at most
	// ExportBatch records at a time.
	ExportAudit(ctx context.Context, fn func([]AuditRecord) error) error
	// ExportOwners calls fn with every recorded object owner, at most
	// ExportBatch at a time.
	ExportOwners(ctx context.Context, fn func([]OwnerRecord) error) error
	// ExportCursors calls fn with every Updater cursor, at most
	// ExportBatch at a time.
	ExportCursors(ctx context.Context, fn func([]CursorRecord) error) error
}

// OwnerRecord is the recorded owner of an object id (contract.go).
type OwnerRecord struct {
	ID    string
	Owner string
}

// CursorRecord is one Updater cursor.
type CursorRecord struct {
	Key   string
	Value []byte
}

// Importer writes rows exported from another store, keeping every value
// (ids, times, hashes, date_added, seq, latest flags). It is meant for an
// empty store: rows that already exist give ErrConflict.
type Importer interface {
	// ImportOrganisations adds organisations. The one marked Default
	// becomes the store's default organisation, replacing the one the
	// store created for itself, which must have no users.
	ImportOrganisations(ctx context.Context, orgs []*Organisation) error
	// ImportUsers adds users with their organisation, role, password hash
	// and creation time.
	ImportUsers(ctx context.Context, users []*User) error
	// ImportTokens adds tokens with their id, hash, times and revocation.
	ImportTokens(ctx context.Context, tokens []*Token) error
	// ImportGroups adds sharing groups with their id, time and members.
	ImportGroups(ctx context.Context, groups []*Group) error
	// ImportCollection adds a collection with its id, alias, creation time,
	// grants (users, organisations and groups must exist), policy and
	// high-water marks.
	ImportCollection(ctx context.Context, c CollectionRecord) error
	// ImportObjects adds object versions to a collection imported before.
	ImportObjects(ctx context.Context, collectionID string, objs []ObjectRecord) error
	// ImportChanges adds change-log records to a collection imported before.
	ImportChanges(ctx context.Context, collectionID string, changes []Change) error
	// ImportStatuses adds statuses.
	ImportStatuses(ctx context.Context, statuses []*Status) error
	// ImportAudit adds audit records, keeping their seq.
	ImportAudit(ctx context.Context, recs []AuditRecord) error
	// ImportOwners adds recorded object owners.
	ImportOwners(ctx context.Context, owners []OwnerRecord) error
	// ImportCursors adds Updater cursors.
	ImportCursors(ctx context.Context, cursors []CursorRecord) error
}

// ErrNotEmpty: Copy's target store already holds data.
var ErrNotEmpty = errors.New("target store is not empty")

// Copy copies everything src holds into dst, which must be empty (its own
// default organisation aside; dst's Counts says so), calling progress with the number of rows
// copied at each step. It does not verify the result: compare the Counts of
// both stores afterwards.
func Copy(ctx context.Context, dst interface {
	Store
	Importer
	Exporter
}, src interface {
	Store
	Exporter
}, progress func(rows int64)) error {
	have, err := dst.Counts(ctx)
	if err != nil {
		return fmt.Errorf("count target: %w", err)
	}
	if have.Total()-have.Organisations > 0 || have.Organisations > 1 {
		return fmt.Errorf("%w: %+v", ErrNotEmpty, have)
	}
	step := func(n int, err error) error {
		if err == nil && progress != nil {
			progress(int64(n))
		}
		return err
	}
	orgs, err := src.ListOrganisations(ctx)
	if err != nil {
		return err
	}
	if err := step(len(orgs), dst.ImportOrganisations(ctx, orgs)); err != nil {
		return fmt.Errorf("organisations: %w", err)
	}
	users, err := src.ListUsers(ctx)
	if err != nil {
		return err
	}
	if err := step(len(users), dst.ImportUsers(ctx, users)); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	tokens, err := src.ListTokens(ctx, "")
	if err != nil {
		return err
	}
	if err := step(len(tokens), dst.ImportTokens(ctx, tokens)); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	groups, err := src.ListGroups(ctx)
	if err != nil {
		return err
	}
	members := 0
	for _, g := range groups {
		members += len(g.Orgs)
	}
	if err := step(len(groups)+members, dst.ImportGroups(ctx, groups)); err != nil {
		return fmt.Errorf("groups: %w", err)
	}
	cols, err := src.ExportCollections(ctx)
	if err != nil {
		return err
	}
	for _, c := range cols {
		if err := step(1+len(c.Readers)+len(c.Writers)-both(c.Collection)+len(c.Grants), dst.ImportCollection(ctx, c)); err != nil {
			return fmt.Errorf("collection %s: %w", c.ID, err)
		}
		err := src.ExportObjects(ctx, c.ID, func(objs []ObjectRecord) error {
			return step(len(objs), dst.ImportObjects(ctx, c.ID, objs))
		})
		if err != nil {
			return fmt.Errorf("collection %s: objects: %w", c.ID, err)
		}
		err = ExportChanges(ctx, src, c.ID, func(chs []Change) error {
			return step(len(chs), dst.ImportChanges(ctx, c.ID, chs))
		})
		if err != nil {
			return fmt.Errorf("collection %s: change log: %w", c.ID, err)
		}
	}
	err = src.ExportStatuses(ctx, func(sts []*Status) error {
		return step(len(sts), dst.ImportStatuses(ctx, sts))
	})
	if err != nil {
		return fmt.Errorf("statuses: %w", err)
	}
	err = src.ExportAudit(ctx, func(recs []AuditRecord) error {
		return step(len(recs), dst.ImportAudit(ctx, recs))
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	// Owners and cursors: without them, anyone could take over the copied
	// objects and transactional writers would apply their input again.
	err = src.ExportOwners(ctx, func(owners []OwnerRecord) error {
		return step(len(owners), dst.ImportOwners(ctx, owners))
	})
	if err != nil {
		return fmt.Errorf("owners: %w", err)
	}
	err = src.ExportCursors(ctx, func(cursors []CursorRecord) error {
		return step(len(cursors), dst.ImportCursors(ctx, cursors))
	})
	if err != nil {
		return fmt.Errorf("cursors: %w", err)
	}
	return nil
}

// both counts the users that are readers and writers of c: one grant row
// each.
func both(c Collection) int {
	r := make(map[string]bool, len(c.Readers))
	for _, u := range c.Readers {
		r[u] = true
	}
	n := 0
	for _, u := range c.Writers {
		if r[u] {
			n++
		}
	}
	return n
}

// ExportChanges calls fn with a collection's change log in seq order, at
// most ExportBatch records at a time; it reads through Objects.Changes, so
// every backend shares it.
func ExportChanges(ctx context.Context, src Objects, collectionID string, fn func([]Change) error) error {
	var after int64
	for {
		chs, err := src.Changes(ctx, collectionID, after, ExportBatch)
		if err != nil {
			return err
		}
		if len(chs) == 0 {
			return nil
		}
		if err := fn(chs); err != nil {
			return err
		}
		after = chs[len(chs)-1].Seq
	}
}
