package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints off the commit path.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
// past 1000 pages: that commit then also copies the WAL into the database
// file and fsyncs it, and with group commit every write of that batch
// waits for it (about a tenth of the committer's time under load, and a
// second fsync in those writes' latency). The writer connection therefore
// runs with wal_autocheckpoint=0, and a checkpointer goroutine on its own
// connection runs PRAGMA wal_checkpoint(PASSIVE) after every
// checkpointEvery writes, and once every checkpointInterval for the writes
// that do not go through the committer (clients, sessions). A PASSIVE checkpoint never blocks the writer or
// readers: it copies what no reader still needs, and SQLite restarts the
// WAL from its beginning once a checkpoint has copied all of it. Durability
// is the WAL's and does not change: a crash before a checkpoint replays the
// WAL on the next open.

// checkpointEvery is how many committed writes trigger a checkpoint:
// a token insert changes about four pages, so this is near SQLite's own
// threshold of 1000 WAL pages.
const checkpointEvery = 256

// checkpointInterval bounds the WAL's growth from the other writes; a
// checkpoint with nothing to copy costs a read of the WAL index.
const checkpointInterval = time.Second

// startCheckpointer opens the checkpointer's connection and starts it.
func (db *DB) startCheckpointer(ctx context.Context, path string, o options) error {
	c, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		return internal("open checkpointer", err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return internal("open checkpointer", err)
	}
	db.checkpointer = c
	db.kick = make(chan struct{}, 1)
	db.checkpointerDone = make(chan struct{})
	go db.checkpointLoop()
	return nil
}

// written tells the checkpointer that n more writes were committed.
func (db *DB) written(n int) {
	before := db.sinceCheckpoint
	db.sinceCheckpoint += n
	if before/checkpointEvery == db.sinceCheckpoint/checkpointEvery {
		return
	}
	select {
	case db.kick <- struct{}{}:
	default: // a checkpoint is pending already
	}
}

func (db *DB) checkpointLoop() {
	defer close(db.checkpointerDone)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-db.kick:
		case <-tick.C:
		case <-db.closing:
			return
		}
		// An error (SQLITE_BUSY while another process checkpoints) only
		// means this checkpoint is skipped; the next kick tries again.
		db.checkpointer.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	}
}
