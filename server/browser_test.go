package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/internal/browsertest"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
)

// TestBrowser_Login_CookieAttributes_Fixation_Consent_Logout drives the
// login pages in a real headless Chromium, against the real handler on
// http://127.0.0.1 (the --dev setup), and checks what the browser itself
// stored and sent:
//
//   - a session ID planted before login (session fixation) is not the one
//     after login, and is dead;
//   - the session cookie as Chromium stored it: __Host-latch_session,
//     Secure, HttpOnly, SameSite=Lax, Path=/, host-only, a session cookie
//     (Chromium keeps Secure and __Host- cookies on http://127.0.0.1);
//   - our own form posts pass the Origin check (Referrer-Policy
//     same-origin keeps Chromium sending the real Origin);
//   - the consent form's POST, and the login form's POST, both end in a
//     redirect to a client on another origin, which the page's CSP does
//     not block, and the client gets no Referer;
//   - after logout the cookie is gone from the browser and the old value,
//     replayed, is logged out.
//
// /oauth2/authorize here is a stand-in built on the same renderConsent and
// checkCSRF the real endpoint uses, so that this test pins down the login
// pages alone; TestBrowser_AuthorizationCode_RealEndpoint runs the real one.
func TestBrowser_Login_CookieAttributes_Fixation_Consent_Logout(t *testing.T) {
	br := newBrowser(t)
	run, sessionCookie := br.run, func() *network.Cookie { return br.cookie("__Host-latch_session") }

	// The client application, on its own origin.
	app := newClientApp(t)

	// latch, on http://127.0.0.1:PORT, its issuer.
	e, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return browserAuthorize(e, app.URL) })

	// Session fixation: an attacker planted a session ID in the browser.
	planted := strings.Repeat("P", 42) + "A"
	run("plant a session cookie", network.SetCookie("__Host-latch_session", planted).
		WithURL(issuer+"/").WithPath("/").WithSecure(true).WithHTTPOnly(true).WithSameSite(network.CookieSameSiteLax))
	if c := sessionCookie(); c == nil || c.Value != planted {
		t.Fatalf("Chromium did not keep the planted cookie on %s: %+v", issuer, c)
	}

	// Log in on the page; return_to leads to the consent page.
	returnTo := "/oauth2/authorize?client_id=app&state=s1"
	var loc string
	run("log in",
		chromedp.Navigate(issuer+"/login?return_to="+url.QueryEscape(returnTo)),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#allow", chromedp.ByID),
		chromedp.Location(&loc),
	)
	if loc != issuer+returnTo {
		t.Fatalf("after login the browser is at %s, want %s", loc, issuer+returnTo)
	}

	c := sessionCookie()
	switch {
	case c == nil:
		t.Fatal("no session cookie in the browser after login")
	case c.Value == planted:
		t.Fatal("the planted session ID was kept at login (session fixation)")
	case !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" ||
		c.Domain != "127.0.0.1" || !c.Session:
		t.Fatalf("session cookie as stored = %+v, want Secure, HttpOnly, SameSite=Lax, Path=/, host-only 127.0.0.1, session", c)
	}
	afterLogin := c.Value
	if who := replay(t, issuer, planted); who != "" {
		t.Fatalf("the planted ID is signed in (%s)", who)
	}

	// Consent: Allow posts to /oauth2/authorize, which redirects to the
	// client on another origin.
	run("allow",
		chromedp.Click("#allow", chromedp.ByID),
		chromedp.WaitVisible("#app", chromedp.ByID),
		chromedp.Location(&loc),
	)
	if want := app.URL + "/cb?consent=allow&state=s1"; loc != want {
		t.Fatalf("after Allow the browser is at %s, want %s", loc, want)
	}

	// Re-authentication (prompt=login): the login form's POST ends, via
	// /oauth2/authorize, at the client, and the session ID changes again.
	returnTo = "/oauth2/authorize?client_id=app&state=s2&auto=1"
	run("log in again",
		chromedp.Navigate(issuer+"/login?prompt=login&return_to="+url.QueryEscape(returnTo)),
		chromedp.WaitVisible("#password", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#app", chromedp.ByID),
		chromedp.Location(&loc),
	)
	if want := app.URL + "/cb?consent=auto&state=s2"; loc != want {
		t.Fatalf("after re-login the browser is at %s, want %s", loc, want)
	}
	c = sessionCookie()
	if c == nil || c.Value == afterLogin {
		t.Fatalf("re-authentication did not regenerate the session ID: %+v", c)
	}
	if who := replay(t, issuer, afterLogin); who != "" {
		t.Fatal("the session ID before re-authentication is still signed in")
	}
	current := c.Value
	if refs := app.referers(); len(refs) != 2 || refs[0] != "" || refs[1] != "" {
		t.Errorf("the client's callback got Referer headers %q, want two empty ones", refs)
	}

	// The account page, and logout.
	var who string
	run("account page",
		chromedp.Navigate(issuer+"/"),
		chromedp.Text("#username", &who, chromedp.ByID),
	)
	if who != "alice" {
		t.Fatalf("account page shows %q", who)
	}
	if got := replay(t, issuer, current); got != "alice" {
		t.Fatalf("replaying the live cookie shows %q, want alice", got)
	}
	var notice string
	run("log out",
		chromedp.Click("#logout", chromedp.ByID),
		chromedp.WaitVisible(".notice", chromedp.ByQuery),
		chromedp.Text(".notice", &notice, chromedp.ByQuery),
		chromedp.Location(&loc),
	)
	if loc != issuer+"/login?signed_out=1" || notice != "You have signed out." {
		t.Fatalf("after logout: %s %q", loc, notice)
	}
	if c := sessionCookie(); c != nil {
		t.Fatalf("the session cookie is still in the browser after logout: %+v", c)
	}
	if who := replay(t, issuer, current); who != "" {
		t.Fatalf("the logged-out cookie, replayed, is signed in as %q", who)
	}
	h := sha256.Sum256([]byte(current))
	if sessionExists(t, e, h[:]) {
		t.Fatal("the session record survived logout")
	}
}

