package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthCode_InteropNodeOpenIDClient has openid-client (npm), through
// interop/node/authcode.mjs, complete discovery, the authorization code
// flow with PKCE, a refresh (which must rotate the refresh token) and
// userinfo against a live `latch serve --dev`, for a confidential client
// (client_secret_basic) and a public one (none). The test plays the
// user's browser: it opens the authorization URL node prints, signs in on
// the real login form, and hands node the URL the server redirected to.
//
// Without node or `npm ci` in interop/node it skips, unless
// LATCH_TEST_NODE=1 (as in CI), where that is a failure.
func TestAuthCode_InteropNodeOpenIDClient(t *testing.T) {
	required := os.Getenv("LATCH_TEST_NODE") == "1"
	unavailable := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf("LATCH_TEST_NODE=1 but "+format, args...)
		}
		t.Skipf(format+" (set LATCH_TEST_NODE=1 to make this a failure)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not on PATH: %v", err)
	}
	dir, err := filepath.Abs(interopNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client", "package.json")); err != nil {
		unavailable("npm package openid-client is not installed in %s (run `npm ci` there): %v", dir, err)
	}

	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	const pw = "correct horse battery staple"
	alice := createAlice(t, dataDir, pw)
	cb := newAuthCallback(t)
	clientArgs := []string{"--grant", "authorization_code,refresh_token", "--redirect-uri", cb.URI(),
		"--scope", "openid profile read", "--audience", "api"}

	for _, tc := range []struct {
		name   string
		client testClient
	}{
		{"client_secret_basic", createClient(t, dataDir, append(clientArgs, "--first-party")...)},
		// A public client with a loopback redirect cannot be first
		// party: the browser approves it on the consent page.
		{"public_none", createClient(t, dataDir, append(clientArgs, "--auth-method", "none")...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runAuthCodeNode(t, node, dir, p, tc.client, cb, "alice", pw)
			if res.Sub != alice.ID || res.PreferredUsername != "alice" {
				t.Fatalf("node result sub %q preferred_username %q, want %q alice", res.Sub, res.PreferredUsername, alice.ID)
			}
			// Cross-check with the server what openid-client ended with.
			at := introspect(t, p, dev, res.AccessToken)
			if at["active"] != true || at["sub"] != alice.ID || at["client_id"] != tc.client.ID {
				t.Fatalf("introspection of node's refreshed access token: %v", at)
			}
			if tc.client.Secret != "" {
				// A refresh token is introspectable by its own client only.
				rt := introspect(t, p, tc.client, res.RefreshToken)
				if rt["active"] != true || rt["sub"] != alice.ID || rt["token_type"] != "refresh_token" {
					t.Fatalf("introspection of node's rotated refresh token: %v", rt)
				}
			}
		})
	}
}

// authCodeNodeResult is authcode.mjs's final line.
type authCodeNodeResult struct {
	Check             string `json:"check"`
	OK                bool   `json:"ok"`
	Error             string `json:"error"`
	AuthorizationURL  string `json:"authorization_url"`
	Sub               string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	AccessToken       string `json:"access_token"`
	RefreshToken      string `json:"refresh_token"`
	FirstRefreshToken string `json:"first_refresh_token"`
}

// runAuthCodeNode runs authcode.mjs for client c, plays the browser for
// the authorization URL it prints, and returns its final result.
func runAuthCodeNode(t *testing.T, node, dir string, p *latchProc, c testClient, cb *authCallback, username, pw string) authCodeNodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // hang guard
	cmd := exec.CommandContext(ctx, node, "authcode.mjs")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(),
		"ISSUER="+p.Issuer,
		"CLIENT_ID="+c.ID,
		"CLIENT_SECRET="+c.Secret,
		"REDIRECT_URI="+cb.URI(),
		"EXPECTED_USERNAME="+username,
	)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node authcode.mjs: %v", err)
	}
	var transcript strings.Builder
	lines := make(chan authCodeNodeResult, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			transcript.WriteString(sc.Text() + "\n")
			var r authCodeNodeResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = authCodeNodeResult{Check: "stdout", Error: "not JSON: " + sc.Text()}
			}
			select {
			case lines <- r:
			case <-ctx.Done(): // the test gave up: read on to EOF
			}
		}
	}()
	waited := false
	var waitErr error
	wait := func() error {
		if !waited {
			<-readDone // every line read before Wait closes the pipe
			waitErr, waited = cmd.Wait(), true
		}
		return waitErr
	}
	t.Cleanup(func() {
		cancel() // kills node if it is still running
		stdin.Close()
		wait()
	})
	// report stops node if it still runs and returns what everyone said.
	report := func() string {
		cancel()
		<-readDone
		return "node stdout:\n" + transcript.String() + "node stderr:\n" + stderr.String() + "latch stderr:\n" + p.Stderr.String()
	}
	// next returns the next line of node, failing on a failed check or
	// on node's exit (or the hang guard's kill) before it comes.
	next := func(want string) authCodeNodeResult {
		t.Helper()
		for r := range lines {
			if !r.OK {
				t.Fatalf("node authcode.mjs failed at %s: %s\n%s", r.Check, r.Error, report())
			}
			if r.Check == want {
				return r
			}
		}
		err := wait()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("node authcode.mjs did not print %q within its 90s hang guard\n%s", want, report())
		}
		t.Fatalf("node authcode.mjs ended (%v) without printing %q\n%s", err, want, report())
		return authCodeNodeResult{}
	}

	au, err := url.Parse(next("authorization-url").AuthorizationURL)
	if err != nil {
		t.Fatalf("authorization URL: %v", err)
	}
	q := au.Query()
	if au.Scheme+"://"+au.Host != p.Issuer || au.Path != "/oauth2/authorize" || q.Get("client_id") != c.ID ||
		q.Get("redirect_uri") != cb.URI() || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		t.Fatalf("openid-client built the authorization URL %s; want the discovered endpoint with PKCE S256 for %s", au, c.ID)
	}

	br := newAuthBrowser(t)
	br.visit(au.String(), username, pw)
	callback := cb.received(t)
	if callback.Query().Get("code") == "" || callback.Query().Get("iss") != p.Issuer {
		t.Fatalf("authorization response %s: want a code and iss %s", callback, p.Issuer)
	}
	if _, err := io.WriteString(stdin, callback.String()+"\n"); err != nil {
		t.Fatalf("writing the callback URL to node: %v\n%s", err, report())
	}
	stdin.Close()

	res := next("all")
	if err := wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node authcode.mjs: exit %d after reporting success\n%s", ee.ExitCode(), report())
		}
		t.Fatalf("node authcode.mjs: %v\n%s", err, report())
	}
	if res.FirstRefreshToken == "" || res.RefreshToken == res.FirstRefreshToken {
		t.Fatalf("node's refresh did not rotate the refresh token\n%s", report())
	}
	<-readDone
	t.Logf("node authcode.mjs:\n%s", transcript.String())
	return res
}
