package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"

	"github.com/latch-auth/latch/internal/pgtest"
)

// The tests in this file run `latch token` against the store of a running
// `latch serve`, and check what the server then says over HTTP.

// tokenCLI runs `latch token ...` on one store.
type tokenCLI struct {
	t     *testing.T
	p     *latchProc
	store []string // --data-dir DIR, and --database-url URL on PostgreSQL
}

func newTokenCLI(t *testing.T, extra ...string) *tokenCLI {
	dir := t.TempDir()
	p := startLatch(t, dir, extra...)
	return &tokenCLI{t: t, p: p, store: append([]string{"--data-dir", dir}, extra...)}
}

// run runs latch token SUB with the token on stdin.
func (c *tokenCLI) run(stdin string, sub string, args ...string) (string, string, int) {
	c.t.Helper()
	return runCLIStdin(c.t, stdin, append(append([]string{"token", sub}, c.store...), args...)...)
}

// revoke revokes tok through stdin and fails the test unless it exits 0.
func (c *tokenCLI) revoke(tok string) string {
	c.t.Helper()
	out, errOut, code := c.run(tok+"\n", "revoke")
	if code != 0 {
		c.t.Fatalf("token revoke: exit %d\n%s%s", code, out, errOut)
	}
	return out
}

func (c *tokenCLI) createClient(args ...string) testClient {
	c.t.Helper()
	return createClient(c.t, c.store[1], append(c.store[2:], args...)...)
}

// inactiveWithin waits for the server to introspect tok as exactly
// {"active":false}: at once for JWTs, within the token cache's read of the
// revocation log (100 ms) for opaque tokens; 2 s is the bound.
func (c *tokenCLI) inactiveWithin(rs testClient, tok string) {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := introspect(c.t, c.p, rs, tok)
		if len(got) == 1 && got["active"] == false {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the server still introspects the token as %v 2 s after `latch token revoke`", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warm introspects tok a few times, so the server caches an opaque token.
func (c *tokenCLI) warm(rs testClient, tok string) {
	c.t.Helper()
	for range 3 {
		if got := introspect(c.t, c.p, rs, tok); got["active"] != true {
			c.t.Fatalf("a fresh token introspects as %v", got)
		}
	}
}

// inspectJSON is the part of `latch token inspect --json` the tests read.
type inspectJSON struct {
	Active   bool     `json:"active"`
	Reason   string   `json:"reason"`
	Detail   string   `json:"reason_detail"`
	ClientID string   `json:"client_id"`
	Sub      string   `json:"sub"`
	Scope    string   `json:"scope"`
	Aud      []string `json:"aud"`
	Jti      string   `json:"jti"`
	Format   string   `json:"format"`
	FamilyID string   `json:"family_id"`
}

func (c *tokenCLI) inspect(tok string) (inspectJSON, int) {
	c.t.Helper()
	out, errOut, code := c.run(tok+"\n", "inspect", "--json")
	var in inspectJSON
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		c.t.Fatalf("token inspect --json: exit %d, %q (%s): %v", code, out, errOut, err)
	}
	if strings.Contains(out, tok) {
		c.t.Fatal("token inspect printed the token")
	}
	return in, code
}

// passwordGrant signs alice in with the password grant and returns the
// access and refresh tokens.
func (c *tokenCLI) passwordGrant(web testClient) (access, refresh string) {
	c.t.Helper()
	const pw = "correct horse battery staple"
	if out, errOut, code := runCLIStdin(c.t, pw+"\n", append([]string{"user", "create", "alice", "--password-stdin"}, c.store...)...); code != 0 {
		c.t.Fatalf("user create: exit %d\n%s%s", code, out, errOut)
	}
	status, body := postForm(c.t, http.DefaultClient, c.p.URL("/oauth2/token"), web,
		url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}, "scope": {"read"}})
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); status != 200 || err != nil || tr.RefreshToken == "" {
		c.t.Fatalf("password grant: %d %s", status, body)
	}
	return tr.AccessToken, tr.RefreshToken
}

