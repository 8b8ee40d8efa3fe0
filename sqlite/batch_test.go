package sqlite

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// batchClient creates client "app" and user "u" for the batch tests.
func batchClient(tb testing.TB, db *DB) {
	tb.Helper()
	ctx := context.Background()
	if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
		tb.Fatal(err)
	}
	if err := db.CreateUser(ctx, &latch.User{ID: "u", Username: "user"}); err != nil {
		tb.Fatal(err)
	}
}

func accessToken(i int, client string) *latch.Token {
	now := time.Now()
	return &latch.Token{Hash: hashOf(i), Kind: latch.KindAccess, ID: fmt.Sprint("tok-", i), ClientID: client,
		Subject: "svc", Scope: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// insertWrite is a write the committer runs: insert t, as CreateToken does.
func insertWrite(db *DB, t *latch.Token) *write {
	return &write{ctx: context.Background(), op: "create token", done: make(chan error, 1),
		fn: func(ctx context.Context, tx *sql.Tx) error {
			return execInsertToken(ctx, tx.StmtContext(ctx, db.stmts.Load().createToken), "create token", t)
		}}
}

// stored reports whether a token with hash is in the file, read through a
// second, fresh connection.
func stored(t *testing.T, db *DB, hash []byte) bool {
	t.Helper()
	_, err := db.Token(t.Context(), hash)
	switch latch.ErrorCode(err) {
	case "":
		return true
	case latch.ENOTFOUND:
		return false
	}
	t.Fatalf("Token: %v", err)
	return false
}

// runBatch hands ws to the committer as one transaction, as commitLoop does
// when they are queued together, and returns their answers.
func runBatch(t *testing.T, db *DB, ws ...*write) []error {
	t.Helper()
	if _, err := db.ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	db.commit(ws)
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = <-w.done
	}
	return errs
}

// TestBatch_OwnFailureStaysWithItsCaller: in one transaction, a duplicate
// hash and an unknown client are rolled back to their savepoints and
// answered with their own errors; the writes around them commit.
func TestBatch_OwnFailureStaysWithItsCaller(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	if err := db.CreateToken(t.Context(), accessToken(0, "app")); err != nil {
		t.Fatal(err)
	}
	ws := []*write{
		insertWrite(db, accessToken(1, "app")),
		insertWrite(db, accessToken(0, "app")), // exists
		insertWrite(db, accessToken(2, "ghost")),
		insertWrite(db, accessToken(3, "app")),
	}
	errs := runBatch(t, db, ws...)
	want := []string{"", latch.ECONFLICT, latch.EINVALID, ""}
	for i, err := range errs {
		if latch.ErrorCode(err) != want[i] {
			t.Errorf("write %d: err = %v, want code %q", i, err, want[i])
		}
	}
	for i, want := range []bool{true, true, false, true} {
		if got := stored(t, db, hashOf(i)); got != want {
			t.Errorf("token %d stored = %v, want %v", i, got, want)
		}
	}
}

// TestBatch_FailedCommit_FailsEveryWrite makes COMMIT itself fail, for
// real: a deferred foreign key that one write leaves violated is checked
// only at COMMIT. Every write of the batch is then answered EUNAVAILABLE
// (503 with Retry-After: a retry is safe) and none is on disk, and the
// writer connection is usable again afterwards.
func TestBatch_FailedCommit_FailsEveryWrite(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	if _, err := db.ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	poison := &write{ctx: context.Background(), op: "poison", done: make(chan error, 1),
		fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
				return err
			}
			return execInsertToken(ctx, tx.StmtContext(ctx, db.stmts.Load().createToken), "poison", accessToken(9, "ghost"))
		}}
	errs := runBatch(t, db, insertWrite(db, accessToken(1, "app")), poison, insertWrite(db, accessToken(2, "app")))
	for i, err := range errs {
		if latch.ErrorCode(err) != latch.EUNAVAILABLE {
			t.Errorf("write %d: err = %v, want EUNAVAILABLE", i, err)
		}
	}
	for _, i := range []int{1, 2, 9} {
		if stored(t, db, hashOf(i)) {
			t.Errorf("token %d of the failed batch is stored", i)
		}
	}
	if err := db.CreateToken(t.Context(), accessToken(3, "app")); err != nil {
		t.Fatalf("CreateToken after the failed commit: %v", err)
	}
	if !stored(t, db, hashOf(3)) {
		t.Fatal("token written after the failed commit is not stored")
	}
}

