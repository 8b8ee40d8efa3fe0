package main

import (
	"net/url"
	"testing"
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
	node, dir := nodeInterop(t, "openid-client")

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
	f := startNodeFlow(t, node, dir, "authcode.mjs", []string{
		"ISSUER=" + p.Issuer,
		"CLIENT_ID=" + c.ID,
		"CLIENT_SECRET=" + c.Secret,
		"REDIRECT_URI=" + cb.URI(),
		"EXPECTED_USERNAME=" + username,
	}, func() string { return "latch stderr:\n" + p.Stderr.String() })

	var first authCodeNodeResult
	f.next("authorization-url", &first)
	au, err := url.Parse(first.AuthorizationURL)
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
	// The same checks as the Go clients' flow (code, iss, and the state
	// openid-client put in the URL); node checks them again itself.
	callback := cb.received(t)
	authResponse(t, callback, p.Issuer, q.Get("state"))
	f.send(callback.String())

	var res authCodeNodeResult
	f.next("all", &res)
	f.finish()
	if res.FirstRefreshToken == "" || res.RefreshToken == res.FirstRefreshToken {
		t.Fatalf("node's refresh did not rotate the refresh token\n%s", f.report())
	}
	return res
}
