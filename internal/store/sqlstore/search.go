package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

var _ store.Searcher = (*Store)(nil)

// locatedCols are the columns of a store.Located, over aliases c and o.
const locatedCols = "c.id, " + entryCols

// readerSQL renders, over aliases c (collections) and o (objects), the
// condition "r may read this row" as access.Decide states it for the latest
// version, so that rows the reader may not see are never read (their
// number cannot show in the cost of a query). ok is false when r reads no
// collection.
func readerSQL(d Dialect, r *store.Reader, a *Args) (cond string, ok bool) {
	if r == nil || len(r.Collections) == 0 {
		return "", false
	}
	var all, open, strict, named []string
	for _, c := range r.Collections {
		all = append(all, c.ID)
		switch {
		case c.DefaultTLP >= 1 && c.DefaultTLP <= 3:
			open = append(open, c.ID)
		case c.DefaultTLP == 4 || c.DefaultTLP == 5:
			strict = append(strict, c.ID)
		}
		if c.Recipient {
			named = append(named, c.ID)
		}
	}
	inAll := d.In(a, "c.id", all) // placeholders in text order
	var ors []string
	// CLEAR, GREEN, AMBER (marked or by default): every reader.
	ors = append(ors, "o.tlp BETWEEN 1 AND 3")
	if len(open) > 0 {
		ors = append(ors, "(o.tlp = 0 AND "+d.In(a, "c.id", open)+")")
	}
	if org := r.Organisation; org != "" {
		// Any level, unresolved markings included: the submitting
		// organisation.
		ors = append(ors, "o.submitter = "+a.Add(org))
		// AMBER+STRICT and RED: organisations named as recipients.
		level := "o.tlp IN (4, 5)"
		if len(strict) > 0 {
			level = "(" + level + " OR (o.tlp = 0 AND " + d.In(a, "c.id", strict) + "))"
		}
		who := "o.recipients LIKE " + a.Add(`%"`+likeEscape(org)+`"%`) + ` ESCAPE '\'`
		if len(named) > 0 {
			who = "(" + who + " OR " + d.In(a, "c.id", named) + ")"
		}
		ors = append(ors, "("+level+" AND "+who+")")
	}
	return inAll + " AND (" + strings.Join(ors, " OR ") + ")", true
}

// likeEscape escapes the wildcards of LIKE (with ESCAPE '\').
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// rankWindow is how many of the newest matching objects the reader may
// read a text search ranks. Ranking every match of a word found in most
// objects would read them all (seconds at a million objects); the newest
// come straight from the index in reverse order. Matches older than the
// window follow it, newest first.
const rankWindow = 2000

// SearchText implements store.Searcher.
func (s *Store) SearchText(ctx context.Context, r *store.Reader, q store.TextQuery) ([]store.Located, error) {
	if len(r.Collections) == 0 {
		return nil, nil
	}
	limit := q.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	offset := max(q.Offset, 0)
	text := strings.TrimSpace(q.Text) != ""
	if text {
		if _, cond, _, _ := s.d.TextMatch(&Args{}, q.Text); cond == "" {
			return nil, nil // no searchable word
		}
		if err := s.syncSearch(ctx); err != nil {
			return nil, err
		}
	}
	// matching renders FROM and WHERE over o, c and the text index for
	// the query, adding its arguments to a, and the score and the index's
	// row order.
	matching := func(a *Args) (from, where, score, order string) {
		var join, cond string
		join, cond, score, order = s.d.TextMatch(a, q.Text)
		from = " FROM objects o JOIN collections c ON c.cid = o.cid" + join
		where = " WHERE o.latest AND " + cond
		rc, _ := readerSQL(s.d, r, a)
		return from, where + " AND " + rc + s.filterSQL(r, q, a), score, order
	}
	if !text {
		// Newest first, by walking the objects backwards until the page
		// is full: CROSS JOIN keeps SQLite from reading the readable
		// collections whole and sorting them (seconds at a million
		// objects); PostgreSQL plans it as any inner join.
		var a Args
		rc, _ := readerSQL(s.d, r, &a)
		where := " WHERE c.cid = o.cid AND o.latest AND " + rc + s.filterSQL(r, q, &a)
		return s.located(ctx, "search", "SELECT "+locatedCols+", o.body, CAST(0 AS REAL) AS score FROM objects o CROSS JOIN collections c"+where+
			" ORDER BY o.rid DESC LIMIT "+a.Add(limit)+" OFFSET "+a.Add(offset), a, true)
	}
	var out []store.Located
	if offset < rankWindow {
		var a Args
		from, where, score, order := matching(&a)
		window := "SELECT o.rid AS rid, " + score + " AS score" + from + where + " ORDER BY " + order + " DESC LIMIT " + a.Add(rankWindow)
		got, err := s.located(ctx, "search", "SELECT "+locatedCols+", o.body, w.score FROM ("+window+") w JOIN objects o ON o.rid = w.rid JOIN collections c ON c.cid = o.cid"+
			" ORDER BY w.score, w.rid DESC LIMIT "+a.Add(min(limit, rankWindow-offset))+" OFFSET "+a.Add(offset), a, true)
		if err != nil {
			return nil, err
		}
		out = got
		if len(out) == limit || offset+len(out) < rankWindow {
			return out, nil // the page is full, or every match was in the window
		}
	}
	// Past the window: the older matches, newest first.
	var a Args
	from, where, _, order := matching(&a)
	var oldest int64
	err := s.db.QueryRow(ctx, "SELECT COALESCE(MIN(rid), 0) FROM (SELECT o.rid AS rid"+from+where+" ORDER BY "+order+" DESC LIMIT "+a.Add(rankWindow)+") w", a...).Scan(&oldest)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	a = nil
	from, where, score, order := matching(&a)
	got, err := s.located(ctx, "search", "SELECT "+locatedCols+", o.body, "+score+" AS score"+from+where+" AND "+order+" < "+a.Add(oldest)+
		" ORDER BY "+order+" DESC LIMIT "+a.Add(limit-len(out))+" OFFSET "+a.Add(max(0, offset-rankWindow)), a, true)
	return append(out, got...), err
}

