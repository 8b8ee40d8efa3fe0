package main

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/internal/browsertest"
)

// This file holds what the relying-party interop tests share: the test
// upstream an RP proxies to, and headless Chromium playing the user.
// The RPs themselves (oauth2-proxy, Apache with mod_auth_openidc) are
// programs nobody here wrote, run as their operators run them.

// rpAlice is the user the relying-party tests sign in as: with the
// profile a directory would give her, and groups the application
// authorizes on.
type rpAlice struct {
	ID, Username, Password, Email, Name string
	Groups                              []string
}

// createRPAlice creates alice in dataDir with her email (verified by the
// operator), her name and her groups.
func createRPAlice(t *testing.T, dataDir string) rpAlice {
	t.Helper()
	a := rpAlice{Username: "alice", Password: "correct horse battery staple", Email: "alice@example.com",
		Name: "Alice Liddell", Groups: []string{"eng", "ops"}}
	a.ID = createAlice(t, dataDir, a.Password).ID
	runCLI(t, "user", "set-profile", "alice", "--email", a.Email, "--email-verified", "--name", a.Name, "--data-dir", dataDir)
	runCLI(t, "user", "set-roles", "alice", "--group", strings.Join(a.Groups, ","), "--data-dir", dataDir)
	return a
}

// rpToolUnavailable skips the test because a tool it drives is missing,
// or fails it when env (as set in CI) says the tool must be there.
func rpToolUnavailable(t *testing.T, env string, format string, args ...any) {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Fatalf(env+" is set but "+format, args...)
	}
	t.Skipf(format+" (set "+env+" to make this a failure)", args...)
}

// upstreamRequest is what the test upstream saw of one request.
type upstreamRequest struct {
	Path   string
	Header http.Header
}

// upstream is the application behind a relying party: it answers every
// request with a page the browser can wait for and records the headers
// the RP added, which is how the RP tells it who the user is.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []upstreamRequest
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, upstreamRequest{Path: r.URL.Path, Header: r.Header.Clone()})
		n := len(u.reqs)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "<!doctype html><title>upstream</title><p id=\"upstream\" data-n=\"%d\">%s</p>\n", n, html.EscapeString(r.URL.Path))
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the last request the upstream received for path.
func (u *upstream) last(t *testing.T, path string) upstreamRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.reqs) - 1; i >= 0; i-- {
		if u.reqs[i].Path == path {
			return u.reqs[i]
		}
	}
	t.Fatalf("the upstream never received %s (it received %d requests)", path, len(u.reqs))
	return upstreamRequest{}
}

// all returns every request the upstream received, in order (the
// browser's own, such as /favicon.ico, among them).
func (u *upstream) all() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

// headerDump lists h for failure messages.
func headerDump(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(h[k], ", "))
	}
	return b.String()
}

// rpBrowser is headless Chromium for one test.
type rpBrowser struct {
	t   *testing.T
	ctx context.Context
}

// newRPBrowser starts headless Chromium, or skips without it (a failure
// with LATCH_TEST_BROWSER=1). It is stopped at cleanup.
func newRPBrowser(t *testing.T) *rpBrowser {
	t.Helper()
	ctx := browsertest.Start(t, "the relying-party login", 5*time.Minute)
	return &rpBrowser{t: t, ctx: ctx}
}

// run runs chromedp actions, failing the test with step, the page the
// browser is on and diag (the RP's and latch's logs) when one fails.
func (b *rpBrowser) run(step string, diag func() string, actions ...chromedp.Action) {
	b.t.Helper()
	// A step's hang guard, shorter than the test's so that the page it
	// stopped on can still be read for the failure message.
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	err := chromedp.Run(ctx, actions...)
	cancel()
	if err != nil {
		var loc, body string
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Text("body", &body, chromedp.ByQuery))
		cancel()
		b.t.Fatalf("%s: %v\nbrowser at %s showing:\n%s\n%s", step, err, loc, body, diag())
	}
}

// location is the URL the browser shows.
func (b *rpBrowser) location(diag func() string) string {
	b.t.Helper()
	var loc string
	b.run("read the location", diag, chromedp.Location(&loc))
	return loc
}

// signIn opens start (a page the RP protects), which sends the browser
// to latch; it signs in on latch's login form, allows on the consent
// page when latch shows one, and waits for the upstream's page behind
// the RP. It returns the URL the browser ends on.
func (b *rpBrowser) signIn(start, issuer, username, password string, diag func() string) string {
	b.t.Helper()
	var loc string
	b.run("open "+start+" and reach latch's login form", diag,
		chromedp.Navigate(start),
		chromedp.WaitVisible("#password", chromedp.ByID),
		chromedp.Location(&loc),
	)
	if !strings.HasPrefix(loc, issuer+"/") {
		b.t.Fatalf("the RP sent the browser to %s, not to latch at %s\n%s", loc, issuer, diag())
	}
	var seen string
	b.run("sign in on latch's login form", diag,
		chromedp.SendKeys("#username", username, chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		// Either latch asks for consent, or the RP already shows the
		// upstream's page.
		chromedp.WaitVisible("#allow, #upstream", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("allow") ? "consent" : "upstream"`, &seen),
	)
	if seen == "consent" {
		b.run("allow on latch's consent page", diag,
			chromedp.Click("#allow", chromedp.ByID),
			chromedp.WaitVisible("#upstream", chromedp.ByID),
		)
	}
	return b.location(diag)
}
