package postgres

import (
	"context"
	"fmt"
)

// MarkingDefinitions implements store.Markings. The partial index
// objects_markings (migration 0003) holds marking-definition rows only;
// DISTINCT ON keeps the latest row of each id across collections (greatest
// spec version, then version, as each collection's latest row is chosen).
func (s *Store) MarkingDefinitions(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (id) id, body FROM objects
		WHERE type = 'marking-definition' AND latest AND id = ANY($1::text[])
		ORDER BY id, spec_version DESC, version DESC`, ids)
	if err != nil {
		return nil, fmt.Errorf("marking definitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("marking definitions: %w", err)
		}
		out[id] = body
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("marking definitions: %w", err)
	}
	return out, nil
}