// TestBatch_DiskFullMidBatch fills the database for real (max_page_count
// caps the file at its current size) while a batch runs: some writes fit in
// free space of existing pages, the large one cannot. SQLite may roll back
// just that statement or the whole transaction; either way every write
// answered nil must be on disk and every write answered with an error must
// not, and the errors are server errors (5xx), not the client's fault.
func TestBatch_DiskFullMidBatch(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	if _, err := db.ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.writer.QueryRowContext(t.Context(), "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.ExecContext(t.Context(), fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	huge := accessToken(2, "app")
	huge.Scope = []string{strings.Repeat("s", 64<<10)} // needs overflow pages
	ws := []*write{insertWrite(db, accessToken(1, "app")), insertWrite(db, huge), insertWrite(db, accessToken(3, "app"))}
	errs := runBatch(t, db, ws...)
	if _, err := db.writer.ExecContext(t.Context(), "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if errs[1] == nil {
		t.Fatal("the write that needs new pages succeeded on a full database")
	}
	for i, err := range errs {
		if c := latch.ErrorCode(err); err != nil && c != latch.EUNAVAILABLE && c != latch.EINTERNAL {
			t.Errorf("write %d: err = %v, want a server error (EUNAVAILABLE or EINTERNAL)", i, err)
		}
		if got, want := stored(t, db, hashOf(i+1)), err == nil; got != want {
			t.Errorf("write %d answered %v but stored = %v", i, err, got)
		}
	}
	if err := db.CreateToken(t.Context(), accessToken(4, "app")); err != nil {
		t.Fatalf("CreateToken once there is room again: %v", err)
	}
}

// TestBatch_RolledBackTransaction_FailsTheWritesBefore: when SQLite rolls
// the whole transaction back under a write (as it may on SQLITE_FULL or
// IOERR), the writes run before it in the batch are gone too: they must not
// be acknowledged.
func TestBatch_RolledBackTransaction_FailsTheWritesBefore(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	abort := &write{ctx: context.Background(), op: "abort", done: make(chan error, 1),
		fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "ROLLBACK"); err != nil {
				return err
			}
			return latch.Errorf(latch.EINTERNAL, "sqlite: abort: transaction rolled back")
		}}
	errs := runBatch(t, db, insertWrite(db, accessToken(1, "app")), abort, insertWrite(db, accessToken(2, "app")))
	for i, err := range errs {
		if err == nil {
			t.Errorf("write %d acknowledged in a rolled-back transaction", i)
		}
	}
	if latch.ErrorCode(errs[0]) != latch.EUNAVAILABLE || latch.ErrorCode(errs[2]) != latch.EUNAVAILABLE {
		t.Errorf("errs = %v, want EUNAVAILABLE for the others", errs)
	}
	if stored(t, db, hashOf(1)) || stored(t, db, hashOf(2)) {
		t.Error("a write of the rolled-back batch is stored")
	}
	if err := db.CreateToken(t.Context(), accessToken(3, "app")); err != nil {
		t.Fatalf("CreateToken afterwards: %v", err)
	}
}

// TestBatch_Close_AnswersEveryWrite closes the database while writers are
// queued: every one is answered, nil (and stored) or an error.
func TestBatch_Close_AnswersEveryWrite(t *testing.T) {
	path := t.TempDir() + "/latch.db"
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	batchClient(t, db)
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.CreateToken(context.Background(), accessToken(i, "app"))
		}()
	}
	db.Close()
	wg.Wait()
	re, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	for i, err := range errs {
		if got := stored(t, re, hashOf(i)); got != (err == nil) {
			t.Errorf("write %d answered %v but stored = %v", i, err, got)
		}
	}
}

// BenchmarkBatch reports the transaction sizes group commit reaches with
// c concurrent writers (synchronous=FULL): writes/commit is the mean,
// largest the most in one transaction.
func BenchmarkBatch(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprint("c", c), func(b *testing.B) {
			db := mustOpenMigrated(b, options{synchronous: "FULL"})
			batchClient(b, db)
			ctx := context.Background()
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < b.N; i += c {
						if err := db.CreateToken(ctx, accessToken(i, "app")); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			commits, writes := db.stats.commits.Load(), db.stats.writes.Load()
			b.ReportMetric(float64(writes)/float64(max(commits, 1)), "writes/commit")
			b.ReportMetric(float64(db.stats.largest.Load()), "largest")
		})
	}
}

