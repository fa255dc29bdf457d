package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The writer commits to the WAL and never checkpoints itself: left to
// SQLite, the commit that crosses the autocheckpoint threshold copies the
// whole WAL into the database file and syncs it before returning, which
// stalls every writer (and the TAXII POSTs waiting on them) for the time of
// a large write and an fsync. A checkpointer on a connection of its own
// copies the WAL in the background instead (PASSIVE: it never blocks the
// writer or readers). Durability is unchanged: a commit is durable once it
// is in the WAL.

// Checkpointer tuning.
const (
	// checkpointIdle is the pause between checkpoints when the WAL is
	// fully copied.
	checkpointIdle = 200 * time.Millisecond
	// checkpointBusy is the pause while the writer keeps adding frames:
	// a checkpoint copies the last version of each page in the WAL and
	// syncs the file, so the pages every commit touches (index interior
	// pages, the collection's row, FTS5 structure) are copied once per
	// pause, not once per commit. 20 ms made checkpoints a tenth of the
	// ingest's CPU time at a million objects.
	checkpointBusy = 200 * time.Millisecond
	// walRestartFrames bounds the WAL: under a writer that never pauses,
	// the WAL can only start over from the beginning once a checkpoint has
	// copied every frame, so past this many frames (about 256 MiB) a
	// RESTART checkpoint holds new writers back for the copy of the last
	// frames.
	walRestartFrames = 65536
)

// checkpointer runs PASSIVE checkpoints until stopped.
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// startCheckpointer opens a connection on the database file at dsn and
// checkpoints in the background.
func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel}
	c.done.Add(1)
	go c.run(ctx)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer c.done.Done()
	wait := checkpointIdle
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		log, copied, err := c.checkpoint(ctx, "PASSIVE")
		if err == nil && log > walRestartFrames {
			log, copied, err = c.checkpoint(ctx, "RESTART")
		}
		switch {
		case err != nil:
			// Retried later; the WAL only grows meanwhile.
			wait = checkpointIdle
		case copied < log:
			wait = checkpointBusy
		default:
			wait = checkpointIdle
		}
	}
}

// checkpoint runs one checkpoint in mode and returns the WAL's frames and
// how many of them are in the database file.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (log, copied int64, err error) {
	var busy int64
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &copied)
	if err != nil && !errors.Is(err, context.Canceled) {
		return 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	return log, copied, err
}

// stop ends the background checkpoints and closes the connection.
func (c *checkpointer) stop() error {
	c.cancel()
	c.done.Wait()
	return c.db.Close()
}