// syncSearch brings the search index up to what is committed, where it
// follows the commits (SearchSyncer).
func (s *Store) syncSearch(ctx context.Context) error {
	if ss, ok := s.db.(SearchSyncer); ok {
		if err := ss.SyncSearch(ctx); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
	}
	return nil
}

// filterSQL renders the filters of q (after the reader's conditions).
func (s *Store) filterSQL(r *store.Reader, q store.TextQuery, a *Args) string {
	var where string
	if len(q.Types) > 0 {
		where += " AND " + s.d.In(a, "o.type", q.Types)
	}
	if len(q.ExcludeTypes) > 0 {
		where += " AND NOT " + s.d.In(a, "o.type", q.ExcludeTypes)
	}
	if len(q.Collections) > 0 {
		where += " AND " + s.d.In(a, "c.id", q.Collections)
	}
	if len(q.Submitters) > 0 {
		where += " AND " + s.d.In(a, "o.submitter", q.Submitters)
	}
	if len(q.TLPs) > 0 {
		levels := make([]int64, len(q.TLPs))
		var byDefault []string
		for i, t := range q.TLPs {
			levels[i] = int64(t)
			for _, c := range r.Collections {
				if c.DefaultTLP == t {
					byDefault = append(byDefault, c.ID)
				}
			}
		}
		cond := s.d.In(a, "o.tlp", levels)
		if len(byDefault) > 0 {
			cond = "(" + cond + " OR (o.tlp = 0 AND " + s.d.In(a, "c.id", byDefault) + "))"
		}
		where += " AND " + cond
	}
	if !q.ModifiedFrom.IsZero() {
		where += " AND o.version >= " + a.Add(stix.SortKey(q.ModifiedFrom))
	}
	if !q.ModifiedTo.IsZero() {
		where += " AND o.version < " + a.Add(stix.SortKey(q.ModifiedTo))
	}
	return where
}

// located runs a query selecting locatedCols, the body, and (when scored)
// a score.
func (s *Store) located(ctx context.Context, what, query string, a Args, scored bool) ([]store.Located, error) {
	rows, err := s.db.Query(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Located
	var coll, recipients string
	var added int64
	var score float64
	for rows.Next() {
		var l store.Located
		dest := []any{&coll, &l.ID, &l.Type, &l.SpecVersion, &l.VersionRaw, &added, &l.Submitter, &l.TLP, &recipients, &l.Raw}
		if scored {
			dest = append(dest, &score)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		l.Collection, l.DateAdded, l.Score = coll, fromMicros(added), score
		if l.Recipients, err = parseList(recipients); err != nil {
			return nil, fmt.Errorf("%s: recipients of %s: %w", what, l.ID, err)
		}
		if t, err := stix.ParseTimestamp(l.VersionRaw); err == nil {
			l.Modified = t
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// LatestByID implements store.Searcher.
func (s *Store) LatestByID(ctx context.Context, r *store.Reader, ids []string) ([]store.Located, error) {
	var out []store.Located
	err := inChunks(ids, func(part []string) error {
		var a Args
		cond := s.d.In(&a, "o.id", part)
		rc, ok := readerSQL(s.d, r, &a)
		if !ok {
			return nil
		}
		got, err := s.located(ctx, "objects by id", "SELECT "+locatedCols+", o.body FROM objects o JOIN collections c ON c.cid = o.cid WHERE o.latest AND "+
			cond+" AND "+rc+" ORDER BY o.rid", a, false)
		out = append(out, got...)
		return err
	})
	return out, err
}

// Referencing implements store.Searcher.
func (s *Store) Referencing(ctx context.Context, r *store.Reader, ids, types []string, limit int) ([]store.Located, error) {
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	if len(ids) > 0 && len(r.Collections) > 0 {
		if err := s.syncSearch(ctx); err != nil {
			return nil, err
		}
	}
	var out []store.Located
	err := inChunks(ids, func(part []string) error {
		if len(out) >= limit {
			return nil
		}
		var a Args
		// The references lead, then each object by its key: CROSS JOIN
		// fixes that order for SQLite, whose planner otherwise scans the
		// readable collections' objects (seconds at a million objects);
		// PostgreSQL plans it as any inner join.
		from := "(SELECT DISTINCT rid FROM search_refs WHERE " + s.d.In(&a, "target", part) + ") r CROSS JOIN objects o CROSS JOIN collections c"
		cond := "o.rid = r.rid AND c.cid = o.cid AND o.latest" + s.d.IndexedSQL()
		if len(types) > 0 {
			cond += " AND " + s.d.In(&a, "o.type", types)
		}
		rc, ok := readerSQL(s.d, r, &a) // after cond: placeholders in text order
		if !ok {
			return nil
		}
		got, err := s.located(ctx, "referencing objects", "SELECT "+locatedCols+", o.body FROM "+from+" WHERE "+
			cond+" AND "+rc+" ORDER BY o.rid LIMIT "+a.Add(limit-len(out)), a, false)
		out = append(out, got...)
		return err
	})
	return out, err
}
