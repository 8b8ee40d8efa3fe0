// Package pgtest connects the tests of several packages to the real
// PostgreSQL of LATCH_TEST_POSTGRES, each test in a schema of its own so
// that tests running at once never meet. It is test support, as redistest
// is for Redis: only _test.go files import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// URL returns LATCH_TEST_POSTGRES, or skips tb without it; why says what
// the skipped test runs.
func URL(tb testing.TB, why string) string {
	tb.Helper()
	u := os.Getenv("LATCH_TEST_POSTGRES")
	if u == "" {
		tb.Skip("set LATCH_TEST_POSTGRES=postgres://... to run " + why)
	}
	return u
}

// Schema creates an empty schema PREFIX_<random> in the database of base,
// drops it (and everything in it) when the test ends, and returns base
// with search_path set to it, which pgx sends on every connection.
func Schema(tb testing.TB, base, prefix string) string {
	tb.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	u := WithSearchPath(tb, base, schema)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to LATCH_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return u
}

// WithSearchPath adds search_path=schema to a postgres:// URL's query.
func WithSearchPath(tb testing.TB, base, schema string) string {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("LATCH_TEST_POSTGRES must be a postgres:// URL, got %q", base)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