// TestBrowser_AuthorizationCode_RealEndpoint runs the real
// /oauth2/authorize in Chromium. A third-party client sends the browser
// there; latch sends it to /login; the login POST comes back; the consent
// page's Allow posts to /oauth2/authorize, which redirects to the client,
// on another origin, with a code that redeems. Then a first-party client
// with prompt=login: the chain POST /login → 303 /oauth2/authorize → 302
// ends at the client, which the login page's CSP must not block.
func TestBrowser_AuthorizationCode_RealEndpoint(t *testing.T) {
	br := newBrowser(t)
	app := newClientApp(t)
	e, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })
	cb := app.URL + "/cb"
	third := e.webClient(func(s *registry.ClientSpec) {
		s.FirstParty, s.Name, s.RedirectURIs = false, "Other App", []string{cb}
	})
	first := e.webClient(func(s *registry.ClientSpec) { s.RedirectURIs = []string{cb} })
	authorize := func(c creds, state, prompt string) string {
		return issuer + authorizeURL(c, func(v url.Values) {
			v.Set("redirect_uri", cb)
			v.Set("state", state)
			if prompt != "" {
				v.Set("prompt", prompt)
			}
		})
	}
	code := func(loc, state string) string {
		t.Helper()
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, cb+"?") {
			t.Fatalf("the browser is at %s, want the client's %s", loc, cb)
		}
		q := u.Query()
		if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
			t.Fatalf("callback query %v", q)
		}
		return q.Get("code")
	}

	var loc string
	br.run("authorize, log in, consent page",
		chromedp.Navigate(authorize(third, "s1", "")),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#allow", chromedp.ByID),
	)
	br.run("allow",
		chromedp.Click("#allow", chromedp.ByID),
		chromedp.WaitVisible("#app", chromedp.ByID),
		chromedp.Location(&loc),
	)
	status, tr := e.grant(third, url.Values{"grant_type": {"authorization_code"}, "code": {code(loc, "s1")},
		"redirect_uri": {cb}, "code_verifier": {testVerifier}})
	if status != 200 || tr.AccessToken == "" {
		t.Fatalf("redeem the code: %d %+v", status, tr)
	}

	before := br.cookie("__Host-latch_session")
	br.run("first-party client, prompt=login",
		chromedp.Navigate(authorize(first, "s2", "login")),
		chromedp.WaitVisible("#password", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#app", chromedp.ByID),
		chromedp.Location(&loc),
	)
	code(loc, "s2")
	if after := br.cookie("__Host-latch_session"); before == nil || after == nil || after.Value == before.Value {
		t.Fatal("re-authentication did not regenerate the session ID")
	}
	if refs := app.referers(); len(refs) != 2 || refs[0] != "" || refs[1] != "" {
		t.Errorf("the client's callback got Referer headers %q, want two empty ones", refs)
	}
}

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium (NoSandbox, no background networking, and
// extra), or skips the test when chromium is not on PATH. It is stopped at
// cleanup. It has no overall guard: each step has its own (run).
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	return &browser{t: t, ctx: browsertest.Start(t, "the real-browser login test", 0, extra...)}
}