func TestTokenCLI_Revoke_WhileServing(t *testing.T) { testTokenCLIRevoke(t, newTokenCLI(t)) }

func TestTokenCLI_Revoke_WhileServing_PostgreSQL(t *testing.T) {
	base := pgtest.URL(t, "latch token on PostgreSQL")
	testTokenCLIRevoke(t, newTokenCLI(t, "--database-url", pgtest.Schema(t, base, "latch_e2e")))
}

func testTokenCLIRevoke(t *testing.T, c *tokenCLI) {
	dev := testClient{ID: "dev", Secret: c.p.DevSecret(t)}

	t.Run("opaque access token", func(t *testing.T) {
		oc := c.createClient("--format", "opaque", "--audience", "api", "--scope", "read")
		tok := issueToken(t, c.p, oc, nil)
		c.warm(dev, tok)
		if out := c.revoke(tok); !strings.Contains(out, "revoked opaque access token") || !strings.Contains(out, oc.ID) {
			t.Errorf("revoke said %q", out)
		}
		c.inactiveWithin(dev, tok)
		if out := c.revoke(tok); !strings.Contains(out, "already revoked") {
			t.Errorf("revoking again said %q, want already revoked", out)
		}
	})
	t.Run("JWT access token", func(t *testing.T) {
		tok := issueToken(t, c.p, dev, url.Values{"scope": {"read"}})
		if out := c.revoke(tok); !strings.Contains(out, "revoked JWT access token") || !strings.Contains(out, "denylisted until") {
			t.Errorf("revoke said %q", out)
		}
		c.inactiveWithin(dev, tok)
		// The token is not on the command line: argv would show it in ps.
		out, errOut, code := c.run(tok+"\n", "revoke", "-", "--json")
		var r struct {
			Already bool `json:"already_revoked"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.Already {
			t.Errorf("revoking again: exit %d, %s%s; want already_revoked", code, out, errOut)
		}
	})
	t.Run("refresh token revokes its family", func(t *testing.T) {
		web := c.createClient("--first-party", "--grant", "password,refresh_token", "--format", "opaque", "--audience", "api", "--scope", "read")
		access, refresh := c.passwordGrant(web)
		c.warm(dev, access)
		if out := c.revoke(refresh); !strings.Contains(out, "family") {
			t.Errorf("revoke said %q", out)
		}
		c.inactiveWithin(dev, access)
		c.inactiveWithin(web, refresh)
		if status, body := postForm(t, http.DefaultClient, c.p.URL("/oauth2/token"), web,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); status != 400 {
			t.Errorf("the revoked refresh token still refreshes: %d %s", status, body)
		}
		if out := c.revoke(refresh); !strings.Contains(out, "already revoked") {
			t.Errorf("revoking again said %q", out)
		}
	})
}

func TestTokenCLI_Inspect_ActiveThenWhyNot(t *testing.T) {
	c := newTokenCLI(t)
	dev := testClient{ID: "dev", Secret: c.p.DevSecret(t)}
	tok := issueToken(t, c.p, dev, url.Values{"scope": {"read"}})
	in, code := c.inspect(tok)
	if code != 0 || !in.Active || in.ClientID != "dev" || in.Sub != "dev" || in.Scope != "read" ||
		len(in.Aud) != 1 || in.Aud[0] != "dev-api" || in.Jti == "" || in.Format != "jwt" || in.Reason != "" {
		t.Fatalf("inspect of a fresh token: exit %d, %+v", code, in)
	}
	// The human form, token on stdin without a trailing newline, and
	// under the other name.
	out, _, code := c.run(tok, "introspect")
	if code != 0 || !strings.Contains(out, "active:") || !strings.Contains(out, "yes") || !strings.Contains(out, "dev-api") || strings.Contains(out, tok) {
		t.Errorf("introspect: exit %d\n%s", code, out)
	}
	c.revoke(tok)
	in, code = c.inspect(tok)
	if code != 1 || in.Active || in.Reason != "revoked" || in.ClientID != "dev" || in.Jti == "" {
		t.Errorf("inspect after revoke: exit %d, %+v; want exit 1, revoked, with the claims", code, in)
	}
	out, _, code = c.run(tok+"\n", "inspect")
	if code != 1 || !strings.Contains(out, "no, revoked") {
		t.Errorf("inspect after revoke: exit %d\n%s", code, out)
	}
	// An opaque token revoked: its record is gone, its revocation logged.
	oc := c.createClient("--format", "opaque", "--audience", "api")
	opaque := issueToken(t, c.p, oc, nil)
	if in, code := c.inspect(opaque); code != 0 || !in.Active || in.Format != "opaque" || in.ClientID != oc.ID {
		t.Errorf("inspect of an opaque token: exit %d, %+v", code, in)
	}
	c.revoke(opaque)
	if in, code := c.inspect(opaque); code != 1 || in.Reason != "revoked" {
		t.Errorf("inspect of a revoked opaque token: exit %d, %+v", code, in)
	}
}

func TestTokenCLI_Issue_TheServerIntrospectsIt(t *testing.T) {
	c := newTokenCLI(t)
	dev := testClient{ID: "dev", Secret: c.p.DevSecret(t)}
	for _, format := range []string{"jwt", "opaque"} {
		cl := c.createClient("--format", format, "--audience", "api,other", "--scope", "read write")
		out, errOut, code := c.run("", "issue", "--client", cl.ID, "--scope", "read", "--audience", "other", "--issuer", c.p.Issuer)
		if code != 0 {
			t.Fatalf("%s: issue: exit %d\n%s", format, code, errOut)
		}
		tok := strings.TrimSuffix(out, "\n")
		if strings.ContainsAny(tok, " \n") || (format == "opaque") != strings.HasPrefix(tok, "lt_at_") {
			t.Fatalf("%s: issue printed %q, want the token alone", format, out)
		}
		got := introspect(t, c.p, cl, tok) // its own client: aud other is no audience of dev's
		if got["active"] != true || got["client_id"] != cl.ID || got["scope"] != "read" || got["iss"] != c.p.Issuer {
			t.Errorf("%s: the server introspects the CLI's token as %v", format, got)
		}
		if aud, _ := got["aud"].([]any); len(aud) != 1 || aud[0] != "other" {
			t.Errorf("%s: aud %v, want [other]", format, got["aud"])
		}
	}
	// --json and --ttl; the issuer from LATCH_ISSUER.
	cmd := exec.Command(latchBin, append([]string{"token", "issue", "--client", "dev", "--ttl", "30s", "--json"}, c.store...)...)
	cmd.Env = append(cleanEnv(), "LATCH_ISSUER="+c.p.Issuer)
	out, err := cmd.Output()
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err != nil || json.Unmarshal(out, &tr) != nil || tr.ExpiresIn != 30 || tr.TokenType != "Bearer" {
		t.Fatalf("issue --json --ttl 30s: %v, %s", err, out)
	}
	if got := introspect(t, c.p, dev, tr.AccessToken); got["active"] != true {
		t.Errorf("the --json token introspects as %v", got)
	}

	// Refusals: exit 1 and the reason, as the token endpoint gives it.
	noCC := c.createClient("--grant", latch.GrantTokenExchange, "--audience", "api")
	fgp := c.createClient("--token-fingerprint", "--audience", "api")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unregistered scope", []string{"--client", "dev", "--scope", "admin"}, 1, "invalid_scope"},
		{"unregistered audience", []string{"--client", "dev", "--audience", "elsewhere"}, 1, "invalid_target"},
		{"no client_credentials grant", []string{"--client", noCC.ID}, 1, "not registered for the client_credentials grant"},
		{"unknown client", []string{"--client", "nope"}, 1, "latch client list"},
		{"longer than the client's lifetime", []string{"--client", "dev", "--ttl", "11m"}, 1, "exceeds the client's access-token lifetime"},
		{"fingerprint without --json", []string{"--client", fgp.ID}, 1, "--json"},
		{"no --client", nil, 2, "--client is required"},
	} {
		out, errOut, code := c.run("", "issue", append(tc.args, "--issuer", c.p.Issuer)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
	}
	// Without --issuer: the issuer the server recorded in the data directory.
	out3, errOut, code := c.run("", "issue", "--client", "dev")
	if code != 0 {
		t.Fatalf("no --issuer: exit %d, %s", code, errOut)
	}
	if got := introspect(t, c.p, dev, strings.TrimSpace(out3)); got["active"] != true || got["iss"] != c.p.Issuer {
		t.Errorf("the token issued without --issuer introspects as %v", got)
	}
	// The fingerprint client's token with its cookie, in --json.
	out2, errOut, code := c.run("", "issue", "--client", fgp.ID, "--json", "--issuer", c.p.Issuer)
	if code != 0 || !strings.Contains(out2, `"fingerprint_cookie": "__Host-latch_fgp=`) {
		t.Errorf("fingerprint client with --json: exit %d, %s%s", code, out2, errOut)
	}
	// A token under another issuer than the server's would not be active
	// there: it is not minted.
	if out, errOut, code := c.run("", "issue", "--client", "dev", "--issuer", "https://wrong.example"); code != 2 || out != "" || !strings.Contains(errOut, c.p.Issuer) {
		t.Errorf("another issuer: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestTokenCLI_BadInput_ExitsNonZeroWithAMessage(t *testing.T) {
	c := newTokenCLI(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := token.NewSigner("someone-else", latch.ES256, key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	foreign, err := signer.Sign("at+jwt", &token.Claims{Issuer: c.p.Issuer, Subject: "dev", ClientID: "dev", ID: "j1",
		Audience: token.Audience{"dev-api"}, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := token.NewOpaque(latch.KindAccess, nil)
	typo := []byte(unknown)
	typo[20] ^= 'a' ^ 'b' // a letter for another, whatever it was: the checksum fails
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string // in stderr for revoke; in stdout for inspect
	}{
		{"garbage", "not-a-token\n", nil, 1, "malformed"},
		{"JWT signed by another key", foreign + "\n", nil, 1, "not ours"},
		{"unknown opaque token", unknown + "\n", nil, 1, "unknown"},
		{"bad checksum", string(typo) + "\n", nil, 1, "checksum"},
		{"empty stdin", "", nil, 1, "no token"},
		{"blank line", "\n  \n", nil, 1, "no token"},
		{"two lines", "a\nb\n", nil, 1, "more than one line"},
		{"oversized", strings.Repeat("a", 20000), nil, 1, "more than"},
		{"two arguments", "", []string{"a", "b"}, 2, "at most 1 argument"},
		{"garbage argument", "", []string{"%%%"}, 1, "malformed"},
	} {
		for _, sub := range []string{"revoke", "inspect"} {
			out, errOut, code := c.run(tc.stdin, sub, tc.args...)
			said := errOut
			if sub == "inspect" && code == 1 && out != "" {
				said = out
			}
			if code != tc.code || !strings.Contains(said, tc.want) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit %d and %q", sub, tc.name, code, out, errOut, tc.code, tc.want)
			}
		}
	}
	// Nothing was written by any of them.
	db := openData(t, c.store[1])
	rs, err := db.RevocationsSince(t.Context(), 0, 100)
	if err != nil || len(rs) != 0 {
		t.Errorf("refused revocations wrote %d log entries (%v)", len(rs), err)
	}
	// A Bearer prefix, as copied from a header, is fine.
	dev := testClient{ID: "dev", Secret: c.p.DevSecret(t)}
	tok := issueToken(t, c.p, dev, nil)
	if _, errOut, code := c.run("Bearer "+tok+"\r\n", "inspect"); code != 0 {
		t.Errorf("inspect of a Bearer header value: exit %d, %s", code, errOut)
	}
}
