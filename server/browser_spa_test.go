package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/registry"
)

// oidcClientTS is the browser build of npm oidc-client-ts, pinned in
// interop/node/package.json; `npm ci` there installs it.
var oidcClientTS = filepath.Join("..", "interop", "node", "node_modules", "oidc-client-ts", "dist", "browser", "oidc-client-ts.min.js")

// spaPage is the single-page app: oidc-client-ts with a public client,
// PKCE (the library's default), user info loaded after the code exchange.
// The callback page writes the outcome into #result for the test to read.
const spaPage = `<!doctype html>
<meta charset="utf-8"><title>spa</title>
<script src="/oidc-client-ts.min.js"></script>
<pre id="result"></pre>
<script>
const mgr = new oidc.UserManager({authority: %q, client_id: %q, redirect_uri: location.origin + "/callback.html",
  response_type: "code", scope: "openid profile", loadUserInfo: true});
const show = (v) => { document.getElementById("result").textContent = typeof v === "string" ? v : JSON.stringify(v); };
async function main() {
  if (location.pathname === "/callback.html") {
    const user = await mgr.signinRedirectCallback();
    // A call with Authorization: the browser sends a preflight first.
    const r = await fetch(%q + "/userinfo", {headers: {Authorization: "Bearer " + user.access_token}});
    const info = await r.json();
    await mgr.revokeTokens(["refresh_token"]);
    show({sub: user.profile.sub, username: user.profile.preferred_username, userinfo: info,
      access: !!user.access_token, refresh: !!user.refresh_token, token: user.access_token, revoked: true});
  } else if (location.pathname === "/probe.html") {
    // Another origin, not registered: the same call must fail in the browser.
    try {
      await fetch(%q + "/userinfo", {headers: {Authorization: "Bearer " + location.hash.slice(1)}});
      show("allowed");
    } catch (e) { show("blocked: " + e.name); }
  } else {
    await mgr.signinRedirect();
  }
}
main().catch((e) => show("error: " + e));
</script>`

// TestBrowser_SPA_OIDCClientTS_PublicClientPKCE_CORS: an SPA on another
// origin than latch signs in with oidc-client-ts (discovery, PKCE, the
// code exchange, userinfo and revocation, all cross-origin fetches), the
// user logging in and consenting on latch's pages, in Chromium. The same
// page under an unregistered origin cannot read userinfo.
func TestBrowser_SPA_OIDCClientTS_PublicClientPKCE_CORS(t *testing.T) {
	lib, err := os.ReadFile(oidcClientTS)
	if err != nil {
		if os.Getenv("LATCH_TEST_NODE") == "1" {
			t.Fatalf("LATCH_TEST_NODE=1 but %s is missing: %v", oidcClientTS, err)
		}
		t.Skipf("%s is missing: run `cd interop/node && npm ci` (set LATCH_TEST_NODE=1 to make this a failure)", oidcClientTS)
	}
	br := newBrowser(t)
	e, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })

	var page string
	spa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oidc-client-ts.min.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(lib)
		case "/", "/callback.html", "/probe.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, page)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(spa.Close)
	c := e.client(registry.ClientSpec{Name: "Photo SPA", AuthMethod: "none",
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile", Audiences: []string{"api"},
		RedirectURIs: []string{spa.URL + "/callback.html"}, WebOrigins: []string{spa.URL}})
	page = fmt.Sprintf(spaPage, issuer, c.ID, issuer, issuer)

	var result string
	br.run("the SPA sends the browser to latch",
		chromedp.Navigate(spa.URL+"/"),
		chromedp.WaitVisible("#username", chromedp.ByID),
	)
	br.run("log in and allow",
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#allow", chromedp.ByID),
		chromedp.Click("#allow", chromedp.ByID),
	)
	br.run("the SPA completes the sign-in",
		chromedp.WaitVisible(`#result:not(:empty)`, chromedp.ByQuery),
		chromedp.Text("#result", &result, chromedp.ByID),
	)
	var got struct {
		Sub, Username, Token string
		Userinfo             map[string]any
		Access, Refresh      bool
		Revoked              bool
	}
	if !strings.HasPrefix(result, "{") {
		t.Fatalf("the SPA says %s", result)
	}
	mustJSON(t, []byte(result), &got)
	if got.Sub == "" || got.Username != "alice" || !got.Access || !got.Refresh || !got.Revoked || got.Userinfo["sub"] != got.Sub {
		t.Fatalf("the SPA's sign-in: %s", result)
	}

	probe := strings.Replace(spa.URL, "127.0.0.1", "localhost", 1) + "/probe.html#" + got.Token
	br.run("an unregistered origin tries the same call",
		chromedp.Navigate(probe),
		chromedp.WaitVisible(`#result:not(:empty)`, chromedp.ByQuery),
		chromedp.Text("#result", &result, chromedp.ByID),
	)
	if !strings.HasPrefix(result, "blocked: TypeError") {
		t.Errorf("userinfo from an unregistered origin: %s, want blocked by CORS", result)
	}
}
