package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/pgtest"
	"github.com/latch-auth/latch/internal/sqlmigrate"
	"github.com/latch-auth/latch/storetest"
)

// testURL returns LATCH_TEST_POSTGRES, or skips the test when it is unset.
func testURL(t *testing.T) string {
	t.Helper()
	return pgtest.URL(t, "the PostgreSQL store tests")
}

// freshSchema creates an empty schema latch_test_<random>, dropped when the
// test ends, and returns a connection URL whose connections use it.
func freshSchema(t *testing.T) string {
	t.Helper()
	return pgtest.Schema(t, testURL(t), "latch_test")
}

func mustOpen(t *testing.T, u string) *DB {
	t.Helper()
	db, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Registered after freshSchema's cleanup, so it runs first: the pool
	// is closed before the schema is dropped.
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) latch.Store { return mustOpen(t, freshSchema(t)) })
}

func TestMigrations_Embedded(t *testing.T) {
	ms, err := sqlmigrate.Parse(migrationFiles, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.Version != i+1 || strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %d: version %d, %d bytes of SQL", i, m.Version, len(m.SQL))
		}
	}
}

// Processes that start at once migrate one database once: the advisory
// lock serializes them, and each sees the others' work.
func TestOpen_ConcurrentMigrations(t *testing.T) {
	u := freshSchema(t)
	const n = 6
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), u) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	v, err := dbs[0].SchemaVersion(context.Background())
	if err != nil || v != latestVersion() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latestVersion())
	}
	var rows int
	if err := dbs[0].pool.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != latestVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", rows, latestVersion())
	}
}

// Opening a migrated database again applies nothing and succeeds.
func TestOpen_Twice(t *testing.T) {
	u := freshSchema(t)
	mustOpen(t, u)
	db := mustOpen(t, u)
	if v, err := db.SchemaVersion(context.Background()); err != nil || v != latestVersion() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latestVersion())
	}
}

// A database migrated by a newer latch is refused, not written to.
func TestOpen_NewerSchema(t *testing.T) {
	u := freshSchema(t)
	db := mustOpen(t, u)
	if _, err := db.pool.Exec(context.Background(),
		`INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')`, latestVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), u)
	if latch.ErrorCode(err) != latch.EUNAVAILABLE || !strings.Contains(latch.ErrorMessage(err), "upgrade latch") {
		t.Fatalf("Open of a newer schema: err = %v, want EUNAVAILABLE saying to upgrade", err)
	}
}

// A malformed URL is EINVALID and its text (which may hold a password) is
// not repeated.
func TestOpen_BadURL(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:s3cret@%zz")
	if latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q repeats the password", err)
	}
}

// A server that does not answer is EUNAVAILABLE, with the cause in the
// chain.
func TestOpen_Unreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens there, the connection is refused
	// at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Open(ctx, "postgres://latch@127.0.0.1:1/latch?sslmode=disable&connect_timeout=5")
	if latch.ErrorCode(err) != latch.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE", err)
	}
	var le *latch.Error
	if !errors.As(err, &le) {
		t.Fatalf("err %v is not a *latch.Error", err)
	}
}

// A database the server does not have is EINVALID (fix the URL), not
// EUNAVAILABLE (retry later).
func TestOpen_NoSuchDatabase(t *testing.T) {
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/latch_test_no_such_database"
	_, err = Open(context.Background(), u.String())
	msg := fmt.Sprint(err)
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(msg, `database "latch_test_no_such_database" does not exist`) ||
		!strings.Contains(msg, "createdb") || strings.Contains(msg, "refused") || strings.Count(msg, u.Port()) != 1 {
		t.Fatalf("err = %v, want EINVALID saying, once, that the database does not exist", err)
	}
}

// A role the server does not know is named as such, once.
func TestOpen_NoSuchRole(t *testing.T) {
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("latch_test_no_such_role")
	_, err = Open(context.Background(), u.String())
	msg := fmt.Sprint(err)
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(msg, `refused role "latch_test_no_such_role"`) || strings.Count(msg, u.Port()) != 1 {
		t.Fatalf("err = %v, want EINVALID naming the role once", err)
	}
}
