package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/sqlmigrate"
	"github.com/latch-auth/latch/storetest"
	sqlitedrv "modernc.org/sqlite"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store { return mustOpenMigrated(t, options{synchronous: "FULL"}) })
}

func mustOpen(tb testing.TB, o options) *DB {
	tb.Helper()
	db, err := open(context.Background(), filepath.Join(tb.TempDir(), "latch.db"), o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func mustOpenMigrated(tb testing.TB, o options) *DB {
	tb.Helper()
	db := mustOpen(tb, o)
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db
}

func mustSchemaVersion(tb testing.TB, db *DB) int {
	tb.Helper()
	v, err := db.SchemaVersion(context.Background())
	if err != nil {
		tb.Fatalf("SchemaVersion: %v", err)
	}
	return v
}

func TestMigrations_Embedded(t *testing.T) {
	if len(migrations) == 0 {
		t.Fatal("no embedded migrations")
	}
	for i, m := range migrations {
		if m.Version != i+1 || m.SQL == "" {
			t.Errorf("migration %d = {%d %q, %d bytes}", i, m.Version, m.Name, len(m.SQL))
		}
	}
	bad := fstest.MapFS{
		"migrations/0001_init.sql": {Data: []byte("SELECT 1")},
		"migrations/0003_gap.sql":  {Data: []byte("SELECT 1")},
	}
	if _, err := sqlmigrate.Parse(bad, "sqlite"); err == nil {
		t.Error("parseMigrations accepted a gap in the numbering")
	}
}

func TestMigrate_Fresh(t *testing.T) {
	db := mustOpen(t, options{synchronous: "FULL"})
	if v := mustSchemaVersion(t, db); v != 0 {
		t.Fatalf("SchemaVersion of a new file = %d, want 0", v)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v := mustSchemaVersion(t, db); v != latestVersion() {
		t.Fatalf("SchemaVersion after Migrate = %d, want %d", v, latestVersion())
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after Migrate: %v", err)
	}
}

func TestMigrate_ReRun_IsNoOp(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	if err := db.CreateClient(t.Context(), &latch.Client{ID: "app"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	if _, err := db.Client(t.Context(), "app"); err != nil {
		t.Fatalf("Client after re-running Migrate: %v", err)
	}
	var n int
	if err := db.reader.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != latestVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", n, latestVersion())
	}
}

// Two processes (here: two DBs on one file) running `latch migrate` at once
// must both succeed and apply each migration once.
func TestMigrate_Concurrent_AppliesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	var dbs []*DB
	for range 4 {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			if err := db.Migrate(t.Context()); err != nil {
				t.Errorf("Migrate #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var n int
	if err := dbs[0].reader.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != latestVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", n, latestVersion())
	}
}

func TestUnmigrated_MethodsSayRunLatchMigrate(t *testing.T) {
	db := mustOpen(t, options{synchronous: "FULL"})
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Ping":      func() error { return db.Ping(ctx) },
		"Client":    func() error { _, err := db.Client(ctx, "x"); return err },
		"Token":     func() error { _, err := db.Token(ctx, []byte("x")); return err },
		"IsRevoked": func() error { _, err := db.IsRevoked(ctx, "i", "j"); return err },
		"CreateKey": func() error { return db.CreateKey(ctx, &latch.Key{ID: "k"}) },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "run `latch migrate`") {
			t.Errorf("%s on an unmigrated database: err = %v, want the `latch migrate` hint", name, err)
		}
		if errors.Is(err, latch.ErrNotFound) {
			t.Errorf("%s on an unmigrated database looks like not found: %v", name, err)
		}
	}
	// Another process migrates; this DB notices without a restart.
	other, err := Open(ctx, db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after another process migrated: %v", err)
	}
}

func TestNewerSchema_IsRefused(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	if _, err := db.writer.Exec(`INSERT INTO schema_migrations VALUES (?, 'future', 0)`, latestVersion()+1); err != nil {
		t.Fatal(err)
	}
	again, err := Open(t.Context(), db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for _, err := range []error{again.Ping(t.Context()), again.Migrate(t.Context())} {
		if err == nil || !strings.Contains(err.Error(), "upgrade latch") {
			t.Errorf("err = %v, want the upgrade hint", err)
		}
	}
}

func TestOpen_CreatesPrivateFileAndDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "nested", "latch.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Dir(path): 0o700 | os.ModeDir,
		path:               0o600,
		path + "-wal":      0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestOpen_PragmasApply(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	for _, pool := range []*sql.DB{db.writer, db.reader} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": fmt.Sprint(busyTimeoutMS),
		} {
			var got string
			if err := pool.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
	}
	if _, err := db.reader.Exec(`DELETE FROM tokens`); err == nil {
		t.Error("the reader pool accepted a write")
	}
}

func TestQueryPlans_UseIndexes(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	for _, tc := range []struct {
		q, want string
		args    []any
	}{
		{selectToken, "USING PRIMARY KEY (hash=?)", []any{[]byte("h")}},
		{selectIsRevoked, "USING COVERING INDEX revocations_jwt (issuer=? AND jti=?)", []any{"i", "j"}},
		{selectClient, "USING INDEX sqlite_autoindex_clients_1 (id=?)", []any{"c"}},
		{selectRefresh, "SEARCH t USING PRIMARY KEY (hash=?); SEARCH f USING PRIMARY KEY (id=?)", []any{[]byte("h")}},
		{`DELETE FROM tokens WHERE family_id IN (SELECT id FROM families WHERE user_id = ?)`,
			"INDEX tokens_family_id (family_id=?)", []any{"u"}},
	} {
		q, want := tc.q, tc.want
		rows, err := db.reader.Query("EXPLAIN QUERY PLAN "+q, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), want) {
			t.Errorf("plan of %q = %q, want %q", q, plan, want)
		}
	}
}

func TestCreateToken_UnknownClient_IsInvalid(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	err := db.CreateToken(t.Context(), &latch.Token{Hash: hashOf(1), ClientID: "ghost", ExpiresAt: time.Now()})
	if latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("CreateToken for an unknown client: err = %v, want EINVALID", err)
	}
}

func TestRevoke_Invalid(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	for _, r := range []*latch.Revocation{
		{Kind: "session"},
		{Kind: latch.RevokeJWT, Issuer: "https://issuer.example"},
		{Kind: latch.RevokeOpaque},
	} {
		if err := db.Revoke(t.Context(), r); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("Revoke(%+v): err = %v, want EINVALID", r, err)
		}
	}
	if _, err := db.RevocationsSince(t.Context(), 0, 0); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("RevocationsSince(limit 0): err = %v, want EINVALID", err)
	}
}

