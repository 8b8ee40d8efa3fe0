package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"sync/atomic"

	"github.com/latch-auth/latch"
)

// Group commit.
//
// With synchronous=FULL every COMMIT waits for an fsync of the WAL, and the
// one writer connection serializes them: one fsync per issued token or per
// refresh rotation made the disk's sync rate the ceiling of every write
// path. The hot writes (token issuance, grants, revocations) therefore go
// through one committer goroutine: a write submitted while a commit is in
// flight waits for it, and the committer gathers every write queued by then
// (up to maxBatch) into the next transaction. One fsync covers them all;
// each caller is answered only after the COMMIT that holds its write
// returned, so an acknowledged write is as durable as before.
//
// Each write runs inside its own SAVEPOINT, so a write that fails on its
// own (a duplicate hash, an unknown client, a reused refresh token's
// domain error) is rolled back alone and answered with its own error while
// the others commit. A failure of the transaction itself (BEGIN, a
// savepoint that cannot be rolled back because SQLite already rolled the
// whole transaction back, COMMIT) fails every write of the batch that had
// not failed on its own, with EUNAVAILABLE: nothing of theirs is on disk,
// and a retry is safe. No caller is ever told a write succeeded that the
// COMMIT did not make durable.
//
// There is no timer: the committer never waits for a batch to fill. A lone
// writer commits at once; writes queue only while the disk is busy, which
// is exactly when gathering them pays.

// maxBatch bounds one transaction: the write lock is held for the whole
// batch, and readers of other processes (the CLI) wait behind it.
const maxBatch = 256

// write is one caller's transaction body waiting for the committer.
type write struct {
	ctx  context.Context
	op   string
	fn   func(context.Context, *sql.Tx) error
	done chan error // buffered: the committer never blocks on an answer
}

// batchStats counts what the committer did, for benchmarks and tests.
type batchStats struct {
	commits atomic.Int64 // transactions attempted
	writes  atomic.Int64 // writes they carried
	largest atomic.Int64 // most writes in one transaction
}

// startCommitter starts the committer goroutine; Close stops it.
func (db *DB) startCommitter() {
	db.writes = make(chan *write) // unbuffered: after Close no send can succeed
	db.closing = make(chan struct{})
	db.committerDone = make(chan struct{})
	go db.commitLoop()
}

