package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latch-auth/latch/registry"
)

// TestBrowser_AccountPage_States_KeyboardAndScreenshots drives the
// account page in Chromium: signed out it sends the browser to the login
// page and back; signed in it lists this browser and a session on another
// device, and an application holding a grant; every field is labelled and
// the forms are reached by keyboard; removing access, a refused and then a
// successful password change, and signing out the other device each show
// their result. A screenshot of each state is kept as a test artefact.
func TestBrowser_AccountPage_States_KeyboardAndScreenshots(t *testing.T) {
	br := newBrowser(t)
	e, issuer := serveLatchHTTP(t, func(e *env) http.Handler { return e.h })
	eval := func(js string) string {
		t.Helper()
		var s string
		br.run("evaluate", chromedp.Evaluate(js, &s))
		return s
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		br.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}

	// Another device of alice's, and an application she allowed there.
	phone := newAgent(e)
	phone.ua, phone.remote, phone.origin = uaSafariIPhone, "198.51.100.7:5555", issuer
	phone.mustLogin("alice", alicePassword)
	app := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false; s.Name = "Photo Print" })
	w := phone.get(authorizeURL(app))
	w = phone.post("/oauth2/authorize", consentForm(t, w.Body.String(), "allow"))
	if status, _ := e.redeem(app, callback(t, w).Get("code")); status != 200 {
		t.Fatalf("redeem: %d", status)
	}

	br.run("viewport", chromedp.EmulateViewport(520, 320))
	br.run("signed out: to the login page",
		chromedp.Navigate(issuer+"/account"),
		chromedp.WaitVisible("#password", chromedp.ByID),
		chromedp.SendKeys("#username", "alice", chromedp.ByID),
		chromedp.SendKeys("#password", alicePassword, chromedp.ByID),
		chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#sessions", chromedp.ByID),
	)
	if loc := eval(`location.href`); loc != issuer+"/account" {
		t.Errorf("after signing in the browser is at %s, want back at /account", loc)
	}
	sessions := text("#sessions")
	for _, want := range []string{"Chrome (headless) on Linux", "this browser", "Safari on iPhone", "198.51.100.7"} {
		if !strings.Contains(sessions, want) {
			t.Errorf("sessions list lacks %q:\n%s", want, sessions)
		}
	}
	if apps := text("#apps"); !strings.Contains(apps, "Photo Print") {
		t.Errorf("apps list lacks Photo Print:\n%s", apps)
	}
	if unlabelled := eval(`[...document.querySelectorAll("input:not([type=hidden]):not([hidden])")].filter(i => i.labels.length === 0).map(i => i.name).join(" ")`); unlabelled != "" {
		t.Errorf("fields without a label: %s", unlabelled)
	}
	if unnamed := eval(`[...document.querySelectorAll("button")].filter(b => !(b.getAttribute("aria-label") || b.textContent.trim())).length + ""`); unnamed != "0" {
		t.Errorf("%s buttons without an accessible name", unnamed)
	}
	br.screenshot("account")

	// Keyboard: Tab reaches every control, in page order, through the
	// password form.
	var order []string
	for range 20 {
		br.run("tab", chromedp.KeyEvent("\t"))
		id := eval(`document.activeElement.id || document.activeElement.getAttribute("aria-label") || document.activeElement.textContent.trim()`)
		order = append(order, id)
		if id == "change-password" {
			break
		}
	}
	joined := strings.Join(order, " | ")
	for _, want := range []string{"Sign out Safari on iPhone", "logout-everywhere", "Remove access of Photo Print", "current-password", "new-password", "confirm-password", "change-password"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Tab order lacks %q: %s", want, joined)
		}
	}
	if i, j := strings.Index(joined, "current-password"), strings.Index(joined, "confirm-password"); i < 0 || j < i {
		t.Errorf("Tab order of the password form: %s", joined)
	}

	br.run("remove access",
		chromedp.Click(`button[aria-label="Remove access of Photo Print"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#account-notice", chromedp.ByID),
	)
	if n := text("#account-notice"); !strings.Contains(n, "access has been removed") || eval(`document.querySelector("#no-apps") ? "none" : "some"`) != "none" {
		t.Errorf("after remove access: notice %q", n)
	}
	br.screenshot("account-access-removed")

	br.run("wrong current password",
		chromedp.SendKeys("#current-password", "not my password", chromedp.ByID),
		chromedp.SendKeys("#new-password", "an entirely new passphrase", chromedp.ByID),
		chromedp.SendKeys("#confirm-password", "an entirely new passphrase", chromedp.ByID),
		chromedp.Click("#change-password", chromedp.ByID),
		chromedp.WaitVisible("#password-error", chromedp.ByID),
	)
	if got := eval(`document.querySelector("#current-password").getAttribute("aria-describedby")`); got != "password-error" {
		t.Errorf("the refused field is described by %q, want password-error", got)
	}
	br.screenshot("account-password-error")

	br.run("change password",
		chromedp.SendKeys("#current-password", alicePassword, chromedp.ByID),
		chromedp.SendKeys("#new-password", "an entirely new passphrase", chromedp.ByID),
		chromedp.SendKeys("#confirm-password", "an entirely new passphrase", chromedp.ByID),
		chromedp.Click("#change-password", chromedp.ByID),
		chromedp.WaitVisible("#account-notice", chromedp.ByID),
	)
	if n := text("#account-notice"); !strings.Contains(n, "password has been changed") {
		t.Errorf("after the change: notice %q", n)
	}
	if who := phone.signedInAs(); who != "" {
		t.Errorf("the phone is still signed in after the password change (%q)", who)
	}
	if s := text("#sessions"); strings.Contains(s, "iPhone") || !strings.Contains(s, "this browser") {
		t.Errorf("sessions after the change:\n%s", s)
	}
	br.screenshot("account-password-changed")

	// A second device again, then signed out from here.
	phone = newAgent(e)
	phone.ua, phone.origin = uaFirefoxWindows, issuer
	phone.mustLogin("alice", "an entirely new passphrase")
	br.run("reload", chromedp.Navigate(issuer+"/account"), chromedp.WaitVisible("#sessions", chromedp.ByID))
	br.run("sign out the other device",
		chromedp.Click(`button[aria-label^="Sign out Firefox on Windows"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#account-notice", chromedp.ByID),
	)
	if who := phone.signedInAs(); who != "" {
		t.Errorf("the other device is still signed in (%q)", who)
	}
	br.screenshot("account-session-ended")

	br.run("sign out here", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#password", chromedp.ByID))
	if loc := eval(`location.pathname + location.search`); loc != "/login?signed_out=1" {
		t.Errorf("after sign-out the browser is at %s", loc)
	}
}