// The CLI holds the write lock: the server's write waits, but no longer
// than its request's deadline, and reads carry on meanwhile (WAL).
func TestWriteLockedByAnotherProcess_ReadsProceedWritesHonourDeadline(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	ctx := t.Context()
	if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", dsn(db.Path(), options{synchronous: "FULL"}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	if _, err := db.Client(ctx, "app"); err != nil {
		t.Errorf("read while another process holds the write lock: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = db.CreateToken(dctx, &latch.Token{Hash: hashOf(1), ClientID: "app", ExpiresAt: time.Now()})
	if err == nil {
		t.Fatal("CreateToken succeeded while another process held the write lock")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CreateToken waited %v past its 200ms deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) && latch.ErrorCode(err) != latch.EUNAVAILABLE {
		t.Errorf("err = %v (code %s), want a deadline or EUNAVAILABLE", err, latch.ErrorCode(err))
	}
	tx.Rollback()
	if err := db.CreateToken(ctx, &latch.Token{Hash: hashOf(2), ClientID: "app", ExpiresAt: time.Now()}); err != nil {
		t.Errorf("CreateToken after the lock was released: %v", err)
	}
}

// A token acknowledged by CreateToken is in the file: reopening without a
// clean Close (the pools are abandoned, as after a crash) still finds it.
func TestCreateToken_Acknowledged_IsInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(t.Context(), &latch.Client{ID: "app"}); err != nil {
		t.Fatal(err)
	}
	tok := &latch.Token{Hash: hashOf(7), ClientID: "app", ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	// Copy the database and its WAL as they are on disk right now, the way
	// a crash would leave them, and open the copy.
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "copy.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cp, err := Open(t.Context(), filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.Token(t.Context(), tok.Hash); err != nil {
		t.Fatalf("Token in the crash copy: %v", err)
	}
}

func hashOf(i int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(b[:])
	return h[:]
}

