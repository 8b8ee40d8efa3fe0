package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/pgtest"
)

// TestServe_PostgreSQL runs the real binary on PostgreSQL: latch serve
// --dev --database-url, a token issued, introspected and revoked, a client
// registered and a user signed out everywhere by the CLI against the same
// database while the server runs. It needs LATCH_TEST_POSTGRES.
func TestServe_PostgreSQL(t *testing.T) {
	base := pgtest.URL(t, "latch serve on PostgreSQL")
	dbURL := pgtest.Schema(t, base, "latch_e2e")
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
