package sqlite

import (
	"context"
	"fmt"
)

// MarkingDefinitions implements store.Markings. The partial index
// objects_markings (migration 0003) holds marking-definition rows only, so
// the lookup costs no more than the number of their versions.
func (s *Store) MarkingDefinitions(ctx context.Context, ids []string) (map[string][]byte, error) {
	type best struct {
		spec, version string
		body          []byte
	}
	found := make(map[string]best, len(ids))
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		args := make([]any, n)
		for i := range n {
			args[i] = ids[i]
		}
		ids = ids[n:]
		rows, err := s.r.QueryContext(ctx, `SELECT id, spec_version, version, body FROM objects INDEXED BY objects_markings
			WHERE type = 'marking-definition' AND latest = 1 AND id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("marking definitions: %w", err)
		}
		for rows.Next() {
			var id string
			var b best
			if err := rows.Scan(&id, &b.spec, &b.version, &b.body); err != nil {
				rows.Close()
				return nil, fmt.Errorf("marking definitions: %w", err)
			}
			// The latest across collections: greatest spec version, then
			// version, as each collection's latest row is chosen.
			if cur, ok := found[id]; !ok || b.spec > cur.spec || (b.spec == cur.spec && b.version > cur.version) {
				found[id] = b
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("marking definitions: %w", err)
		}
	}
	out := make(map[string][]byte, len(found))
	for id, b := range found {
		out[id] = b.body
	}
	return out, nil
}
