package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
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

// TestTokenIssue_RefusesAnIssuerTheServerDoesNotUse: the trap of the
// tour, --issuer http://localhost:PORT for a server whose issuer is
// http://127.0.0.1:PORT, is refused with the issuer to use, instead of a
// token the server then calls inactive.
func TestTokenIssue_RefusesAnIssuerTheServerDoesNotUse(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	localhost := strings.Replace(p.Issuer, "127.0.0.1", "localhost", 1)
	out, stderr, code := runCLICode(t, nil, "token", "issue", "--data-dir", dir, "--client", "dev", "--issuer", localhost)
	if code != 2 || out != "" || !strings.Contains(stderr, "--issuer "+p.Issuer) {
		t.Fatalf("issue for %s: exit %d, stdout %q, stderr %q", localhost, code, out, stderr)
	}
}

// TestTokenInspect_AnswersWhatIntrospectionWould: a token of the server
// that ran before on the data directory under another issuer (another
// --listen) is inactive at the server now running, and token inspect says
// so too, with the reason.
func TestTokenInspect_AnswersWhatIntrospectionWould(t *testing.T) {
	dir := t.TempDir()
	p1 := startLatch(t, dir)
	dev := testClient{ID: "dev", Secret: p1.DevSecret(t)}
	tok := issueToken(t, p1, dev, url.Values{"scope": {"read"}})
	p1.Stop(t)
	p2 := startLatch(t, dir)
	if p2.Issuer == p1.Issuer {
		t.Skip("the second server got the same port")
	}
	if got := introspect(t, p2, dev, tok); got["active"] != false {
		t.Fatalf("the server introspects a token of another issuer as %v", got)
	}
	out, stderr, code := runCLIStdin(t, tok+"\n", "token", "inspect", "--data-dir", dir, "--json")
	if code != 1 || !strings.Contains(out, `"active": false`) || !strings.Contains(out, "not_ours") {
		t.Fatalf("token inspect: exit %d\n%s%s", code, out, stderr)
	}
}

// TestServe_SecondServerWithAnotherIssuerIsRefused: a second serve --dev
// on the data directory of a running one, with another --listen (so
// another issuer), is refused, naming the running one; once that stops,
// it starts.
func TestServe_SecondServerWithAnotherIssuerIsRefused(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	_, stderr, code := runCLICode(t, nil, "serve", "--dev", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "another latch serve") || !strings.Contains(stderr, p.Issuer) {
		t.Fatalf("second serve: exit %d, stderr %q", code, stderr)
	}
	p.Stop(t)
	startLatch(t, dir)
}

// testKEK is a well-formed key-encryption key for serve without --dev.
var testKEK = "LATCH_KEK=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// TestServe_ConfigErrorsComeBeforeThePortAndTheDatabase: a configuration
// error is reported even when the port is taken, and nothing is created
// for a start that cannot succeed.
func TestServe_ConfigErrorsComeBeforeThePortAndTheDatabase(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"http issuer", []string{"--issuer", "http://auth.example.com"}, "must use https"},
		{"issuer with a slash", []string{"--issuer", "https://auth.example.com/"}, "must not end with a slash"},
		{"refresh grace", []string{"--issuer", "https://auth.example.com", "--refresh-grace", "2m"}, "RefreshGrace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"serve", "--data-dir", dir, "--listen", taken.Addr().String()}, tc.args...)
			_, stderr, code := runCLICode(t, []string{testKEK}, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "in use") {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a start refused for its configuration created %v", entries)
			}
		})
	}
}

// TestServe_AddressInUse_SuggestsListen: the port of a running server (or
// anything else) is taken: the message says to choose another --listen.
func TestServe_AddressInUse_SuggestsListen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, stderr, code := runCLICode(t, nil, "serve", "--dev", "--data-dir", t.TempDir(), "--listen", taken.Addr().String())
	if code != 1 || !strings.Contains(stderr, "already in use") || !strings.Contains(stderr, "--listen") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestServe_ListenNotHostPort: a listen address that is not host:port
// says so, whichever way it was set, rather than calling it not loopback.
func TestServe_ListenNotHostPort(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{[]string{"LATCH_LISTEN=garbage"}, nil},
		{nil, []string{"--listen", "8080"}},
	} {
		_, stderr, code := runCLICode(t, tc.env, append([]string{"serve", "--dev", "--data-dir", t.TempDir()}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, "is not a host:port address") || strings.Contains(stderr, "loopback") {
			t.Errorf("%v %v: exit %d, stderr %q", tc.env, tc.args, code, stderr)
		}
	}
}

// TestRevokeSubject_ReportsWhatDied: latch revoke --subject says what it
// ended beyond login sessions, the refresh-token family with its refresh
// token and its JWT access token, in text and in --json; and latch revoke
// alice points at --subject alice.
func TestRevokeSubject_ReportsWhatDied(t *testing.T) {
	c := newTokenCLI(t)
	web := c.createClient("--first-party", "--grant", "password,refresh_token", "--audience", "api", "--scope", "read")
	access, _ := c.passwordGrant(web)
	out := runCLI(t, append([]string{"revoke", "--subject", "alice", "--json"}, c.store...)...)
	var got struct {
		Username string `json:"username"`
		Sessions *int   `json:"sessions_ended"`
		Families *int   `json:"refresh_families_revoked"`
		Opaque   *int   `json:"opaque_tokens_deleted"`
		JWTs     *int   `json:"jwts_denylisted"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got.Username != "alice" || got.Sessions == nil || *got.Sessions != 0 || got.Families == nil || *got.Families != 1 ||
		got.Opaque == nil || *got.Opaque != 1 || got.JWTs == nil || *got.JWTs != 1 {
		t.Fatalf("revoke --json: %s", out)
	}
	if in, code := c.inspect(access); code != 1 || in.Reason != "revoked" {
		t.Errorf("the access token after revoke --subject: %+v", in)
	}
	out = runCLI(t, append([]string{"revoke", "--subject", "alice"}, c.store...)...)
	for _, want := range []string{"login sessions ended:", "refresh-token families:", "JWT access tokens:", "denylisted"} {
		if !strings.Contains(out, want) {
			t.Errorf("revoke --subject said %q, without %q", out, want)
		}
	}
	_, stderr, code := runCLICode(t, nil, append([]string{"revoke", "alice"}, c.store...)...)
	if code != 2 || !strings.Contains(stderr, "latch revoke --subject alice") {
		t.Errorf("revoke alice: exit %d, %q", code, stderr)
	}
	_, stderr, code = runCLICode(t, nil, append([]string{"revoke", access}, c.store...)...)
	if code != 2 || !strings.Contains(stderr, "latch token revoke") || strings.Contains(stderr, access) {
		t.Errorf("revoke TOKEN: exit %d, %q", code, stderr)
	}
}
