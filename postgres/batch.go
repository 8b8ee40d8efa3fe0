package postgres

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

// Group commit of token issuance.
//
// PostgreSQL already shares one WAL flush among the transactions that
// commit at the same moment, but every transaction still costs its own
// round trip, its own backend wake-up and its own commit record, and at
// most one transaction per pooled connection is in flight. Issued opaque
// access tokens are the hottest write (one per client_credentials request,
// one per refresh), and a single INSERT each: the inserters gather the
// tokens queued while they are busy and send them as one pipelined batch
// (pgx.Batch: one round trip, one implicit transaction, one commit). Each
// caller is answered after the commit holding its row.
//
// A batch is atomic: when the server refuses one row (a duplicate hash, a
// client deleted meanwhile), the whole implicit transaction is rolled back
// and nothing of it is written. The rows are then inserted one by one, so
// that each caller gets its own answer and no caller pays for another's
// error. When the batch fails without an answer from the server (the
// connection broke), whether it committed is unknown: every caller of the
// batch gets EUNAVAILABLE (a 503 for the client, whose retry mints a fresh
// token), never a success.
//
// There is no timer: a lone insert runs at once, alone. Tokens queue only
// while every inserter is busy, which is when gathering them pays.

const (
	// inserters run batches side by side, each on its own pooled
	// connection, and leave the rest of the pool to reads and the other
	// writes. Two: one batch fills while the other commits. One gathered
	// the most at c16 but serialized every commit; four split the queue
	// into batches of three (BenchmarkInsertBatch: at c64 2 inserters
	// made 203 µs a row, 1 made 511 µs, 4 made 269 µs).
	inserters = 2
	// maxInsertBatch bounds one batch's message size and the work lost
	// to one failure.
	maxInsertBatch = 128
)

// insert is one CreateToken waiting for an inserter.
type insert struct {
	ctx  context.Context
	t    *latch.Token
	done chan error // buffered: an inserter never blocks on an answer
}

// inserterStats counts what the inserters did, for benchmarks.
type inserterStats struct {
	batches atomic.Int64
	rows    atomic.Int64
	largest atomic.Int64
}

type inserterPool struct {
	queue   chan *insert
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	stats   inserterStats
}

func (db *DB) startInserters() {
	db.ins = &inserterPool{queue: make(chan *insert), closing: make(chan struct{})}
	for range inserters {
		db.ins.wg.Add(1)
		go db.insertLoop()
	}
}

// stopInserters lets the batches in flight finish; later inserts fail with
// EUNAVAILABLE. A read-only DB (OpenReadOnly) has no inserters.
func (db *DB) stopInserters() {
	if db.ins == nil {
		return
	}
	db.ins.once.Do(func() {
		close(db.ins.closing)
		db.ins.wg.Wait()
	})
}

// queueInsert hands t to an inserter and waits for its answer or ctx. A
// caller whose ctx ends while its row is in flight gets ctx's error, and
// the row may still commit, as with any commit whose answer was lost.
func (db *DB) queueInsert(ctx context.Context, t *latch.Token) error {
	if db.ins == nil {
		return latch.Errorf(latch.EINVALID, "postgres: create token: the database was opened read-only")
	}
	in := &insert{ctx: ctx, t: t, done: make(chan error, 1)}
	select {
	case db.ins.queue <- in:
	case <-db.ins.closing:
		return latch.Errorf(latch.EUNAVAILABLE, "postgres: create token: database is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-in.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) insertLoop() {
	defer db.ins.wg.Done()
	batch := make([]*insert, 0, maxInsertBatch)
	for {
		select {
		case in := <-db.ins.queue:
			batch = append(batch[:0], in)
		case <-db.ins.closing:
			return
		}
	gather:
		for len(batch) < maxInsertBatch {
			select {
			case in := <-db.ins.queue:
				batch = append(batch, in)
			default:
				break gather
			}
		}
		db.insertBatch(batch)
		clear(batch)
	}
}

// insertBatch inserts the rows of ins in one transaction and answers each.
func (db *DB) insertBatch(ins []*insert) {
	const op = "create token"
	live := make([]*insert, 0, len(ins))
	for _, in := range ins {
		if err := in.ctx.Err(); err != nil {
			in.done <- err // its caller is gone and was told so
			continue
		}
		live = append(live, in)
	}
	if len(live) == 0 {
		return
	}
	s := &db.ins.stats
	s.batches.Add(1)
	s.rows.Add(int64(len(live)))
	for n := int64(len(live)); ; {
		l := s.largest.Load()
		if n <= l || s.largest.CompareAndSwap(l, n) {
			break
		}
	}
	// The statements must not be cancelled with one caller's context: that
	// would roll back the others' rows.
	ctx := context.WithoutCancel(live[0].ctx)
	if len(live) == 1 {
		live[0].done <- execInsertToken(ctx, db.pool, op, live[0].t)
		return
	}
	b := &pgx.Batch{}
	for _, in := range live {
		b.Queue(insertToken, insertArgs(in.t)...)
	}
	err := db.pool.SendBatch(ctx, b).Close()
	switch {
	case err == nil:
		for _, in := range live {
			in.done <- nil
		}
	case sqlState(err) != "" && !unavailable(err):
		// The server refused a row and rolled the batch back: nothing
		// of it is written. One by one, each gets its own answer.
		for _, in := range live {
			in.done <- execInsertToken(context.WithoutCancel(in.ctx), db.pool, op, in.t)
		}
	default:
		fail := latch.WithCause(latch.Errorf(latch.EUNAVAILABLE,
			"postgres: %s: the batch of %d tokens holding it failed before the server confirmed its commit: %v", op, len(live), err), err)
		for _, in := range live {
			in.done <- fail
		}
	}
}
