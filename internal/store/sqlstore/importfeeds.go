package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements store.ImportFeeds and store.ImportTx.

var (
	_ store.ImportFeeds = (*Store)(nil)
	_ store.ImportTx    = (*writeTx)(nil)
)

const importFeedCols = `name, url, format, collection, username, organisation, options, interval_ms, etag, last_modified, last_run, next_run, last_report, created`

func scanImportFeed(r Row) (*store.ImportFeed, error) {
	var f store.ImportFeed
	var opts, report string
	var interval, last, next, created int64
	if err := r.Scan(&f.Name, &f.URL, &f.Format, &f.Collection, &f.User, &f.Organisation, &opts, &interval,
		&f.ETag, &f.LastModified, &last, &next, &report, &created); err != nil {
		return nil, err
	}
	f.Options, f.LastReport = []byte(opts), []byte(report)
	f.Interval = time.Duration(interval) * time.Millisecond
	f.LastRun, f.NextRun, f.Created = fromMicrosOrZero(last), fromMicrosOrZero(next), fromMicros(created)
	return &f, nil
}

func fromMicrosOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMicros(v)
}

func microsOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// CreateImportFeed implements store.ImportFeeds.
func (s *Store) CreateImportFeed(ctx context.Context, f *store.ImportFeed) error {
	if f.Name == "" || f.URL == "" || f.Format == "" || f.Collection == "" || f.Interval <= 0 {
		return fmt.Errorf("feed needs a name, a URL, a format, a collection and an interval: %w", store.ErrInvalid)
	}
	f.Created = s.now().UTC()
	if len(f.Options) == 0 {
		f.Options = []byte("{}")
	}
	_, err := s.db.Exec(ctx, `INSERT INTO import_feeds (`+importFeedCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.Name, f.URL, f.Format, f.Collection, f.User, f.Organisation, string(f.Options), f.Interval.Milliseconds(),
		f.ETag, f.LastModified, microsOrZero(f.LastRun), microsOrZero(f.NextRun), string(f.LastReport), micros(f.Created))
	if s.d.IsUnique(err) {
		return fmt.Errorf("feed %q: %w", f.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create feed: %w", err)
	}
	return nil
}

// GetImportFeed implements store.ImportFeeds.
func (s *Store) GetImportFeed(ctx context.Context, name string) (*store.ImportFeed, error) {
	f, err := scanImportFeed(s.db.QueryRow(ctx, `SELECT `+importFeedCols+` FROM import_feeds WHERE name = ?`, name))
	if noRows(err) {
		return nil, fmt.Errorf("feed %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("feed %q: %w", name, err)
	}
	return f, nil
}

// ListImportFeeds implements store.ImportFeeds.
func (s *Store) ListImportFeeds(ctx context.Context) ([]*store.ImportFeed, error) {
	rows, err := s.db.Query(ctx, `SELECT `+importFeedCols+` FROM import_feeds ORDER BY name`)
	return collect(rows, err, "list feeds", scanImportFeed)
}

// DeleteImportFeed implements store.ImportFeeds.
func (s *Store) DeleteImportFeed(ctx context.Context, name string) error {
	n, err := s.db.Exec(ctx, `DELETE FROM import_feeds WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete feed: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("feed %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// SaveImportFeedRun implements store.ImportFeeds.
func (s *Store) SaveImportFeedRun(ctx context.Context, f *store.ImportFeed) error {
	n, err := s.db.Exec(ctx, `UPDATE import_feeds SET etag = ?, last_modified = ?, last_run = ?, next_run = ?, last_report = ? WHERE name = ?`,
		f.ETag, f.LastModified, microsOrZero(f.LastRun), microsOrZero(f.NextRun), string(f.LastReport), f.Name)
	if err != nil {
		return fmt.Errorf("save feed run: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("feed %q: %w", f.Name, store.ErrNotFound)
	}
	return nil
}

// ClaimImportFeed implements store.ImportFeeds.
func (s *Store) ClaimImportFeed(ctx context.Context, name string, due, next time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, `UPDATE import_feeds SET next_run = ? WHERE name = ? AND next_run = ?`, micros(next), name, microsOrZero(due))
	if err != nil {
		return false, fmt.Errorf("claim feed: %w", err)
	}
	return n == 1, nil
}

// PutWarningList implements store.ImportFeeds.
func (s *Store) PutWarningList(ctx context.Context, l *store.WarningList) error {
	if l.Name == "" || l.Kind == "" {
		return fmt.Errorf("warning list needs a name and a kind: %w", store.ErrInvalid)
	}
	entries, err := json.Marshal(l.Entries)
	if err != nil {
		return err
	}
	l.Updated = s.now().UTC()
	_, err = s.db.Exec(ctx, `INSERT INTO warning_lists (name, kind, description, entries, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, description = excluded.description, entries = excluded.entries, updated = excluded.updated`,
		l.Name, l.Kind, l.Description, string(entries), micros(l.Updated))
	if err != nil {
		return fmt.Errorf("put warning list: %w", err)
	}
	return nil
}

// ListWarningLists implements store.ImportFeeds.
func (s *Store) ListWarningLists(ctx context.Context) ([]*store.WarningList, error) {
	rows, err := s.db.Query(ctx, `SELECT name, kind, description, entries, updated FROM warning_lists ORDER BY name`)
	return collect(rows, err, "list warning lists", func(r Row) (*store.WarningList, error) {
		var l store.WarningList
		var entries string
		var updated int64
		if err := r.Scan(&l.Name, &l.Kind, &l.Description, &entries, &updated); err != nil {
			return nil, err
		}
		l.Updated = fromMicros(updated)
		return &l, json.Unmarshal([]byte(entries), &l.Entries)
	})
}

// DeleteWarningList implements store.ImportFeeds.
func (s *Store) DeleteWarningList(ctx context.Context, name string) error {
	n, err := s.db.Exec(ctx, `DELETE FROM warning_lists WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete warning list: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("warning list %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// Inactive implements store.ImportFeeds.
func (s *Store) Inactive(ctx context.Context, objectID string) (string, bool, error) {
	var reason string
	err := s.db.QueryRow(ctx, `SELECT reason FROM inactive_objects WHERE object_id = ?`, objectID).Scan(&reason)
	if noRows(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("inactive %s: %w", objectID, err)
	}
	return reason, true, nil
}

// ListInactive implements store.ImportFeeds.
func (s *Store) ListInactive(ctx context.Context, collectionID string) ([]store.InactiveFlag, error) {
	rows, err := s.db.Query(ctx, `SELECT object_id, collection, list, value, reason, at FROM inactive_objects WHERE collection = ? ORDER BY object_id`, collectionID)
	return collect(rows, err, "list inactive", func(r Row) (store.InactiveFlag, error) {
		var f store.InactiveFlag
		var at int64
		err := r.Scan(&f.ObjectID, &f.Collection, &f.List, &f.Value, &f.Reason, &at)
		f.At = fromMicros(at)
		return f, err
	})
}

// AllInactive lists every inactive flag, of every collection (a flag is
// kept by object id, also after its collection is deleted): the
// indicator lifecycle reads them all at once instead of asking per
// indicator, and notices flags a warning-list rescan changed, which
// leaves no change-log record.
func (s *Store) AllInactive(ctx context.Context) ([]store.InactiveFlag, error) {
	rows, err := s.db.Query(ctx, `SELECT object_id, collection, list, value, reason, at FROM inactive_objects ORDER BY object_id`)
	return collect(rows, err, "list inactive", func(r Row) (store.InactiveFlag, error) {
		var f store.InactiveFlag
		var at int64
		err := r.Scan(&f.ObjectID, &f.Collection, &f.List, &f.Value, &f.Reason, &at)
		f.At = fromMicros(at)
		return f, err
	})
}

// FlagInactive implements store.ImportTx.
func (t *writeTx) FlagInactive(ctx context.Context, flags []store.InactiveFlag) error {
	if t.done {
		return errTxDone
	}
	b := &Batch{}
	for _, f := range flags {
		b.Queue(`INSERT INTO inactive_objects (object_id, collection, list, value, reason, at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (object_id) DO UPDATE SET collection = excluded.collection, list = excluded.list, value = excluded.value, reason = excluded.reason, at = excluded.at`,
			f.ObjectID, f.Collection, f.List, f.Value, f.Reason, micros(f.At))
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.Send(ctx, b); err != nil {
		return fmt.Errorf("flag inactive: %w", err)
	}
	return nil
}

// ClearInactive implements store.ImportTx.
func (t *writeTx) ClearInactive(ctx context.Context, ids []string) error {
	if t.done {
		return errTxDone
	}
	b := &Batch{}
	for _, id := range ids {
		b.Queue(`DELETE FROM inactive_objects WHERE object_id = ?`, id)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.Send(ctx, b); err != nil {
		return fmt.Errorf("clear inactive: %w", err)
	}
	return nil
}
