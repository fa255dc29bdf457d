package sqlstore

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// InitCursor stores value under key unless the key already holds one, and
// returns what the key holds afterwards, in the transaction of Update.
// Two processes initialising one key at once get the same value: the
// insert of the second waits for the first to commit, does nothing, and
// the read that follows it (a new statement, so a new snapshot under read
// committed) sees the first one's value (federation's per-peer id key).
func (t *writeTx) InitCursor(ctx context.Context, key string, value []byte) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	if key == "" {
		return nil, fmt.Errorf("cursor key is empty: %w", store.ErrInvalid)
	}
	if value == nil {
		value = []byte{}
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return nil, fmt.Errorf("init cursor %s: %w", key, err)
	}
	return t.Cursor(ctx, key)
}
