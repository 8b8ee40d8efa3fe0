package postgres

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/pgtest"
)

func batchDB(tb testing.TB, u string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.CreateClient(context.Background(), &latch.Client{ID: "app"}); err != nil {
		tb.Fatal(err)
	}
	return db
}

func batchToken(i int, client string) *latch.Token {
	now := time.Now().Truncate(time.Microsecond)
	return &latch.Token{Hash: fmt.Appendf(nil, "hash-%08d", i), Kind: latch.KindAccess, ID: fmt.Sprint("tok-", i),
		ClientID: client, Subject: "svc", Scope: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// runInserts hands ins to insertBatch as one batch, as insertLoop does
// when they are queued together, and returns their answers.
func runInserts(db *DB, ts ...*latch.Token) []error {
	ins := make([]*insert, len(ts))
	for i, t := range ts {
		ins[i] = &insert{ctx: context.Background(), t: t, done: make(chan error, 1)}
	}
	db.insertBatch(ins)
	errs := make([]error, len(ins))
	for i, in := range ins {
		errs[i] = <-in.done
	}
	return errs
}

func isStored(t *testing.T, db *DB, tok *latch.Token) bool {
	t.Helper()
	_, err := db.Token(context.Background(), tok.Hash)
	switch latch.ErrorCode(err) {
	case "":
		return true
	case latch.ENOTFOUND:
		return false
	}
	t.Fatalf("Token: %v", err)
	return false
}

// One batch holding a duplicate hash and a token of an unknown client: the
// server rolls the whole batch back, and the rows are retried one by one,
// so each caller gets its own answer and the good rows are stored.
func TestInsertBatch_OwnFailureStaysWithItsCaller(t *testing.T) {
	db := batchDB(t, freshSchema(t))
	if err := db.CreateToken(t.Context(), batchToken(0, "app")); err != nil {
		t.Fatal(err)
	}
	ts := []*latch.Token{batchToken(1, "app"), batchToken(0, "app"), batchToken(2, "ghost"), batchToken(3, "app")}
	errs := runInserts(db, ts...)
	want := []string{"", latch.ECONFLICT, latch.EINVALID, ""}
	for i, err := range errs {
		if latch.ErrorCode(err) != want[i] {
			t.Errorf("insert %d: err = %v, want code %q", i, err, want[i])
		}
	}
	for i, want := range []bool{true, true, false, true} {
		if got := isStored(t, db, ts[i]); got != want {
			t.Errorf("token %d stored = %v, want %v", i, got, want)
		}
	}
}

// The server ends the connection a batch is sent on (pg_terminate_backend,
// as an administrator or a failover would): every caller of the batch gets
// EUNAVAILABLE, none is told its token exists, and none of the rows is
// stored. The pool then recovers on a new connection.
func TestInsertBatch_TerminatedConnection_FailsEveryInsert(t *testing.T) {
	u := freshSchema(t) + "&pool_max_conns=1"
	db := batchDB(t, u)
	ctx := t.Context()
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := c.Conn().PgConn().PID()
	c.Release()
	admin, err := pgx.Connect(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ok bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	ts := []*latch.Token{batchToken(1, "app"), batchToken(2, "app"), batchToken(3, "app")}
	for i, err := range runInserts(db, ts...) {
		if latch.ErrorCode(err) != latch.EUNAVAILABLE {
			t.Errorf("insert %d on a terminated connection: err = %v, want EUNAVAILABLE", i, err)
		}
	}
	for i, tok := range ts {
		if isStored(t, db, tok) {
			t.Errorf("token %d of the failed batch is stored", i)
		}
	}
	if err := db.CreateToken(ctx, batchToken(4, "app")); err != nil {
		t.Fatalf("CreateToken on a new connection: %v", err)
	}
}

// BenchmarkInsertBatch reports the batch sizes the inserters reach with c
// concurrent CreateToken callers: rows/batch is the mean, largest the most
// in one batch.
func BenchmarkInsertBatch(b *testing.B) {
	u := os.Getenv("LATCH_TEST_POSTGRES")
	if u == "" {
		b.Skip("set LATCH_TEST_POSTGRES=postgres://... to run the PostgreSQL batch benchmark")
	}
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprint("c", c), func(b *testing.B) {
			db := batchDB(b, pgtest.Schema(b, u, "latch_bench"))
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range c {
				wg.Go(func() {
					for i := g; i < b.N; i += c {
						if err := db.CreateToken(context.Background(), batchToken(i, "app")); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			s := &db.ins.stats
			b.ReportMetric(float64(s.rows.Load())/float64(max(s.batches.Load(), 1)), "rows/batch")
			b.ReportMetric(float64(s.largest.Load()), "largest")
		})
	}
}
