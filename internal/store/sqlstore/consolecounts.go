package sqlstore

import (
	"context"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements store.ObjectCounts from the aggregates that the
// triggers of migration 14 keep (console_counts, console_sighting_days): the
// dashboard reads a row per group of objects, whatever the store's size.

var _ store.ObjectCounts = (*Store)(nil)

// microsPerDay groups date_added (microseconds since the epoch) by UTC
// day, as migration 14's triggers do.
const microsPerDay = 86400 * 1000000

// CountObjects implements store.ObjectCounts.
func (s *Store) CountObjects(ctx context.Context, collectionID string) ([]store.ObjectCount, error) {
	rows, err := s.db.Query(ctx, `SELECT type, tlp, submitter, recipients, n FROM console_counts
		WHERE cid = (SELECT cid FROM collections WHERE id = ?) AND n > 0`, collectionID)
	return collect(rows, err, "count objects", func(r Row) (store.ObjectCount, error) {
		var c store.ObjectCount
		var recipients string
		if err := r.Scan(&c.Type, &c.TLP, &c.Submitter, &recipients, &c.N); err != nil {
			return c, err
		}
		var err error
		c.Recipients, err = parseList(recipients)
		return c, err
	})
}

// CountSightingsPerDay implements store.ObjectCounts.
func (s *Store) CountSightingsPerDay(ctx context.Context, collectionID string, since time.Time) ([]store.ObjectCount, error) {
	rows, err := s.db.Query(ctx, `SELECT day, tlp, submitter, recipients, n FROM console_sighting_days
		WHERE cid = (SELECT cid FROM collections WHERE id = ?) AND day >= ? AND n > 0`,
		collectionID, sinceDay(since))
	return collect(rows, err, "count sightings per day", func(r Row) (store.ObjectCount, error) {
		c := store.ObjectCount{Type: "sighting"}
		var day int64
		var recipients string
		if err := r.Scan(&day, &c.TLP, &c.Submitter, &recipients, &c.N); err != nil {
			return c, err
		}
		c.Day = time.UnixMicro(day * microsPerDay).UTC()
		var err error
		c.Recipients, err = parseList(recipients)
		return c, err
	})
}

// sinceDay is the first whole UTC day at or after since (days before
// 1970 are not distinguished: no object was added then).
func sinceDay(since time.Time) int64 {
	m := micros(since)
	if m <= 0 {
		return 0
	}
	return (m + microsPerDay - 1) / microsPerDay
}
