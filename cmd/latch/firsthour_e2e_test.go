package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests in this file walk the traps of a new user's first hour with the
// real binary: commands run in the wrong directory, help examples, flags.

// TestCLI_MissingDataDir_IsRefusedNotCreated: a command run where there is
// no data directory says where it looked and how to point elsewhere, exits
// non-zero and creates nothing; only serve --dev and migrate create one.
func TestCLI_MissingDataDir_IsRefusedNotCreated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"client list", "", []string{"client", "list"}},
		{"client create", "", []string{"client", "create", "--audience", "api"}},
		{"client get", "", []string{"client", "get", "dev"}},
		{"user list", "", []string{"user", "list"}},
		{"user create", "correct horse battery staple\n", []string{"user", "create", "alice", "--password-stdin"}},
		{"revoke", "", []string{"revoke", "--subject", "alice"}},
		{"keys list", "", []string{"keys", "list"}},
		{"keys rotate", "", []string{"keys", "rotate"}},
		{"token inspect opaque", "lt_at_x\n", []string{"token", "inspect"}},
		{"token inspect jwt", "a.b.c\n", []string{"token", "inspect"}},
		{"token issue", "", []string{"token", "issue", "--client", "dev", "--issuer", "http://127.0.0.1:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nowhere")
			_, stderr, code := runCLIStdin(t, tc.stdin, append(tc.args, "--data-dir", dir)...)
			if code == 0 {
				t.Fatalf("exit 0 on a missing data directory; stderr %q", stderr)
			}
			for _, want := range []string{dir, "--data-dir", "LATCH_DATA_DIR", "--database-url"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q does not name %q", stderr, want)
				}
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the command created %s (stat: %v)", dir, err)
			}
		})
	}
}

// TestCLI_EmptyDataDir_IsRefused: a directory without a database (the
// wrong --data-dir) is refused too, and left without one.
func TestCLI_EmptyDataDir_IsRefused(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLICode(t, nil, "client", "list", "--data-dir", dir)
	if code == 0 || !strings.Contains(stderr, "no latch database") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "latch.db")); !os.IsNotExist(err) {
		t.Fatalf("client list created a database: %v", err)
	}
}

// TestMigrate_CreatesTheDataDir: migrate is one of the two commands that
// create a data directory; other commands then use it.
func TestMigrate_CreatesTheDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	runCLI(t, "migrate", "--data-dir", dir)
	if out := runCLI(t, "client", "list", "--data-dir", dir); !strings.Contains(out, "CLIENT ID") {
		t.Fatalf("client list after migrate: %q", out)
	}
}

// TestServe_WithoutDev_RefusesMissingDataDir: a production start does not
// invent a directory from a typo; it names the directory and migrate.
func TestServe_WithoutDev_RefusesMissingDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	kek := "LATCH_KEK=" + strings.Repeat("A", 43) + "="
	_, stderr, code := runCLICode(t, []string{kek}, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--issuer", "https://auth.example.com")
	if code == 0 || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "latch migrate") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("serve created %s: %v", dir, err)
	}
}

// TestClientUpdate_FixesARegistrationKeepingTheSecret: a client created
// without an audience is warned about at once, cannot get a token, and
// `client update --audience` fixes it without a new secret; an update
// create would refuse is refused the same way.
func TestClientUpdate_FixesARegistrationKeepingTheSecret(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	out, stderr, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--json", "--scope", "read")
	if code != 0 {
		t.Fatalf("client create: exit %d %s", code, stderr)
	}
	if !strings.Contains(stderr, "warning:") || !strings.Contains(stderr, "no audience") || !strings.Contains(stderr, "latch client update") {
		t.Errorf("client create without --audience warned %q", stderr)
	}
	var c testClient
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/token"), c, form); code != 400 || !strings.Contains(string(body), "invalid_target") {
		t.Fatalf("before update: %d %s", code, body)
	}
	out, stderr, code = runCLICode(t, nil, "client", "update", c.ID, "--data-dir", dir, "--audience", "api", "--scope", "read,write")
	if code != 0 || stderr != "" || !strings.Contains(out, "audiences:") || !strings.Contains(out, "read write") || strings.Contains(out, "client_secret:") {
		t.Fatalf("client update: exit %d\n%s\nstderr: %q", code, out, stderr)
	}
	// The server reads clients again within its client cache's TTL (1 s).
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/token"), c, form)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after update, with the old secret: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, stderr, code = runCLICode(t, nil, "client", "update", c.ID, "--data-dir", dir, "--format", "xml")
	if code == 0 || !strings.Contains(stderr, "must be jwt or opaque") {
		t.Fatalf("bad update: exit %d %s", code, stderr)
	}
	_, stderr, code = runCLICode(t, nil, "client", "update", c.ID, "--data-dir", dir)
	if code != 2 || !strings.Contains(stderr, "nothing to change") {
		t.Fatalf("empty update: exit %d %s", code, stderr)
	}
}

// TestScopeFlags_CommaAndSpaceMeanTheSame: --scope "read write",
// --scope read,write and --scope read --scope write register the same two
// scopes, and token issue reads them alike.
func TestScopeFlags_CommaAndSpaceMeanTheSame(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	for _, args := range [][]string{
		{"--scope", "read write"},
		{"--scope", "read,write"},
		{"--scope", "read, write"},
		{"--scope", "read", "--scope", "write,read"},
	} {
		out := runCLI(t, append([]string{"client", "create", "--data-dir", dir, "--audience", "api", "--json"}, args...)...)
		var v struct {
			ID    string `json:"client_id"`
			Scope string `json:"scope"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.Scope != "read write" {
			t.Errorf("%q: scope %q (%v)", args, v.Scope, err)
		}
		tok := runCLI(t, "token", "issue", "--data-dir", dir, "--client", v.ID, "--scope", "write,read", "--issuer", p.Issuer, "--json")
		if !strings.Contains(tok, `"scope": "write read"`) {
			t.Errorf("token issue --scope write,read: %s", tok)
		}
	}
	_, stderr, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--scope", `a"b`)
	if code != 2 || !strings.Contains(stderr, "--scope") {
		t.Errorf("a scope with a quote: exit %d %s", code, stderr)
	}
}
