package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/internal/browsertest"
)

// newChromium starts headless Chromium for one test, stopped at cleanup,
// or skips when it is not installed, unless LATCH_TEST_BROWSER=1 (as in
// CI), where that is a failure.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, "the openid-client PAR + DPoP login", 3*time.Minute)
}

// dpopNodeResult is what authcode-dpop-par.mjs reports.
type dpopNodeResult struct {
	AuthorizationURL string `json:"authorization_url"`
	Sub              string `json:"sub"`
	JKT              string `json:"jkt"`
	AccessToken      string `json:"access_token"`
}

// TestAuthCode_InteropNodeOpenIDClient_PARAndDPoP has openid-client (npm)
// run the authorization code flow with PKCE, a pushed authorization
// request and DPoP against a live `latch serve --dev`, for clients that
// require both (--require-par, --dpop required): the user signs in on
// latch's login page in headless Chromium; openid-client redeems the code
// and refreshes with proofs of its key, then calls examples/api --dpop
// (package verify) with a proof, and sees the same token refused as a
// Bearer token and with another key's proof. The server's introspection
// confirms the binding to openid-client's key.
func TestAuthCode_InteropNodeOpenIDClient_PARAndDPoP(t *testing.T) {
	node, dir := nodeInterop(t, "openid-client")
	ctx := newChromium(t)

	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	const pw = "correct horse battery staple"
	alice := createAlice(t, dataDir, pw)
	cb := newAuthCallback(t)
	api := startProc(t, "listening", nil, buildExampleAPI(t),
		"--issuer", p.Issuer, "--audience", "api", "--listen", "127.0.0.1:0", "--insecure-allow-http", "--dpop")
	apiURL := "http://" + api.Addr + "/hello"
	clientArgs := []string{"--grant", "authorization_code,refresh_token", "--redirect-uri", cb.URI(),
		"--scope", "openid profile read", "--audience", "api", "--dpop", "required", "--require-par"}

	for _, tc := range []struct {
		name    string
		client  testClient
		consent bool
	}{
		{"client_secret_basic", createClient(t, dataDir, append(clientArgs, "--first-party")...), false},
		// A public client with a loopback redirect cannot be first
		// party: the user approves it on the consent page.
		{"public_none", createClient(t, dataDir, append(clientArgs, "--auth-method", "none")...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startNodeFlow(t, node, dir, "authcode-dpop-par.mjs", []string{
				"ISSUER=" + p.Issuer,
				"CLIENT_ID=" + tc.client.ID,
				"CLIENT_SECRET=" + tc.client.Secret,
				"REDIRECT_URI=" + cb.URI(),
				"API_URL=" + apiURL,
			}, func() string { return "latch stderr:\n" + p.Stderr.String() + "api stderr:\n" + api.Stderr.String() })

			var first dpopNodeResult
			f.next("authorization-url", &first)
			au, err := url.Parse(first.AuthorizationURL)
			if err != nil {
				t.Fatalf("authorization URL: %v", err)
			}
			if q := au.Query(); au.Scheme+"://"+au.Host != p.Issuer || au.Path != "/oauth2/authorize" ||
				q.Get("client_id") != tc.client.ID || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") || len(q) != 2 {
				t.Fatalf("openid-client built the authorization URL %s; want the discovered endpoint with client_id and a request_uri only (RFC 9126 §4)", au)
			}

			// The user, in Chromium: latch's login page, then (public
			// client) the consent page, then the redirect to the client.
			// The browser is shared by the subtests: it may still be
			// signed in at the server, and then shows no login form.
			var hasLogin bool
			if err := chromedp.Run(ctx, chromedp.Navigate(au.String()),
				chromedp.Evaluate(`document.querySelector("#username") !== null`, &hasLogin)); err != nil {
				t.Fatalf("open the authorization URL: %v", err)
			}
			var actions []chromedp.Action
			if hasLogin {
				actions = append(actions,
					chromedp.SendKeys("#username", "alice", chromedp.ByID),
					chromedp.SendKeys("#password", pw, chromedp.ByID),
					chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
				)
			}
			if tc.consent {
				actions = append(actions, chromedp.WaitVisible("#allow", chromedp.ByID), chromedp.Click("#allow", chromedp.ByID))
			}
			actions = append(actions,
				chromedp.WaitVisible(`//body[contains(., "signed in; you may close this window")]`, chromedp.BySearch))
			if err := chromedp.Run(ctx, actions...); err != nil {
				var at string
				chromedp.Run(ctx, chromedp.Location(&at))
				t.Fatalf("sign in at %s (now at %s): %v\nlatch stderr:\n%s", au, at, err, p.Stderr.String())
			}
			callback := cb.received(t)
			if callback.Query().Get("code") == "" || callback.Query().Get("iss") != p.Issuer {
				t.Fatalf("authorization response %s: want a code and iss %s", callback, p.Issuer)
			}
			f.send(callback.String())

			var res dpopNodeResult
			f.next("all", &res)
			f.finish()
			if res.Sub != alice.ID || res.JKT == "" {
				t.Fatalf("node result sub %q jkt %q, want %q and a thumbprint", res.Sub, res.JKT, alice.ID)
			}
			// The server bound the token to openid-client's key.
			at := introspect(t, p, dev, res.AccessToken)
			cnf, _ := at["cnf"].(map[string]any)
			if at["active"] != true || at["sub"] != alice.ID || cnf["jkt"] != res.JKT {
				t.Fatalf("introspection of node's access token: %v; want active, sub %s, cnf.jkt %s", at, alice.ID, res.JKT)
			}
		})
	}
}
