package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestServe_PostgreSQL runs the real binary on PostgreSQL: latch serve
// --dev --database-url, a token issued, introspected and revoked, a client
// registered and a user signed out everywhere by the CLI against the same
// database while the server runs. It needs LATCH_TEST_POSTGRES.
func TestServe_PostgreSQL(t *testing.T) {
	base := os.Getenv("LATCH_TEST_POSTGRES")
	if base == "" {
		t.Skip("set LATCH_TEST_POSTGRES=postgres://... to run latch serve on PostgreSQL")
	}
	dbURL := pgSchema(t, base)
	dir := t.TempDir()
	p := startLatch(t, dir, "--database-url", dbURL)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	tok := issueToken(t, p, dev, url.Values{"scope": {"read"}})
	if got := introspect(t, p, dev, tok); got["active"] != true {
		t.Fatalf("introspection on PostgreSQL: %v", got)
	}
	if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), dev, url.Values{"token": {tok}}); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if got := introspect(t, p, dev, tok); len(got) != 1 || got["active"] != false {
		t.Fatalf("after revocation: %v", got)
	}
	// The CLI writes to the same database while the server runs.
	c := createClient(t, dir, "--database-url", dbURL, "--format", "opaque", "--audience", "api", "--scope", "read")
	if opaque := issueToken(t, p, c, nil); !strings.HasPrefix(opaque, "lt_at_") {
		t.Fatalf("token of a client created by the CLI: %q", opaque)
	}
	out := runCLI(t, "migrate", "--database-url", dbURL)
	if !strings.Contains(out, "PostgreSQL") || strings.Contains(out, dbURL) {
		t.Fatalf("migrate output %q: it must name PostgreSQL and never print the URL", out)
	}
	if _, errOut, code := runCLICode(t, cleanEnv(), "migrate", "--database-url", "mysql://x"); code != 2 || !strings.Contains(errOut, "postgres://") {
		t.Fatalf("a non-postgres URL: exit %d, %s", code, errOut)
	}
}

// pgSchema creates a schema for one test, dropped at cleanup, and returns
// base with search_path set to it.
func pgSchema(t *testing.T, base string) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "latch_e2e_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to LATCH_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