// purgeRows is how many expired tokens BenchmarkCreateToken_DuringPurge
// seeds; the figure is 1,000,000 (about a minute of seeding).
var purgeRows = flag.Int("purge-rows", 50_000, "BenchmarkCreateToken_DuringPurge: expired tokens to seed")

// BenchmarkCreateToken_DuringPurge measures what a purge of expired rows
// does to writers (run it with -benchtime 4000x): 16 goroutines issue
// tokens on a store holding -purge-rows expired tokens, with and without
// PurgeExpired running beside them. The expired tokens' expiries are
// spread over two days in an order unrelated to their hashes, as in a
// real store: expiry order is then random order on the primary key and
// every other index, which is what makes deleting them expensive. It
// reports the writers' p50 and p99, the rows the purge removed while they
// ran (purged) and, if it finished first, how long it took (purge-ms; 0
// when it was still running and was stopped with the writers).
func BenchmarkCreateToken_DuringPurge(b *testing.B) {
	const c = 16
	// Seeded once, copied for every run: each sub-benchmark runs twice
	// (b.N = 1 first), and seeding a million rows takes minutes here.
	template := filepath.Join(b.TempDir(), "seeded.db")
	{
		db, err := open(context.Background(), template, options{synchronous: "NORMAL"})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		batchClient(b, db)
		ctx := context.Background()
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		old := time.Now().Add(-72 * time.Hour)
		for i := range *purgeRows {
			t := accessToken(10_000_000+i, "app")
			// i*7919 mod a prime larger than any row count: a
			// permutation of the expiries unrelated to hash order.
			t.IssuedAt = old
			t.ExpiresAt = old.Add(time.Duration(i*7919%2_000_003) * 86 * time.Millisecond)
			if err := execInsertToken(ctx, tx.StmtContext(ctx, db.stmts.Load().createToken), "seed", t); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil { // checkpoints the WAL into the file
			b.Fatal(err)
		}
	}
	for _, purge := range []bool{false, true} {
		b.Run(fmt.Sprint("purge=", purge), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "latch.db")
			seeded, err := os.ReadFile(template)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(path, seeded, 0o600); err != nil {
				b.Fatal(err)
			}
			db, err := open(context.Background(), path, options{synchronous: "FULL"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			ctx := context.Background()
			var (
				mu      sync.Mutex
				lat     = make([]time.Duration, 0, b.N)
				wg      sync.WaitGroup
				purgeMS float64
				purged  int64
				done    = make(chan struct{})
			)
			pctx, stop := context.WithCancel(ctx)
			b.ResetTimer()
			if purge {
				go func() {
					defer close(done)
					start := time.Now()
					n, err := db.PurgeExpired(pctx, time.Now())
					purged = n
					if err != nil && pctx.Err() == nil {
						b.Error(err)
					}
					if err == nil {
						purgeMS = float64(time.Since(start).Milliseconds())
					}
				}()
			} else {
				close(done)
			}
			for g := range c {
				wg.Go(func() {
					for i := g; i < b.N; i += c {
						start := time.Now()
						if err := db.CreateToken(ctx, accessToken(i, "app")); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(start)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			stop()
			<-done
			if purge && purged == 0 {
				b.Fatal("the purge removed nothing while the writers ran")
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(purgeMS, "purge-ms")
			b.ReportMetric(float64(purged), "purged")
		})
	}
}

// A purge of more rows than one step takes them all, in steps that commit
// through the group committer beside other writes, and leaves the live
// rows alone.
func TestPurgeExpired_ManySteps_LeavesLiveRows(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "NORMAL"})
	batchClient(t, db)
	ctx := context.Background()
	const expired, live = 3*purgeChunk + 5, 40
	old := time.Now().Add(-48 * time.Hour)
	for i := range expired {
		tok := accessToken(i, "app")
		tok.IssuedAt, tok.ExpiresAt = old, old.Add(time.Duration(i)*time.Minute)
		if err := db.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range live { // concurrent writers, so steps share transactions
		wg.Go(func() {
			if err := db.CreateToken(ctx, accessToken(expired+i, "app")); err != nil {
				t.Error(err)
			}
		})
	}
	n, err := db.PurgeExpired(ctx, time.Now())
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n != expired {
		t.Fatalf("PurgeExpired = %d, want %d", n, expired)
	}
	var left int
	if err := db.reader.QueryRowContext(ctx, "SELECT count(*) FROM tokens").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != live {
		t.Fatalf("%d tokens left, want the %d live ones", left, live)
	}
}

// A WAL that cannot be synced fails the batch that waited for it with
// EUNAVAILABLE (its write was committed but is not acknowledged), and
// every later write is refused: after a failed fsync a later one could
// succeed over pages the kernel dropped.
func TestWALSyncFails_BatchUnavailable_LaterWritesRefused(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	ctx := context.Background()
	if err := db.CreateToken(ctx, accessToken(1, "app")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	// The syncer finds no WAL under its path: it cannot sync it.
	if err := os.Remove(db.path + "-wal"); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		err := db.CreateToken(ctx, accessToken(i, "app"))
		if latch.ErrorCode(err) != latch.EUNAVAILABLE {
			t.Fatalf("write %d after the WAL sync failed: %v, want EUNAVAILABLE", i, err)
		}
	}
}

// BenchmarkBatch_SyncBeside compares, in one run, group commit with the
// fsync inside each COMMIT and with the syncer's fsync beside the next
// batch (walsync.go): two stores in one directory, c writers each, in
// alternating rounds of 400 writes, so that the disk's and the machine's
// changing load weigh on both alike. b.N is the writes per store; the
// ratio is the median over rounds of the syncer's throughput over the
// inline fsync's.
//
//	go test ./sqlite/ -run '^$' -bench SyncBeside -benchtime 8000x
func BenchmarkBatch_SyncBeside(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprint("c", c), func(b *testing.B) {
			dbs := [2]*DB{
				mustOpenMigrated(b, options{synchronous: "FULL", syncInCommit: true}),
				mustOpenMigrated(b, options{synchronous: "FULL"}),
			}
			for _, db := range dbs {
				batchClient(b, db)
			}
			ctx := context.Background()
			const round = 400
			var (
				elapsed [2]time.Duration
				ratios  []float64
				next    int
			)
			runRound := func(db *DB, base, n int) time.Duration {
				var wg sync.WaitGroup
				start := time.Now()
				for g := range c {
					wg.Go(func() {
						for i := g; i < n; i += c {
							if err := db.CreateToken(ctx, accessToken(base+i, "app")); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				return time.Since(start)
			}
			b.ResetTimer()
			for r := 0; next < b.N; r++ {
				n := min(round, b.N-next)
				var d [2]time.Duration
				first := r % 2
				d[first] = runRound(dbs[first], next, n)
				d[1-first] = runRound(dbs[1-first], next, n)
				elapsed[0] += d[0]
				elapsed[1] += d[1]
				ratios = append(ratios, d[0].Seconds()/d[1].Seconds())
				next += n
			}
			b.StopTimer()
			slices.Sort(ratios)
			b.ReportMetric(float64(elapsed[0].Microseconds())/float64(b.N), "inline-µs/write")
			b.ReportMetric(float64(elapsed[1].Microseconds())/float64(b.N), "beside-µs/write")
			b.ReportMetric(ratios[len(ratios)/2], "throughput-ratio")
			for i, db := range dbs {
				name := [2]string{"inline", "beside"}[i]
				b.ReportMetric(float64(db.stats.writes.Load())/float64(max(db.stats.commits.Load(), 1)), name+"-writes/commit")
			}
		})
	}
}

// TestBatch_SustainedWrites_WALRewinds: 16 writers that never pause, so
// the committer always has a transaction open, and a reader beside them;
// the WAL must still be rewound, so its file stays within walSizeLimit.
// Before restartWAL it grew with every write (about 10 KiB a token: 575
// MB after 10 s of load over HTTP).
func TestBatch_SustainedWrites_WALRewinds(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("writes 3 × restartEvery tokens: skipped with -short and -race (44 s there, and it tests volume, not concurrency)")
	}
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	batchClient(t, db)
	ctx := t.Context()
	const writers = 16
	n := 3*restartEvery + walSizeLimit/(10<<10) // more than the limit holds at ~10 KiB a token
	var next atomic.Int64
	var wg sync.WaitGroup
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // a reader, as introspection would be
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				db.Token(ctx, hashOf(int(next.Load())/2))
			}
		}
	}()
	defer func() { close(stop); <-stopped }() // before the cleanup closes db
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				if err := db.CreateToken(ctx, accessToken(i, "app")); err != nil {
					t.Errorf("CreateToken %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	fi, err := os.Stat(db.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > walSizeLimit {
		t.Errorf("after %d writes the WAL is %d MiB, over the %d MiB it is truncated to when rewound: it was never rewound",
			n, fi.Size()>>20, walSizeLimit>>20)
	}
	t.Logf("%d writes, WAL %d MiB", n, fi.Size()>>20)
}
