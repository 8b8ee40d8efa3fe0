package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
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

// restartEvery is how many committed writes make the committer run a
// checkpoint of its own between two transactions (restartWAL).
const restartEvery = 4096

// walSizeLimit is the size the WAL file is truncated to when it is
// rewound (journal_size_limit): about twice what restartEvery writes
// leave in it (2-4 pages of 4 KiB a token).
const walSizeLimit = 128 << 20

// restartBusy bounds how long restartWAL waits for readers.
const restartBusy = 100 * time.Millisecond

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
		if _, err := db.checkpointer.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
			db.copied.Store(true)
		}
	}
}

// restartWAL lets the WAL start over from its beginning.
//
// SQLite rewinds the WAL only in a write transaction whose snapshot began
// after a checkpoint copied all of it: then the first frame written goes
// to the start of the file again. The committer keeps a transaction open
// while the previous batch is synced, so each BEGIN comes right after a
// COMMIT, never after the background checkpointer's last copy: that
// condition never held, and under sustained writes the WAL grew without
// bound (575 MB in 10 s of load), every fsync extending the file and
// every read searching a larger WAL index.
//
// So once restartEvery writes have been committed since the last rewind
// and the background checkpointer has copied the WAL since, the
// committer, holding the writer connection between two transactions,
// checkpoints the frames committed after that copy in RESTART mode, which
// also waits for the readers still in an older snapshot (a query each) to
// finish: its next transaction rewinds the WAL. The writes queued at that
// moment wait for it (2-16 ms measured under load: the frames committed
// during the background copy, and two fsyncs), once every restartEvery
// writes, few enough to stay out of the 99th percentile. The wait for
// readers is bounded by restartBusy, not the usual busy timeout, so that
// another process's long read (a backup) costs a skipped rewind, not a
// stall of every write. The checkpoint syncs the WAL before copying it
// and the database file after, so frames whose own fsync is still pending
// in the syncer never become the database's unsynced.
func (db *DB) restartWAL(conn *sql.Conn, n int) {
	db.sinceRestart += n
	if db.sinceRestart < restartEvery || !db.copied.Swap(false) {
		return
	}
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", restartBusy.Milliseconds())); err != nil {
		return // with the usual busy timeout, RESTART could hold the writes for seconds
	}
	// busy is 1 when the checkpoint could not finish: the background
	// checkpointer holds the checkpoint lock (answered at once, without
	// waiting), or a reader or another process outlasted restartBusy. Then
	// the rewind is tried again after the next background copy.
	var busy, walFrames, copiedFrames int
	err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &walFrames, &copiedFrames)
	if err == nil && busy == 0 {
		db.sinceRestart = 0
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", busyTimeoutMS)); err != nil {
		// Left at restartBusy, the writer would fail writes on
		// SQLITE_BUSY sooner than it should: have database/sql
		// discard the connection.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
