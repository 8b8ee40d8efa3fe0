package bff

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/internal/browsertest"
)

// newBrowser starts headless Chromium for one test, or skips when it is not
// installed. It is stopped at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, "the BFF's browser test", 2*time.Minute)
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// TestBrowser_TokensNeverReachJavaScript is the browser test, in
// headless Chromium: log in through the BFF with the example SPA, call the
// API, check with document.cookie and the DevTools cookie store that no
// token is reachable from the page and that the only cookie is the
// __Host- session cookie with the right attributes, check that a
// cross-site POST is refused, and log out.
//
// The authorization server runs on "localhost" and the BFF on 127.0.0.1,
// two sites, as in production; the attacker's page is on "localhost" too,
// cross-site to the BFF.
func TestBrowser_TokensNeverReachJavaScript(t *testing.T) {
	e := newE2E(t, e2eOptions{issuerHost: "localhost"})
	ctx := newBrowser(t)

	// 1. The app, anonymous: it offers to log in.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.bffURL+"/"),
		chromedp.WaitVisible("#login", chromedp.ByID),
	); err != nil {
		t.Fatalf("open the app: %v", err)
	}

	// 2. Log in: the BFF sends the browser to the server's login page,
	// which comes back to /bff/callback and then to the app.
	var user string
	if err := chromedp.Run(ctx,
		chromedp.Click("#login", chromedp.ByID),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#signed-in", chromedp.ByID),
		chromedp.Text("#user", &user, chromedp.ByID),
	); err != nil {
		var loc string
		chromedp.Run(ctx, chromedp.Location(&loc))
		t.Fatalf("log in (at %s): %v", loc, err)
	}
	if user == "" {
		t.Fatal("the app shows no user after login")
	}

	// 3. Call the API through the BFF.
	var result string
	if err := chromedp.Run(ctx,
		chromedp.Click("#call", chromedp.ByID),
		chromedp.WaitVisible(`//pre[@id="result" and contains(., "sub")]`, chromedp.BySearch),
		chromedp.Text("#result", &result, chromedp.ByID),
	); err != nil {
		t.Fatalf("call the API: %v", err)
	}
	if !strings.Contains(result, `"path": "/hello"`) {
		t.Fatalf("API answer shown: %s", result)
	}
	e.apiMu.Lock()
	if len(e.apiToken) == 0 {
		e.apiMu.Unlock()
		t.Fatal("the API saw no token")
	}
	accessToken := e.apiToken[len(e.apiToken)-1]
	e.apiMu.Unlock()

	// 4. Nothing the page's JavaScript can reach holds a token.
	var docCookie, html string
	var storageLen int
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.cookie`, &docCookie),
		chromedp.Evaluate(`localStorage.length + sessionStorage.length`, &storageLen),
		chromedp.OuterHTML("html", &html, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if docCookie != "" {
		t.Fatalf("document.cookie = %q: a cookie is readable from JavaScript", docCookie)
	}
	if storageLen != 0 {
		t.Fatalf("Web Storage holds %d items", storageLen)
	}
	if strings.Contains(html, accessToken) || strings.Contains(html, "lt_rt_") {
		t.Fatal("the page holds a token")
	}

	// 5. The DevTools cookie store: for the app's URL, exactly one cookie,
	// the __Host- session cookie: HttpOnly, Secure, SameSite=Strict,
	// Path=/, host-only.
	var appCookies []*network.Cookie
	var allCookies []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		if appCookies, err = network.GetCookies().WithURLs([]string{e.bffURL + "/"}).Do(ctx); err != nil {
			return err
		}
		allCookies, err = storage.GetCookies().Do(ctx)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	if len(appCookies) != 1 {
		t.Fatalf("the app's origin has %d cookies, want only the session cookie: %v", len(appCookies), cookieNames(appCookies))
	}
	t.Logf("cookies of the app's origin: %+v (in the whole browser: %v)", *appCookies[0], cookieNames(allCookies))
	c := appCookies[0]
	if c.Name != DefaultCookieName || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" || c.Domain != "127.0.0.1" {
		t.Fatalf("session cookie %+v: want __Host-latch_bff, HttpOnly, Secure, SameSite=Strict, Path=/, host-only", *c)
	}
	if len(c.Value) != cookieValueLen {
		t.Fatalf("session cookie value of %d bytes, want the 43-byte random ID", len(c.Value))
	}
	for _, ck := range allCookies {
		if strings.Contains(ck.Value, accessToken) || strings.HasPrefix(ck.Value, "lt_") || strings.Count(ck.Value, ".") == 2 {
			t.Fatalf("cookie %s of %s holds a token", ck.Name, ck.Domain)
		}
	}

	// 6. A page of another site posts to the API: refused, and nothing
	// reaches the API.
	posts := func() int {
		e.apiMu.Lock()
		defer e.apiMu.Unlock()
		return len(e.apiToken)
	}
	before := posts()
	evil := newEvilSite(t, e.bffURL)
	var fetchResult, formBody string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(evil+"/"),
		chromedp.WaitReady("#f", chromedp.ByID),
		// fetch with the CSRF header: the CORS preflight fails, nothing
		// is sent.
		chromedp.Evaluate(`fetch(`+jsString(e.bffURL+"/api/items")+`, {method: "POST", credentials: "include", headers: {"X-Latch-CSRF": "1"}}).then(r => "status " + r.status, e => "blocked")`, &fetchResult, awaitPromise),
		// A classic form post, a top-level cross-site navigation.
		chromedp.Submit("#f", chromedp.ByID),
	); err != nil {
		t.Fatalf("cross-site page: %v", err)
	}
	if fetchResult != "blocked" {
		t.Fatalf("cross-site fetch with the CSRF header: %s, want blocked by CORS", fetchResult)
	}
	// The form post's answer is the BFF's 403, shown in the tab.
	waitFor(t, 10*time.Second, "the form post's answer", func() bool {
		var loc string
		if err := chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Text("body", &formBody, chromedp.ByQuery)); err != nil {
			return false
		}
		return strings.HasPrefix(loc, e.bffURL+"/api/items")
	})
	t.Logf("cross-site fetch: %s; cross-site form post answered: %s", fetchResult, strings.TrimSpace(formBody))
	if !strings.Contains(formBody, CodeCSRF) {
		t.Fatalf("cross-site form post answered %q, want %s", formBody, CodeCSRF)
	}
	if after := posts(); after != before {
		t.Fatalf("a cross-site request reached the API (%d calls before, %d after)", before, after)
	}

	// 7. Log out in the app: the cookie is gone, the API refuses.
	var status string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.bffURL+"/"),
		chromedp.WaitVisible("#logout", chromedp.ByID),
		chromedp.Click("#logout", chromedp.ByID),
		chromedp.WaitVisible(`//p[@id="status" and contains(., "signed out")]`, chromedp.BySearch),
		chromedp.Text("#status", &status, chromedp.ByID),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			appCookies, err = network.GetCookies().WithURLs([]string{e.bffURL + "/"}).Do(ctx)
			return err
		}),
	); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if len(appCookies) != 0 {
		t.Fatalf("cookies left after logout: %v", cookieNames(appCookies))
	}
	var afterLogout string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`fetch("/api/hello").then(r => r.status + " " + r.headers.get("content-type"))`, &afterLogout, awaitPromise)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(afterLogout, "401 ") {
		t.Fatalf("API after logout: %s, want 401", afterLogout)
	}
}

func cookieNames(cs []*network.Cookie) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"@"+c.Domain)
	}
	return out
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// newEvilSite serves a page on "localhost", another site than the BFF's
// 127.0.0.1, with a form that posts to the BFF's API.
func newEvilSite(t *testing.T, bffURL string) string {
	ln := listen(t)
	serve(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="POST" action="%s/api/items"><input name="amount" value="1000"></form>
</body></html>`, bffURL)
	}))
	return "http://localhost:" + port(ln)
}