// run runs one step of actions.
func (b *browser) run(step string, actions ...chromedp.Action) {
	b.t.Helper()
	// A hang guard, not a speed assertion: a step takes well under a
	// second. A navigation the page's CSP blocks ends here.
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// cookie returns the cookie name from the browser's cookie store, as
// Chromium keeps it, or nil.
func (b *browser) cookie(name string) *network.Cookie {
	b.t.Helper()
	var cookies []*network.Cookie
	b.run("read the cookie store", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = storage.GetCookies().Do(ctx)
		return err
	}))
	for _, c := range cookies {
		if c.Name == "__Host-latch_login" && c.SameSite != network.CookieSameSiteStrict {
			b.t.Errorf("login CSRF cookie SameSite = %q, want Strict", c.SameSite)
		}
	}
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// clientApp is a client application on its own origin: its /cb shows the
// query it got and records the Referer.
type clientApp struct {
	*httptest.Server
	mu   sync.Mutex
	refs []string
}

func newClientApp(t *testing.T) *clientApp {
	app := &clientApp{}
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		app.mu.Lock()
		app.refs = append(app.refs, r.Header.Get("Referer"))
		app.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>app</title><h1 id=\"app\">%s</h1>", html.EscapeString(r.URL.RawQuery))
	}))
	t.Cleanup(app.Close)
	return app
}

func (a *clientApp) referers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.refs)
}

// serveLatchHTTP serves latch on http://127.0.0.1:PORT, its issuer (the
// --dev set-up), with cheap argon2 and the user alice; handler wraps the
// server's handler.
func serveLatchHTTP(t *testing.T, handler func(*env) http.Handler) (*env, string) {
	t.Helper()
	var h http.Handler
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	issuer := "http://" + ts.Listener.Addr().String()
	e, _, _ := loginEnv(t, func(c *server.Config) { c.Issuer, c.InsecureAllowHTTP = issuer, true })
	h = handler(e)
	ts.Start()
	t.Cleanup(ts.Close)
	return e, issuer
}

// replay sends GET / with the session cookie raw and returns who it is
// signed in as, "" when it is redirected to the login page.
func replay(t *testing.T, issuer, raw string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, issuer+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "__Host-latch_session", Value: raw})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp.Body)
	switch {
	case resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/login":
		return ""
	case resp.StatusCode == http.StatusOK:
		_, rest, _ := strings.Cut(body, `<strong id="username">`)
		name, _, _ := strings.Cut(rest, "<")
		return name
	}
	t.Fatalf("replay: %d %s", resp.StatusCode, body)
	return ""
}