// batch runs fn in a write transaction shared with the writes queued beside
// it, and returns fn's error or the batch's. fn may run again never: it runs
// exactly once or, if ctx ends before its turn, not at all. fn gets a
// context that is not cancelled with ctx, because interrupting a statement
// would roll back the other callers' writes too; ctx bounds only the wait.
// A caller whose ctx ends while its write is queued or in flight gets
// ctx's error, and its write may still commit (as with any commit whose
// answer was lost).
func (db *DB) batch(ctx context.Context, op string, fn func(context.Context, *sql.Tx) error) error {
	// The committer runs its savepoints through the prepared statements,
	// which exist once the schema is known to be current.
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	w := &write{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	select {
	case db.writes <- w:
	case <-db.closing:
		return latch.Errorf(latch.EUNAVAILABLE, "sqlite: %s: database is closed", op)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) commitLoop() {
	defer close(db.committerDone)
	ws := make([]*write, 0, maxBatch)
	for {
		select {
		case w := <-db.writes:
			ws = append(ws[:0], w)
		case <-db.closing:
			return
		}
	gather:
		for len(ws) < maxBatch {
			select {
			case w := <-db.writes:
				ws = append(ws, w)
			default:
				break gather
			}
		}
		db.commit(ws)
		clear(ws[:cap(ws)])
	}
}

// commit runs ws in one transaction and answers each of them. With a
// syncer, the transaction stays open while the previous batch's fsync
// runs and takes in the writes that arrive meanwhile (up to maxBatch);
// it commits when the syncer is free and hands the batch to it.
func (db *DB) commit(ws []*write) {
	errs := make([]error, len(ws), maxBatch)
	ctx := context.Background()
	fail := func(cause error) {
		for i, w := range ws {
			if errs[i] == nil {
				errs[i] = latch.WithCause(latch.Errorf(latch.EUNAVAILABLE,
					"sqlite: %s: the transaction of %d writes holding it failed, nothing of it was written: %v",
					w.op, len(ws), cause), cause)
			}
		}
	}
	answer := func() {
		for i, w := range ws {
			w.done <- errs[i]
		}
	}
	defer func() {
		db.stats.commits.Add(1)
		db.stats.writes.Add(int64(len(ws)))
		for n := int64(len(ws)); ; {
			l := db.stats.largest.Load()
			if n <= l || db.stats.largest.CompareAndSwap(l, n) {
				break
			}
		}
	}()

	if err := db.syncer.brokenErr(); err != nil {
		fail(err)
		answer()
		return
	}
	// One connection for the whole batch: the pool has only this one, and
	// its synchronous setting must not leak to the writes that do not go
	// through the committer.
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		fail(err)
		answer()
		return
	}
	defer conn.Close()
	if db.syncer != nil {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
			fail(err)
			answer()
			return
		}
		defer func() {
			if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
				// A connection left at NORMAL would commit the other
				// writes unsynced: have database/sql discard it.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		answer()
		return
	}
	// abort ends the transaction and fails every write not failed yet.
	abort := func(err error) {
		tx.Rollback()
		fail(err)
		answer()
	}
	// The savepoint statements are prepared once (statements), not parsed
	// again for every write; batch made sure they are.
	st := db.stmts.Load()
	exec := func(s *sql.Stmt) error {
		_, err := tx.StmtContext(ctx, s).ExecContext(ctx)
		return err
	}
	// run executes write i in its savepoint; false when the transaction
	// is lost (and every write answered).
	run := func(i int) bool {
		w := ws[i]
		db.batchLen = len(ws)
		if err := w.ctx.Err(); err != nil {
			errs[i] = err // its caller is gone and was told so: skip the write
			return true
		}
		if err := exec(st.savepoint); err != nil {
			abort(err)
			return false
		}
		wctx := context.WithoutCancel(w.ctx)
		if errs[i] = w.fn(wctx, tx); errs[i] != nil {
			// ROLLBACK TO fails when SQLite has already rolled the whole
			// transaction back (SQLITE_FULL, IOERR, ...): then the writes
			// before this one are gone too.
			if err := exec(st.rollbackTo); err != nil {
				abort(err)
				return false
			}
		}
		if err := exec(st.release); err != nil {
			abort(err)
			return false
		}
		return true
	}
	for i := range ws {
		if !run(i) {
			return
		}
	}
	if db.syncer != nil {
		// Wait for the syncer, executing the writes that arrive meanwhile:
		// the disk's time is spent on the next batch's statements.
		for waiting := true; waiting; {
			in := db.writes
			if len(ws) >= maxBatch {
				in = nil
			}
			select {
			case <-db.syncer.free:
				waiting = false
			case w := <-in:
				ws = append(ws, w)
				errs = append(errs, nil)
				if !run(len(ws) - 1) {
					db.syncer.free <- struct{}{} // not taken after all
					return
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		rollbackAfterFailedCommit(conn)
		fail(err)
	} else {
		db.written(len(ws))
		db.restartWAL(conn, len(ws))
		if db.syncer != nil {
			// ws is the committer's buffer, reused for the next batch;
			// the syncer gives the token back after the fsync.
			db.syncer.batches <- synced{ws: slices.Clone(ws), errs: errs}
			return
		}
	}
	if db.syncer != nil {
		db.syncer.free <- struct{}{}
	}
	answer()
}

// rollbackAfterFailedCommit ends the transaction a failed COMMIT left open.
// database/sql considers a Tx done once Commit returns, error or not, and
// returns the connection to the pool; but SQLite keeps the transaction open
// when COMMIT fails (a deferred constraint, SQLITE_BUSY), and the writer's
// next BEGIN would fail forever. The writer pool has one connection, so
// this ROLLBACK reaches that one; "no transaction is active" is fine.
func rollbackAfterFailedCommit(conn *sql.Conn) {
	conn.ExecContext(context.Background(), "ROLLBACK")
}

// rollbackAfterFailedCommit is the same for a transaction of the pool.
func (db *DB) rollbackAfterFailedCommit() {
	db.writer.ExecContext(context.Background(), "ROLLBACK")
}

// stopCommitter stops the committer after the batch in flight; writes
// submitted later fail with EUNAVAILABLE.
func (db *DB) stopCommitter() {
	if db.closing == nil {
		return
	}
	close(db.closing)
	<-db.committerDone
	db.stopSyncer()
}