// seedTokens fills db with n tokens of client "app" in batches.
func seedTokens(b *testing.B, db *DB, n int) {
	b.Helper()
	ctx := context.Background()
	if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	const batch = 5000
	for i := 0; i < n; i += batch {
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for j := i; j < min(i+batch, n); j++ {
			if _, err := tx.Exec(insertToken, hashOf(j), "access", fmt.Sprint("tok-", j), "app",
				"user", `["read","write"]`, `["https://api.example.com"]`, "fam", now.UnixMicro(),
				now.Add(time.Hour).UnixMicro(), nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToken is introspection's store cost: one token among 100k.
func BenchmarkToken(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	const n = 100_000
	seedTokens(b, db, n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := db.Token(ctx, hashOf(i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkToken_Parallel(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	const n = 100_000
	seedTokens(b, db, n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.Token(ctx, hashOf(i%n)); err != nil {
				b.Error(err)
				return
			}
			i += 7919
		}
	})
}

// BenchmarkIsRevoked is the denylist check: one (iss, jti) among 100k
// entries, half of the lookups hits.
func BenchmarkIsRevoked(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	ctx := context.Background()
	const n = 100_000
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO revocations (kind, issuer, jti, expires_at, revoked_at)
			VALUES ('jwt', 'https://issuer.example', ?, 0, 0)`, fmt.Sprint("jti-", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	jtis := make([]string, 2*n)
	for i := range jtis {
		jtis[i] = fmt.Sprint("jti-", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		j := i % len(jtis)
		got, err := db.IsRevoked(ctx, "https://issuer.example", jtis[j])
		if err != nil {
			b.Fatal(err)
		}
		if got != (j < n) {
			b.Fatalf("IsRevoked(jti-%d) = %v", j, got)
		}
		i += 7919
	}
}

// BenchmarkCreateToken is the write of issuing an opaque token, with the
// durable setting (FULL: fsync per commit) and NORMAL (fsync at checkpoint,
// which can lose the last commits on power loss) beside it.
//
// The fdatasync variant is FULL with modernc.org/sqlite.Fdatasync(true), a
// process-wide switch that skips flushing file timestamps and is just as
// durable; cmd/latch may turn it on.
func BenchmarkCreateToken(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL", "FULL+fdatasync"} {
		b.Run("synchronous="+mode, func(b *testing.B) {
			if m, ok := strings.CutSuffix(mode, "+fdatasync"); ok {
				prev, err := sqlitedrv.Fdatasync(true)
				if err != nil {
					b.Skip(err)
				}
				b.Cleanup(func() { sqlitedrv.Fdatasync(prev) })
				mode = m
			}
			db := mustOpenMigrated(b, options{synchronous: mode})
			ctx := context.Background()
			if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				tok := &latch.Token{
					Hash: hashOf(i), Kind: latch.KindAccess, ID: fmt.Sprint("tok-", i), ClientID: "app",
					Subject: "user", Scope: []string{"read", "write"}, Audience: []string{"https://api.example.com"},
					IssuedAt: now, ExpiresAt: now.Add(time.Hour),
				}
				if err := db.CreateToken(ctx, tok); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCreateToken_Parallel shows the single writer under concurrent
// issuance: commits queue on one connection.
func BenchmarkCreateToken_Parallel(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+mode, func(b *testing.B) {
			db := mustOpenMigrated(b, options{synchronous: mode})
			ctx := context.Background()
			if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			var mu sync.Mutex
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					tok := &latch.Token{Hash: hashOf(i), Kind: latch.KindAccess, ID: "t", ClientID: "app",
						IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
					if err := db.CreateToken(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkClient(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	ctx := context.Background()
	for i := range 1000 {
		c := &latch.Client{
			ID: fmt.Sprint("client-", i), Name: "Client", SecretHash: hashOf(i),
			AuthMethod: latch.AuthSecretBasic, GrantTypes: []string{latch.GrantClientCredentials},
			Scopes: []string{"read", "write"}, Audiences: []string{"https://api.example.com"},
			RedirectURIs: []string{"https://app.example.com/cb"}, AccessTokenFormat: latch.FormatJWT,
			CreatedAt: time.Now(), UpdatedAt: time.Now(),
		}
		if err := db.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint("client-", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := db.Client(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