// browserAuthorize serves latch's handler with a stand-in for
// /oauth2/authorize: GET renders the consent page (auto=1: redirects to
// the client at once, as for a client that needs no consent); POST checks
// the CSRF token and redirects to the client's callback.
func browserAuthorize(e *env, appURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		sess, u, err := server.CurrentSession(e.srv, w, r)
		if err != nil || sess == nil {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		q := r.URL.Query()
		if q.Get("auto") == "1" {
			http.Redirect(w, r, appURL+"/cb?consent=auto&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
			return
		}
		server.RenderConsent(e.srv, w, r, sess, server.ConsentView{ClientID: "app", ClientName: "Example App",
			Username: u.Username, Scopes: []string{"openid", "read"}, Params: q})
	})
	mux.HandleFunc("POST /oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := server.CurrentSession(e.srv, w, r)
		if err != nil || sess == nil || !server.CheckCSRF(e.srv, r, sess) {
			server.RenderError(e.srv, w, r, http.StatusForbidden, "Request refused", "bad session or CSRF token")
			return
		}
		http.Redirect(w, r, appURL+"/cb?consent="+url.QueryEscape(r.PostForm.Get("consent"))+
			"&state="+url.QueryEscape(r.PostForm.Get("state")), http.StatusFound)
	})
	mux.Handle("/", e.h)
	return mux
}

// TestBrowser_Pages_ClearAndAccessible opens, in Chromium, the pages a
// user meets in the authorization code flow and checks what they show:
// the login page names the application and labels every field, the
// keyboard focus is visible, the consent page describes each scope, a
// missing page is the styled 404, and the unregistered-redirect page names
// the application. It keeps a screenshot of each as a test artefact.
func TestBrowser_Pages_ClearAndAccessible(t *testing.T) {
	br := newBrowser(t)
	app := newClientApp(t)
	e, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })
	cb := app.URL + "/cb"
	c := e.webClient(func(s *registry.ClientSpec) {
		s.FirstParty, s.Name, s.RedirectURIs = false, "Photo Print", []string{cb}
		s.Scope = "openid profile offline_access read write photos:print"
	})
	authorize := issuer + authorizeURL(c, func(v url.Values) {
		v.Set("redirect_uri", cb)
		v.Set("scope", "openid profile offline_access read photos:print")
	})
	text := func(sel string) string {
		t.Helper()
		var s string
		br.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	eval := func(js string) string {
		t.Helper()
		var s string
		br.run("evaluate", chromedp.Evaluate(js, &s))
		return s
	}
	br.run("viewport", chromedp.EmulateViewport(520, 320))

	br.run("login page", chromedp.Navigate(authorize), chromedp.WaitVisible("#username", chromedp.ByID))
	if got := text("#signing-in-to"); got != "to continue to Photo Print" {
		t.Errorf("the login page says %q, want it to name Photo Print", got)
	}
	if unlabelled := eval(`[...document.querySelectorAll("input:not([type=hidden])")].filter(i => i.labels.length === 0).map(i => i.id).join(" ")`); unlabelled != "" {
		t.Errorf("fields without a label: %s", unlabelled)
	}
	br.screenshot("login")
	// The keyboard focus, on a field and on the button, is a visible ring.
	focusRing := `(() => { const a = document.activeElement, s = getComputedStyle(a); return a.tagName + ":" + s.outlineStyle + " " + s.outlineWidth; })()`
	br.run("tab to a field", chromedp.KeyEvent("\t"))
	if got := eval(focusRing); got != "INPUT:solid 3px" {
		t.Errorf("keyboard focus on a field: %q, want a 3px solid outline on an input", got)
	}
	for range 3 {
		if eval(`document.activeElement.tagName`) == "BUTTON" {
			break
		}
		br.run("tab on", chromedp.KeyEvent("\t"))
	}
	if got := eval(focusRing); got != "BUTTON:solid 3px" {
		t.Errorf("keyboard focus on the sign-in button: %q, want a 3px solid outline on the button", got)
	}
	br.screenshot("login-focus")

	br.run("wrong password",
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", "not the password", chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#login-error", chromedp.ByID),
	)
	br.screenshot("login-error")
	br.run("log in",
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#allow", chromedp.ByID),
	)
	scopes := eval(`[...document.querySelectorAll(".scopes li")].map(li => li.className + "|" + li.querySelector(".scope-text").textContent).join("\n")`)
	for _, want := range []string{"|Know who you are", "|See your username", "|Keep its access", "|Read your data",
		"unknown|Not described by this server"} {
		if !strings.Contains(scopes, want) {
			t.Errorf("the consent page's scopes lack %q:\n%s", want, scopes)
		}
	}
	br.screenshot("consent")

	br.run("404 page", chromedp.Navigate(issuer+"/no/such/page"), chromedp.WaitVisible("main", chromedp.ByQuery))
	if h1, radius := text("h1"), eval(`getComputedStyle(document.querySelector("main")).borderRadius`); h1 != "Page not found" || radius != "12px" {
		t.Errorf("404: heading %q, card radius %q; want the styled page", h1, radius)
	}
	br.screenshot("404")

	br.run("bad redirect page", chromedp.Navigate(issuer+authorizeURL(c, func(v url.Values) {
		v.Set("redirect_uri", "https://evil.example/cb")
	})), chromedp.WaitVisible("main", chromedp.ByQuery))
	if h1 := text("h1"); h1 != "Cannot return to Photo Print" {
		t.Errorf("bad redirect page: heading %q", h1)
	}
	br.screenshot("bad-redirect")

	// The dark scheme, as a browser set to prefer it shows the pages.
	br.run("dark scheme", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
		chromedp.Navigate(authorize), chromedp.WaitVisible("#allow", chromedp.ByID))
	br.screenshot("consent-dark")
}

