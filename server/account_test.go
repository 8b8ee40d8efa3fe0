package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"
)

const (
	uaFirefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)

var sidRE = regexp.MustCompile(`name="sid" value="([^"]+)"`)

// accountPage returns the signed-in account page's body.
func (a *agent) accountPage(query ...string) string {
	a.t.Helper()
	w := a.get("/account" + strings.Join(query, ""))
	if w.Code != http.StatusOK {
		a.t.Fatalf("GET /account: %d %q", w.Code, w.Header().Get("Location"))
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
		a.t.Errorf("account page CSP %q", csp)
	}
	return w.Body.String()
}

func TestAccount_SignedOut_RedirectsToLoginAndBack(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	w := a.get("/account")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?return_to=%2Faccount" {
		t.Fatalf("GET /account signed out: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := a.login("alice", alicePassword, "/account"); w.Header().Get("Location") != "/account" {
		t.Fatalf("login returns to %q, want /account", w.Header().Get("Location"))
	}
	if body := a.accountPage(); !strings.Contains(body, `<strong id="username">alice</strong>`) {
		t.Fatalf("account page:\n%s", body)
	}
}

func TestAccount_Sessions_ListedWithDevice_SignOutOneOrOwn(t *testing.T) {
	e, _, _ := loginEnv(t)
	laptop, phone := newAgent(e), newAgent(e)
	laptop.ua, phone.ua = uaFirefoxWindows, uaSafariIPhone
	phone.remote = "198.51.100.7:5555"
	laptop.mustLogin("alice", alicePassword)
	phone.mustLogin("alice", alicePassword)

	body := laptop.accountPage()
	for _, want := range []string{"Firefox on Windows", "Safari on iPhone", "Address 192.0.2.10", "Address 198.51.100.7", "this browser"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "Firefox on Windows"), strings.Index(body, "Safari on iPhone"); i < 0 || j < i {
		t.Error("the current session is not listed first")
	}
	sids := sidRE.FindAllStringSubmatch(body, -1)
	if len(sids) != 2 {
		t.Fatalf("%d sessions listed, want 2", len(sids))
	}
	phoneSID := sids[1][1]

	// A forged form (no token) is refused and ends nothing.
	if w := laptop.post("/account/sessions/end", url.Values{"sid": {phoneSID}}); w.Code != http.StatusForbidden {
		t.Fatalf("without csrf_token: %d", w.Code)
	}
	csrf := csrfOf(t, body)
	w := laptop.post("/account/sessions/end", url.Values{"sid": {phoneSID}, "csrf_token": {csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account?done=session" {
		t.Fatalf("end phone's session: %d %q", w.Code, w.Header().Get("Location"))
	}
	if who := phone.signedInAs(); who != "" {
		t.Errorf("the phone is still signed in as %q", who)
	}
	body = laptop.accountPage("?done=session")
	if strings.Contains(body, "Safari on iPhone") || !strings.Contains(body, "That session has been signed out.") {
		t.Errorf("after ending the phone's session:\n%s", body)
	}
	// Ending this browser's own session is a logout.
	own := sidRE.FindStringSubmatch(body)[1]
	w = laptop.post("/account/sessions/end", url.Values{"sid": {own}, "csrf_token": {csrf}})
	if w.Header().Get("Location") != "/login?signed_out=1" || laptop.signedInAs() != "" {
		t.Errorf("end own session: %q, still signed in as %q", w.Header().Get("Location"), laptop.signedInAs())
	}
}

func TestAccount_RemoveAccess_RevokesRefreshFamiliesAndConsent(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false; s.Name = "Photo Printer" })
	mine := e.webClient(func(s *registry.ClientSpec) { s.Name = "Our Portal" })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	if body := a.accountPage(); !strings.Contains(body, `id="no-apps"`) {
		t.Fatal("apps listed before any grant")
	}
	w := a.get(authorizeURL(c))
	w = a.post("/oauth2/authorize", consentForm(t, w.Body.String(), "allow"))
	status, tr := e.redeem(c, callback(t, w).Get("code"))
	if status != 200 || tr.RefreshToken == "" {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
	status, own := e.redeem(mine, callback(t, a.get(authorizeURL(mine))).Get("code"))
	if status != 200 {
		t.Fatalf("redeem first-party: %d", status)
	}

	body := a.accountPage()
	for _, want := range []string{"Photo Printer", "Our Portal", "can act while you are away", "<code>read</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	w = a.post("/account/apps/remove", url.Values{"client_id": {c.ID}, "csrf_token": {csrfOf(t, body)}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account?done=app" {
		t.Fatalf("remove access: %d %q", w.Code, w.Header().Get("Location"))
	}
	if status, _ := e.refresh(c, tr.RefreshToken); status == 200 {
		t.Error("the removed app's refresh token still works")
	}
	if e.active(c, tr.AccessToken) {
		t.Error("the removed app's access token is still active")
	}
	if status, _ := e.refresh(mine, own.RefreshToken); status != 200 {
		t.Error("removing one app revoked another's grant")
	}
	body = a.accountPage("?done=app")
	if strings.Contains(body, "Photo Printer") || !strings.Contains(body, "The application&#39;s access has been removed.") {
		t.Errorf("after removing access:\n%s", body)
	}
	// The consent went too: the next authorization asks again.
	if w := a.get(authorizeURL(c)); !isConsentPage(w) {
		t.Errorf("authorize after removing access: %d %q, want the consent page", w.Code, w.Header().Get("Location"))
	}
}

func TestAccount_ChangePassword(t *testing.T) {
	e, _, _ := loginEnv(t)
	a, other := newAgent(e), newAgent(e)
	a.mustLogin("alice", alicePassword)
	other.mustLogin("alice", alicePassword)
	csrf := csrfOf(t, a.accountPage())
	const newPassword = "a much longer new passphrase"
	change := func(current, pw, confirm string) *http.Response {
		t.Helper()
		return a.post("/account/password", url.Values{"csrf_token": {csrf}, "current_password": {current},
			"new_password": {pw}, "confirm_password": {confirm}}).Result()
	}
	for _, tc := range []struct {
		current, pw, confirm string
		status               int
		msg                  string
	}{
		{"", newPassword, newPassword, 400, "Enter your current password"},
		{"wrong password!!", newPassword, newPassword, 422, "Your current password is not correct."},
		{alicePassword, newPassword, newPassword + "x", 400, "differ"},
		{alicePassword, "short", "short", 400, "The new password is not accepted"},
	} {
		res := change(tc.current, tc.pw, tc.confirm)
		body := readAll(t, res.Body)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.msg) || !strings.Contains(body, `role="alert"`) {
			t.Errorf("change(%q, %q, %q): %d, want %d with %q", tc.current, tc.pw, tc.confirm, res.StatusCode, tc.status, tc.msg)
		}
	}
	if who := other.signedInAs(); who != "alice" {
		t.Fatal("a refused change ended another session")
	}
	res := change(alicePassword, newPassword, newPassword)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account?done=password" {
		t.Fatalf("change: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if who := a.signedInAs(); who != "alice" {
		t.Errorf("this browser is signed out after its own change (%q)", who)
	}
	if who := other.signedInAs(); who != "" {
		t.Errorf("the other session survived the password change (%q)", who)
	}
	if w := newAgent(e).login("alice", alicePassword, ""); w.Code == http.StatusSeeOther {
		t.Error("the old password still signs in")
	}
	newAgent(e).mustLogin("alice", newPassword)
}

func TestAccount_ChangePassword_ThrottledLikeLogin(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	csrf := csrfOf(t, a.accountPage())
	throttled := false
	for i := 0; i < 30 && !throttled; i++ {
		w := a.post("/account/password", url.Values{"csrf_token": {csrf}, "current_password": {"guess number " + string(rune('a'+i))},
			"new_password": {"x"}, "confirm_password": {"x"}})
		throttled = w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") != ""
	}
	if !throttled {
		t.Fatal("30 wrong current passwords were never throttled")
	}
	// Throttled, even the right password is refused, as at /login.
	w := a.post("/account/password", url.Values{"csrf_token": {csrf}, "current_password": {alicePassword},
		"new_password": {"a much longer new passphrase"}, "confirm_password": {"a much longer new passphrase"}})
	if w.Code != http.StatusTooManyRequests {
		t.Errorf("right password during the back-off: %d", w.Code)
	}
	if w := newAgent(e).login("alice", alicePassword, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("login during the back-off the form started: %d", w.Code)
	}
}

func TestAccount_ShowsEmailAndWhetherVerified(t *testing.T) {
	e, users, _ := loginEnv(t)
	mustCreateUser(t, users, registry.UserSpec{Username: "carol", Password: alicePassword + "-carol",
		ProfileSpec: registry.ProfileSpec{Email: "carol@example.com", EmailVerified: true}})
	a := newAgent(e)
	a.mustLogin("carol", alicePassword+"-carol")
	if body := a.accountPage(); !strings.Contains(body, "Email carol@example.com (verified)") {
		t.Errorf("account page lacks the verified email:\n%s", body)
	}
	b := newAgent(e)
	b.mustLogin("alice", alicePassword)
	if body := b.accountPage(); strings.Contains(body, `id="email"`) {
		t.Error("an email line for a user without one")
	}
}