// screenshot saves a PNG of the whole page as name.png in the directory
// named by LATCH_TEST_ARTIFACTS (CI keeps it), or else in the test's
// temporary directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	latchtest.SaveArtefact(b.t, name+".png", png)
}

// TestBrowser_LocalhostInsteadOfIssuer_SignInWorks opens the sign-in page
// at http://localhost:PORT, another origin than the issuer's
// http://127.0.0.1:PORT to the browser: the page redirects to the issuer,
// and signing in there works.
func TestBrowser_LocalhostInsteadOfIssuer_SignInWorks(t *testing.T) {
	br := newBrowser(t)
	_, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })
	alias := strings.Replace(issuer, "127.0.0.1", "localhost", 1)
	var loc, who string
	br.run("sign in, starting at localhost",
		chromedp.Navigate(alias+"/login"),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		// The signed-in page shows the name in <strong id=username>; a bare
		// #username would match the login form's own field before it goes.
		chromedp.WaitVisible("strong#username", chromedp.ByQuery),
		chromedp.Location(&loc),
		chromedp.Text("#username", &who, chromedp.ByID),
	)
	if loc != issuer+"/" || who != "alice" {
		t.Fatalf("after signing in from %s the browser is at %s, showing %q; want %s/ signed in as alice", alias, loc, who, issuer)
	}
}

// TestBrowser_PageOpenedUnderAnotherName_SaysWhereToSignIn opens the
// sign-in page under a name of the server that is not the issuer's and
// not loopback (login.auth.test, resolved to 127.0.0.1 by Chromium), so
// that no redirect applies: signing in there is refused, the page says
// where the page was opened and where to go, and its link leads to a
// sign-in that works.
func TestBrowser_PageOpenedUnderAnotherName_SaysWhereToSignIn(t *testing.T) {
	br := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP login.auth.test 127.0.0.1"))
	_, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })
	alias := strings.Replace(issuer, "127.0.0.1", "login.auth.test", 1)
	br.run("viewport", chromedp.EmulateViewport(520, 320))
	var msg, loc, who string
	br.run("sign in at the alias",
		chromedp.Navigate(alias+"/login"),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#issuer-login", chromedp.ByID),
		chromedp.Text("#login-error", &msg, chromedp.ByID),
	)
	if want := "You opened this page at " + alias + ", but this server’s address is " + issuer + ". Sign-in works only there."; msg != want {
		t.Errorf("the page says %q, want %q", msg, want)
	}
	br.screenshot("login-wrong-origin")
	br.run("follow the link and sign in",
		chromedp.Click("#issuer-login", chromedp.ByID),
		chromedp.WaitVisible("#password", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("strong#username", chromedp.ByQuery),
		chromedp.Location(&loc),
		chromedp.Text("#username", &who, chromedp.ByID),
	)
	if loc != issuer+"/" || who != "alice" {
		t.Fatalf("after following the link the browser is at %s showing %q, want %s/ signed in as alice", loc, who, issuer)
	}
}
