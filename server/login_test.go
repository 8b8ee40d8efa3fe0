package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/throttle"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/server"
)

const alicePassword = "correct horse battery"

// agent is a browser as far as the server can tell: it keeps cookies
// (by hand: net/http/cookiejar never sends Secure cookies to a test
// recorder's http URLs), sends Origin on POSTs, and comes from one address.
type agent struct {
	t      testing.TB
	h      http.Handler
	jar    map[string]*http.Cookie
	remote string
	origin string // sent on POST; "" sends none
	ua     string // User-Agent; "" sends none
}

func newAgent(e *env) *agent {
	return &agent{t: e.t, h: e.h, jar: map[string]*http.Cookie{}, remote: "192.0.2.10:4711", origin: testIssuer}
}

func (a *agent) do(method, target string, form url.Values, hdr http.Header) *httptest.ResponseRecorder {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = a.remote
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost && a.origin != "" {
		r.Header.Set("Origin", a.origin)
	}
	if a.ua != "" {
		r.Header.Set("User-Agent", a.ua)
	}
	for _, c := range a.jar {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(a.jar, c.Name)
		} else {
			a.jar[c.Name] = c
		}
	}
	return w
}

func (a *agent) get(target string) *httptest.ResponseRecorder {
	return a.do(http.MethodGet, target, nil, nil)
}

func (a *agent) post(target string, form url.Values) *httptest.ResponseRecorder {
	return a.do(http.MethodPost, target, form, nil)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrfOf returns the csrf_token of the first form in body.
func csrfOf(tb testing.TB, body string) string {
	tb.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		tb.Fatalf("no csrf_token in page:\n%s", body)
	}
	return m[1]
}

// loginToken opens the login form and returns its CSRF token
// (prompt=login: the form even when signed in).
func (a *agent) loginToken() string {
	a.t.Helper()
	w := a.get("/login?prompt=login")
	if w.Code != http.StatusOK {
		a.t.Fatalf("GET /login: %d %s", w.Code, w.Body)
	}
	return csrfOf(a.t, w.Body.String())
}

func (a *agent) login(username, pw, returnTo string) *httptest.ResponseRecorder {
	a.t.Helper()
	tok := a.loginToken()
	return a.post("/login", url.Values{"username": {username}, "password": {pw}, "csrf_token": {tok}, "return_to": {returnTo}})
}

func (a *agent) mustLogin(username, pw string) string {
	a.t.Helper()
	w := a.login(username, pw, "")
	if w.Code != http.StatusSeeOther {
		a.t.Fatalf("login %s: %d %s", username, w.Code, w.Body)
	}
	return a.sessionID()
}

func (a *agent) sessionID() string {
	if c := a.jar["__Host-latch_session"]; c != nil {
		return c.Value
	}
	return ""
}

// signedInAs returns the username GET / shows, or "" when it redirects to
// the login page.
func (a *agent) signedInAs() string {
	a.t.Helper()
	w := a.get("/")
	switch w.Code {
	case http.StatusSeeOther:
		if loc := w.Header().Get("Location"); loc != "/login" {
			a.t.Fatalf("GET / redirects to %q", loc)
		}
		return ""
	case http.StatusOK:
		m := regexp.MustCompile(`<strong id="username">([^<]*)</strong>`).FindStringSubmatch(w.Body.String())
		if m == nil {
			a.t.Fatalf("account page without a username:\n%s", w.Body)
		}
		return m[1]
	}
	a.t.Fatalf("GET /: %d %s", w.Code, w.Body)
	return ""
}

// loginEnv is an env with cheap argon2 parameters (for the dummy
// verification too) and the user alice.
func loginEnv(t testing.TB, mutate ...func(*server.Config)) (*env, *registry.Users, *registry.UserView) {
	t.Helper()
	e := newEnv(t, append([]func(*server.Config){func(c *server.Config) { c.PasswordParams = cheapParams }}, mutate...)...)
	users := newUsers(e)
	alice := mustCreateUser(t, users, registry.UserSpec{Username: "alice", Password: alicePassword})
	return e, users, alice
}

// metric returns the value of one series of /metrics, e.g.
// `latch_login_attempts_total{result="success"}`.
func metric(tb testing.TB, e *env, series string) float64 {
	tb.Helper()
	body := e.get("/metrics", nil).Body.String()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatalf("/metrics has no series %s", series)
	return 0
}

func attempts(tb testing.TB, e *env, result string) float64 {
	return metric(tb, e, `latch_login_attempts_total{result="`+result+`"}`)
}

func TestLogin_SetsHardenedSessionCookie(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)

	w := a.get("/login?return_to=" + url.QueryEscape("/oauth2/authorize?client_id=x&state=y"))
	if w.Code != 200 {
		t.Fatalf("GET /login: %d", w.Code)
	}
	lc := a.jar["__Host-latch_login"]
	if lc == nil || !lc.Secure || !lc.HttpOnly || lc.Path != "/" || lc.Domain != "" || lc.SameSite != http.SameSiteStrictMode || lc.MaxAge <= 0 {
		t.Fatalf("login CSRF cookie = %+v, want __Host-, Secure, HttpOnly, Path=/, no Domain, SameSite=Strict, short-lived", lc)
	}
	body := w.Body.String()
	for _, want := range []string{`<html lang="en">`, `<label for="username">`, `autocomplete="username"`,
		`autocomplete="current-password"`, `name="return_to" value="/oauth2/authorize?client_id=x&amp;state=y"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}

	w = a.post("/login", url.Values{"username": {" Alice "}, "password": {alicePassword}, "csrf_token": {csrfOf(t, body)},
		"return_to": {"/oauth2/authorize?client_id=x&state=y"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/oauth2/authorize?client_id=x&state=y" {
		t.Fatalf("POST /login: %d Location %q\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var setCookie string
	for _, h := range w.Header().Values("Set-Cookie") {
		if strings.HasPrefix(h, "__Host-latch_session=") {
			setCookie = h
		}
	}
	// Exactly these attributes: no Domain, no Expires/Max-Age (ends with
	// the browser; the server's timeouts end it sooner).
	raw := a.sessionID()
	if want := "__Host-latch_session=" + raw + "; Path=/; HttpOnly; Secure; SameSite=Lax"; setCookie != want {
		t.Fatalf("Set-Cookie = %q\nwant       %q", setCookie, want)
	}
	if len(raw) != 43 {
		t.Fatalf("session ID %q: want 32 bytes of base64url", raw)
	}
	if _, ok := a.jar["__Host-latch_login"]; ok {
		t.Error("the login CSRF cookie outlived the login")
	}
	h := sha256.Sum256([]byte(raw))
	sess, err := e.db.Session(context.Background(), h[:])
	if err != nil {
		t.Fatalf("the store has no session under SHA-256 of the cookie: %v", err)
	}
	now := e.clock.Now()
	if !sess.AuthTime.Equal(now) || !sess.IdleExpiresAt.Equal(now.Add(30*time.Minute)) || !sess.ExpiresAt.Equal(now.Add(12*time.Hour)) {
		t.Errorf("session times = auth %v idle %v abs %v, want now, +30m, +12h", sess.AuthTime, sess.IdleExpiresAt, sess.ExpiresAt)
	}
	if got := a.signedInAs(); got != "alice" {
		t.Fatalf("account page shows %q", got)
	}
	if attempts(t, e, "success") != 1 {
		t.Error("success not counted")
	}
}

func TestLogin_ReturnTo_OnlyLocalPaths(t *testing.T) {
	e, _, _ := loginEnv(t)
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/oauth2/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", "/oauth2/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{" /x", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/a\\b", "/"},
		{"/caf\u00e9", "/"},
		{"/" + strings.Repeat("a", 5000), "/"},
	} {
		a := newAgent(e)
		w := a.login("alice", alicePassword, tc.in)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tc.want {
			t.Errorf("return_to %q: %d Location %q, want %q", tc.in, w.Code, w.Header().Get("Location"), tc.want)
		}
	}
}

func TestInvariant6_SessionFixation_PlantedIDIsReplacedAndDead(t *testing.T) {
	e, users, _ := loginEnv(t)
	mallory := mustCreateUser(t, users, registry.UserSpec{Username: "mallory", Password: "mallory's passphrase"})

	for name, plant := range map[string]func() string{
		// The attacker's own live session, planted in the victim's browser.
		"attacker's live session": func() string {
			raw := strings.Repeat("M", 43)
			mustSession(t, e, mallory.ID, raw)
			return raw
		},
		// An ID the server never issued.
		"unknown ID": func() string { return strings.Repeat("U", 43) },
	} {
		t.Run(name, func(t *testing.T) {
			a := newAgent(e)
			planted := plant()
			a.jar["__Host-latch_session"] = &http.Cookie{Name: "__Host-latch_session", Value: planted}
			got := a.mustLogin("alice", alicePassword)
			if got == planted || got == "" {
				t.Fatalf("session ID after login = %q, planted %q: not regenerated", got, planted)
			}
			h := sha256.Sum256([]byte(planted))
			if sessionExists(t, e, h[:]) {
				t.Fatal("the planted session survived the login")
			}
			if a.signedInAs() != "alice" {
				t.Fatal("not signed in as alice")
			}
			// The planted ID, replayed, is logged out.
			b := newAgent(e)
			b.jar["__Host-latch_session"] = &http.Cookie{Name: "__Host-latch_session", Value: planted}
			if who := b.signedInAs(); who != "" {
				t.Fatalf("the planted ID is signed in as %q", who)
			}
		})
	}
}

func TestLogin_CSRF_RefusedWith403(t *testing.T) {
	e, _, _ := loginEnv(t)
	cases := []struct {
		name  string
		setup func(a *agent, form url.Values) http.Header
	}{
		{"missing token", func(a *agent, f url.Values) http.Header { f.Del("csrf_token"); return nil }},
		{"wrong token", func(a *agent, f url.Values) http.Header { f.Set("csrf_token", strings.Repeat("A", 43)); return nil }},
		{"token of another browser's form", func(a *agent, f url.Values) http.Header {
			f.Set("csrf_token", newAgent(e).loginToken())
			return nil
		}},
		{"no login cookie", func(a *agent, f url.Values) http.Header { delete(a.jar, "__Host-latch_login"); return nil }},
		{"token in the URL, not the body", func(a *agent, f url.Values) http.Header { f.Del("csrf_token"); return nil }},
		{"cross-origin Origin", func(a *agent, f url.Values) http.Header { a.origin = "https://evil.example"; return nil }},
		{"Origin of another port", func(a *agent, f url.Values) http.Header { a.origin = "https://auth.test:8443"; return nil }},
		{"Origin null", func(a *agent, f url.Values) http.Header { a.origin = "null"; return nil }},
		{"cross-site Sec-Fetch-Site without Origin", func(a *agent, f url.Values) http.Header {
			a.origin = ""
			return http.Header{"Sec-Fetch-Site": {"cross-site"}}
		}},
		{"same-site (a sibling subdomain) Sec-Fetch-Site", func(a *agent, f url.Values) http.Header {
			a.origin = ""
			return http.Header{"Sec-Fetch-Site": {"same-site"}}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(e)
			tok := a.loginToken()
			form := url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {tok}}
			hdr := tc.setup(a, form)
			target := "/login"
			if tc.name == "token in the URL, not the body" {
				target += "?csrf_token=" + tok
			}
			w := a.do(http.MethodPost, target, form, hdr)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403\n%s", w.Code, w.Body)
			}
			if a.sessionID() != "" {
				t.Fatal("a session cookie was set")
			}
			body := w.Body.String()
			if !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "did not come from this site") {
				t.Fatalf("403 page lacks the explanation:\n%s", body)
			}
			if got := attempts(t, e, "csrf"); got != float64(i+1) {
				t.Fatalf("csrf attempts = %v, want %d", got, i+1)
			}
			// The 403 page is a fresh form that works from this origin.
			a.origin = testIssuer
			w = a.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {csrfOf(t, body)}})
			if w.Code != http.StatusSeeOther {
				t.Fatalf("retry from the 403 page: %d\n%s", w.Code, w.Body)
			}
		})
	}

	t.Run("a client without Origin or Sec-Fetch-Site is judged by the token", func(t *testing.T) {
		a := newAgent(e)
		a.origin = ""
		if w := a.login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
			t.Fatalf("status %d, want 303", w.Code)
		}
	})
}

func TestLogout_EndsSessionAndRefusesCSRF(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	raw := a.mustLogin("alice", alicePassword)
	tok := csrfOf(t, a.get("/").Body.String())

	for name, try := range map[string]func() *httptest.ResponseRecorder{
		"missing token": func() *httptest.ResponseRecorder { return a.post("/logout", url.Values{}) },
		"wrong token": func() *httptest.ResponseRecorder {
			return a.post("/logout", url.Values{"csrf_token": {otherFirst(tok)}})
		},
		"login-form token": func() *httptest.ResponseRecorder {
			return a.post("/logout", url.Values{"csrf_token": {newAgent(e).loginToken()}})
		},
		"cross-origin": func() *httptest.ResponseRecorder {
			b := *a
			b.origin = "https://evil.example"
			return b.post("/logout", url.Values{"csrf_token": {tok}})
		},
	} {
		w := try()
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `role="alert"`) {
			t.Fatalf("%s: %d, want the 403 page\n%s", name, w.Code, w.Body)
		}
		if a.signedInAs() != "alice" {
			t.Fatalf("%s: the refused logout ended the session", name)
		}
	}

	w := a.post("/logout", url.Values{"csrf_token": {tok}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?signed_out=1" {
		t.Fatalf("logout: %d %q", w.Code, w.Header().Get("Location"))
	}
	if !strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), "\n"), "__Host-latch_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax") {
		t.Fatalf("logout did not delete the cookie: %q", w.Header().Values("Set-Cookie"))
	}
	h := sha256.Sum256([]byte(raw))
	if sessionExists(t, e, h[:]) {
		t.Fatal("the session record survived logout")
	}
	// The old cookie, replayed, is logged out.
	b := newAgent(e)
	b.jar["__Host-latch_session"] = &http.Cookie{Name: "__Host-latch_session", Value: raw}
	if who := b.signedInAs(); who != "" {
		t.Fatalf("the logged-out cookie still signs in %q", who)
	}
	if w := a.get("/login?signed_out=1"); !strings.Contains(w.Body.String(), "You have signed out.") {
		t.Error("no signed-out notice")
	}
	// Logging out again, without a session, just goes to the login page.
	b.origin = "https://evil.example"
	if w := b.post("/logout", url.Values{}); w.Code != http.StatusSeeOther {
		t.Fatalf("logout without a session: %d", w.Code)
	}
}

func TestLogout_Everywhere_EndsEveryOneOfTheUsersSessions(t *testing.T) {
	e, users, _ := loginEnv(t)
	mustCreateUser(t, users, registry.UserSpec{Username: "bob", Password: "bob's own password"})
	laptop, phone, bob := newAgent(e), newAgent(e), newAgent(e)
	laptop.mustLogin("alice", alicePassword)
	phone.mustLogin("alice", alicePassword)
	bob.mustLogin("bob", "bob's own password")

	tok := csrfOf(t, laptop.get("/").Body.String())
	w := laptop.post("/logout", url.Values{"csrf_token": {tok}, "everywhere": {"1"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?signed_out=all" {
		t.Fatalf("logout everywhere: %d %q", w.Code, w.Header().Get("Location"))
	}
	if laptop.signedInAs() != "" || phone.signedInAs() != "" {
		t.Fatal("an alice session survived logout everywhere")
	}
	if bob.signedInAs() != "bob" {
		t.Fatal("logout everywhere ended another user's session")
	}
}

// TestLogin_UserEnumeration_SameAnswerAndSameArgon2Work proves the login
// does not tell which usernames exist: an unknown user, a wrong password,
// a disabled user and a user without a password all get the same status
// and a byte-identical page, and each costs exactly one argon2
// verification (a dummy one when there is no hash to check), counted
// through the server's hook around the password package.
func TestLogin_UserEnumeration_SameAnswerAndSameArgon2Work(t *testing.T) {
	e, users, _ := loginEnv(t)
	var mu sync.Mutex
	calls := map[string]int{}
	server.SetPasswordHook(e.srv, func(kind string) { mu.Lock(); calls[kind]++; mu.Unlock() })

	mustCreateUser(t, users, registry.UserSpec{Username: "dora", Password: "dora's own password", Disabled: true})
	nopw := mustCreateUser(t, users, registry.UserSpec{Username: "nopass", Password: "to be removed soon"})
	u, err := e.db.User(context.Background(), nopw.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash = ""
	if err := e.db.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}

	a := newAgent(e)
	tok := a.loginToken()
	try := func(username, pw string) (int, string, http.Header, map[string]int) {
		mu.Lock()
		clear(calls)
		mu.Unlock()
		// A new address each time keeps the per-address throttle out of it.
		a.remote = fmt.Sprintf("198.51.100.%d:1000", len(username)+len(pw))
		w := a.post("/login", url.Values{"username": {username}, "password": {pw}, "csrf_token": {tok}})
		mu.Lock()
		defer mu.Unlock()
		// The request ID differs for every request whoever logs in: it
		// tells nothing about the account.
		h := w.Header().Clone()
		h.Del(server.HeaderRequestID)
		return w.Code, w.Body.String(), h, maps(calls)
	}
	wantCode, wantBody, wantHdr, c := try("alice", "wrong password")
	if wantCode != http.StatusUnprocessableEntity || !strings.Contains(wantBody, "Incorrect username or password.") {
		t.Fatalf("wrong password: %d\n%s", wantCode, wantBody)
	}
	if c["verify"] != 1 || c["dummy"] != 0 {
		t.Fatalf("wrong password: argon2 calls %v, want one verify", c)
	}
	for _, tc := range []struct{ name, user, pw, kind string }{
		{"unknown user", "zed", "wrong password", "dummy"},
		{"unknown user, another case of a known name's letters", "ALICEX", "wrong password", "dummy"},
		{"name that cannot exist", "a b", "wrong password", "dummy"},
		{"disabled user, right password", "dora", "dora's own password", "verify"},
		{"user without a password", "nopass", "to be removed soon", "dummy"},
	} {
		code, body, hdr, c := try(tc.user, tc.pw)
		if code != wantCode || body != wantBody {
			t.Errorf("%s: %d, body differs from the wrong-password answer:\n%s", tc.name, code, body)
		}
		if fmt.Sprint(hdr) != fmt.Sprint(wantHdr) {
			t.Errorf("%s: headers differ:\n%v\n%v", tc.name, hdr, wantHdr)
		}
		if c[tc.kind] != 1 || len(c) != 1 {
			t.Errorf("%s: argon2 calls %v, want exactly one %s", tc.name, c, tc.kind)
		}
	}
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestLogin_Throttle_PerAccount_BacksOffExponentially runs on the fixed
// clock: 5 free failures, then 1s, 2s, 4s, 8s (the cap here); during a
// back-off the right password gets the very answer a wrong one gets, and
// the back-off ends by itself. Like every TestLogin_Throttle_ test it runs
// on the in-memory throttle and, with LATCH_TEST_REDIS, on Redis; the
// latch_login_backing_off gauge counts the node's memory only.
func TestLogin_Throttle_PerAccount_BacksOffExponentially(t *testing.T) {
	forEachThrottle(t, func(t *testing.T, th throttleBackend) {
		e, _, _ := loginEnv(t, th.config, func(c *server.Config) { c.LoginAccountThrottle.Max = 8 * time.Second })
		a := newAgent(e)
		tok := a.loginToken()
		n := 0
		try := func(pw string) *httptest.ResponseRecorder {
			// Every attempt from another address: the back-off is the account's.
			n++
			a.remote = fmt.Sprintf("203.0.113.%d:1000", n)
			return a.post("/login", url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {tok}})
		}
		refused := func(wantRetry string) {
			t.Helper()
			right, wrong := try(alicePassword), try("wrong password")
			for _, w := range []*httptest.ResponseRecorder{right, wrong} {
				if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != wantRetry {
					t.Fatalf("during the back-off: %d Retry-After %q, want 429 and %s\n%s", w.Code, w.Header().Get("Retry-After"), wantRetry, w.Body)
				}
			}
			if right.Body.String() != wrong.Body.String() {
				t.Fatalf("during the back-off the right password is answered differently:\n%s\n%s", right.Body, wrong.Body)
			}
		}
		fail := func() {
			t.Helper()
			if w := try("wrong password"); w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("wrong password: %d, want 422\n%s", w.Code, w.Body)
			}
		}
		for range 4 {
			fail()
		}
		if w := try("wrong password"); w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("5th failure: %d", w.Code)
		}
		refused("1")
		if th.local && metric(t, e, `latch_login_backing_off{scope="account"}`) != 1 {
			t.Error("the gauge does not show the account backing off")
		}
		for _, backoff := range []int{1, 2, 4, 8, 8} { // the back-off the last failure started
			// Just before its end it still holds; at its end it is over, and
			// the next failure doubles it.
			e.clock.Advance(time.Duration(backoff)*time.Second - time.Millisecond)
			refused("1")
			e.clock.Advance(time.Millisecond)
			fail()
			next := min(2*backoff, 8)
			refused(strconv.Itoa(next))
		}
		// It ends by itself, and then the right password works.
		e.clock.Advance(8 * time.Second)
		if th.local && metric(t, e, `latch_login_backing_off{scope="account"}`) != 0 {
			t.Error("the gauge still shows the account backing off")
		}
		if w := try(alicePassword); w.Code != http.StatusSeeOther {
			t.Fatalf("after the back-off: %d, want 303", w.Code)
		}
		// A success clears the account's count: the next failure is free.
		tok = a.loginToken() // the login deleted the form's cookie
		fail()
		if w := try("wrong password"); w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("after a success: %d, want 422", w.Code)
		}

		if got := attempts(t, e, "throttled"); got != 2*11 {
			t.Errorf("throttled attempts = %v, want 22", got)
		}
		if got := attempts(t, e, "bad_credentials"); got != 5+5+2 {
			t.Errorf("bad_credentials = %v, want 12", got)
		}
		if got := metric(t, e, `latch_login_backoffs_total{scope="account"}`); got != 6 {
			t.Errorf("account back-offs = %v, want 6", got)
		}
	})
}

func TestLogin_Throttle_PerAccount_OtherAccountsUnaffected(t *testing.T) {
	forEachThrottle(t, func(t *testing.T, th throttleBackend) {
		e, users, _ := loginEnv(t, th.config)
		mustCreateUser(t, users, registry.UserSpec{Username: "bob", Password: "bob's own password"})
		for i := range 5 {
			a := newAgent(e)
			a.remote = fmt.Sprintf("203.0.113.%d:1", i)
			a.login("alice", "wrong password", "")
		}
		if w := newAgent(e).login("ALICE", alicePassword, ""); w.Code != http.StatusTooManyRequests {
			t.Fatalf("alice, in another case: %d, want 429", w.Code)
		}
		if w := newAgent(e).login("bob", "bob's own password", ""); w.Code != http.StatusSeeOther {
			t.Fatalf("bob: %d, want 303", w.Code)
		}
	})
}

func TestLogin_Throttle_PerAddress(t *testing.T) {
	forEachThrottle(t, func(t *testing.T, th throttleBackend) {
		e, _, _ := loginEnv(t, th.config, func(c *server.Config) {
			c.LoginIPThrottle = throttle.Config{Threshold: 3}
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		from := func(remote, xff string) *agent {
			a := newAgent(e)
			a.remote = remote
			if xff != "" {
				a.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Set("X-Forwarded-For", xff)
					e.h.ServeHTTP(w, r)
				})
			}
			return a
		}
		// Password spraying: one guess for each of many names, from one address.
		for i := range 3 {
			if w := from("[2001:db8::1]:1", "").login(fmt.Sprintf("user%d", i), "guess", ""); w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("failure %d: %d", i, w.Code)
			}
		}
		// The same /64 is the same attacker, whatever the name, right password or not.
		if w := from("[2001:db8::2]:1", "").login("alice", alicePassword, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("same /64: %d %q, want 429", w.Code, w.Header().Get("Retry-After"))
		}
		if w := from("[2001:db8:0:1::1]:1", "").login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
			t.Fatalf("another /64: %d, want 303", w.Code)
		}
		// Behind a trusted proxy the client's address counts, not the proxy's;
		// a forged X-Forwarded-For from an untrusted peer is ignored.
		for i := range 3 {
			from("10.1.2.3:1", "2001:db8::7, 198.51.100.9").login(fmt.Sprintf("user%d", i), "guess", "")
		}
		if w := from("10.9.9.9:1", "198.51.100.9").login("alice", alicePassword, ""); w.Code != http.StatusTooManyRequests {
			t.Fatalf("client behind the proxy: %d, want 429", w.Code)
		}
		if w := from("10.1.2.3:1", "198.51.100.10").login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
			t.Fatalf("another client behind the proxy: %d, want 303", w.Code)
		}
		if w := from("192.0.2.99:1", "198.51.100.9").login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
			t.Fatalf("untrusted peer with a forged X-Forwarded-For: %d, want 303", w.Code)
		}
		// The back-off ends by itself.
		e.clock.Advance(time.Second)
		if w := from("[2001:db8::3]:1", "").login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
			t.Fatalf("after the back-off: %d, want 303", w.Code)
		}
		if got := metric(t, e, `latch_login_backoffs_total{scope="address"}`); got != 2 {
			t.Errorf("address back-offs = %v, want 2", got)
		}
	})
}

// TestLogin_ConcurrencyCap_AnswersBusy holds the only argon2 slot with a
// blocked verification; another login waits LoginQueueTimeout for it and
// gets 503 with Retry-After. Nothing depends on timing but the wait
// itself, which must end because the slot is held until the test lets go.
func TestLogin_ConcurrencyCap_AnswersBusy(t *testing.T) {
	e, _, _ := loginEnv(t, func(c *server.Config) {
		c.MaxConcurrentLogins = 1
		c.LoginQueueTimeout = 20 * time.Millisecond
	})
	var first atomic.Bool
	inside, release := make(chan struct{}), make(chan struct{})
	server.SetPasswordHook(e.srv, func(string) {
		if first.CompareAndSwap(false, true) {
			close(inside)
			<-release
		}
	})
	a, b := newAgent(e), newAgent(e)
	tokA, tokB := a.loginToken(), b.loginToken()
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		done <- a.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {tokA}})
	}()
	<-inside
	w := b.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {tokB}})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "busy") {
		t.Fatalf("login while the slot is held: %d %q, want 503 with Retry-After\n%s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	close(release)
	if w := <-done; w.Code != http.StatusSeeOther {
		t.Fatalf("the login holding the slot: %d", w.Code)
	}
	if attempts(t, e, "busy") != 1 {
		t.Error("busy not counted")
	}
	// The slot is free again.
	if w := b.login("alice", alicePassword, ""); w.Code != http.StatusSeeOther {
		t.Fatalf("after release: %d", w.Code)
	}
}

func TestSession_IdleAndAbsoluteTimeouts(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	raw := a.mustLogin("alice", alicePassword)
	h := sha256.Sum256([]byte(raw))
	stored := func() *latch.Session {
		s, err := e.db.Session(context.Background(), h[:])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	login := stored().LastSeenAt

	// Within a minute of the last touch, requests do not write.
	e.clock.Advance(59 * time.Second)
	a.signedInAs()
	if !stored().LastSeenAt.Equal(login) {
		t.Fatal("a request within a minute moved LastSeenAt")
	}
	// Activity keeps the session alive past the idle timeout...
	for range 3 {
		e.clock.Advance(25 * time.Minute)
		if a.signedInAs() != "alice" {
			t.Fatal("an active session ended")
		}
	}
	if s := stored(); !s.LastSeenAt.Equal(e.clock.Now()) || !s.IdleExpiresAt.Equal(e.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("touch: LastSeenAt %v IdleExpiresAt %v", s.LastSeenAt, s.IdleExpiresAt)
	}
	// ...but 30 minutes away end it.
	e.clock.Advance(30 * time.Minute)
	if a.signedInAs() != "" {
		t.Fatal("the session outlived the idle timeout")
	}

	// The absolute timeout ends even a busy session, and touching never
	// moves the idle expiry past it.
	b := newAgent(e)
	raw = b.mustLogin("alice", alicePassword)
	h = sha256.Sum256([]byte(raw))
	for range 12*3 - 1 {
		e.clock.Advance(20 * time.Minute)
		if b.signedInAs() != "alice" {
			t.Fatal("an active session ended before the absolute timeout")
		}
	}
	if s := stored(); s.IdleExpiresAt.After(s.ExpiresAt) {
		t.Fatalf("idle expiry %v past the absolute %v", s.IdleExpiresAt, s.ExpiresAt)
	}
	e.clock.Advance(20 * time.Minute)
	if b.signedInAs() != "" {
		t.Fatal("the session outlived the absolute timeout")
	}
}

func TestSession_EndsWithCredentialChanges(t *testing.T) {
	ctx := context.Background()
	for name, change := range map[string]func(*registry.Users, string) error{
		"password change": func(u *registry.Users, id string) error {
			_, err := u.SetPassword(ctx, id, "a brand new password")
			return err
		},
		"disable": func(u *registry.Users, id string) error { _, err := u.SetDisabled(ctx, id, true); return err },
		"role change": func(u *registry.Users, id string) error {
			_, err := u.SetRoles(ctx, id, []string{"admin"}, nil)
			return err
		},
		"delete": func(u *registry.Users, id string) error { _, err := u.Delete(ctx, id); return err },
	} {
		t.Run(name, func(t *testing.T) {
			e, users, alice := loginEnv(t)
			a := newAgent(e)
			a.mustLogin("alice", alicePassword)
			if err := change(users, alice.ID); err != nil {
				t.Fatal(err)
			}
			if a.signedInAs() != "" {
				t.Fatal("the session survived")
			}
		})
	}

	// Even if ending the sessions failed half-way (here: a session written
	// straight to the store), a session older than the password is dead,
	// and so is one of a disabled user.
	t.Run("older than the password", func(t *testing.T) {
		e, users, alice := loginEnv(t)
		e.clock.Advance(time.Minute)
		if _, err := users.SetPassword(ctx, alice.ID, "a brand new password"); err != nil {
			t.Fatal(err)
		}
		raw := strings.Repeat("S", 42) + "A"
		h := sha256.Sum256([]byte(raw))
		now := e.clock.Now()
		if err := e.db.CreateSession(ctx, &latch.Session{IDHash: h[:], UserID: alice.ID, AuthTime: now.Add(-time.Second),
			CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		a := newAgent(e)
		a.jar["__Host-latch_session"] = &http.Cookie{Name: "__Host-latch_session", Value: raw}
		if a.signedInAs() != "" {
			t.Fatal("a session authenticated before the password change is alive")
		}
		u, _ := e.db.User(ctx, alice.ID)
		mustSession(t, e, alice.ID, raw[:42]+"E")
		a.jar["__Host-latch_session"].Value = raw[:42] + "E"
		if a.signedInAs() != "alice" {
			t.Fatal("a current session is dead")
		}
		u.Disabled = true
		if err := e.db.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if a.signedInAs() != "" {
			t.Fatal("a disabled user's session is alive")
		}
	})
}

func TestLogin_PromptLogin_AsksAgainWhenSignedIn(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	first := a.mustLogin("alice", alicePassword)

	w := a.get("/login?return_to=/somewhere")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/somewhere" {
		t.Fatalf("signed in, GET /login: %d %q, want 303 to return_to", w.Code, w.Header().Get("Location"))
	}
	w = a.get("/login?prompt=login&return_to=/somewhere")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "You are signed in as <strong>alice</strong>") {
		t.Fatalf("prompt=login: %d\n%s", w.Code, w.Body)
	}
	w = a.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {csrfOf(t, w.Body.String())}, "return_to": {"/somewhere"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("re-authentication: %d", w.Code)
	}
	if a.sessionID() == first {
		t.Fatal("re-authentication kept the session ID")
	}
	h := sha256.Sum256([]byte(first))
	if sessionExists(t, e, h[:]) {
		t.Fatal("re-authentication left the old session alive")
	}
}

func TestPages_SecurityHeaders(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	loginPage := a.get("/login")
	a.mustLogin("alice", alicePassword)
	accountPage := a.get("/")
	errPage := a.post("/logout", url.Values{"csrf_token": {"wrong"}})
	for name, tc := range map[string]struct {
		w          *httptest.ResponseRecorder
		formAction bool
	}{
		// The login form leads, through /oauth2/authorize, to the client's
		// redirect_uri: form-action 'self' would block that in Chromium.
		"login":   {loginPage, false},
		"account": {accountPage, true},
		"error":   {errPage, true},
	} {
		h := tc.w.Header()
		csp := "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"
		if tc.formAction {
			csp += "; form-action 'self'"
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": csp,
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
			"X-Content-Type-Options":  "nosniff",
			"Content-Type":            "text/html; charset=utf-8",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s page: %s = %q, want %q", name, k, got, want)
			}
		}
		m := regexp.MustCompile(`href="(/static/latch.css\?v=[0-9a-f]+)"`).FindStringSubmatch(tc.w.Body.String())
		if m == nil {
			t.Fatalf("%s page does not link the stylesheet", name)
		}
		css := a.get(m[1])
		if css.Code != 200 || css.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(css.Body.String(), "font-family") {
			t.Fatalf("stylesheet: %d %q", css.Code, css.Header().Get("Content-Type"))
		}
	}
}

func TestLogin_BadInput_ClearAnswers(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	tok := a.loginToken()
	for _, tc := range []struct {
		name   string
		method string
		target string
		body   string
		ctype  string
		want   int
	}{
		{"body over the limit", "POST", "/login", "username=" + strings.Repeat("a", 70_000), "application/x-www-form-urlencoded", 413},
		{"malformed form", "POST", "/login", "%zz", "application/x-www-form-urlencoded", 400},
		{"JSON body", "POST", "/login", `{"username":"alice"}`, "application/json", 403},
		{"empty fields", "POST", "/login", "csrf_token=" + tok + "&username=&password=", "application/x-www-form-urlencoded", 400},
		{"password in the URL only", "POST", "/login?username=alice&password=x", "csrf_token=" + tok, "application/x-www-form-urlencoded", 400},
		{"password too long", "POST", "/login", "csrf_token=" + tok + "&username=alice&password=" + strings.Repeat("x", 1025), "application/x-www-form-urlencoded", 422},
		{"GET /logout", "GET", "/logout", "", "", 405},
		{"PUT /login", "PUT", "/login", "", "", 405},
		{"logout body over the limit", "POST", "/logout", "x=" + strings.Repeat("a", 70_000), "application/x-www-form-urlencoded", 413},
	} {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.ctype != "" {
			r.Header.Set("Content-Type", tc.ctype)
		}
		r.Header.Set("Origin", testIssuer)
		r.AddCookie(a.jar["__Host-latch_login"])
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d\n%s", tc.name, w.Code, tc.want, w.Body)
		}
	}
}

// consentHandler stands in for /oauth2/authorize: GET renders
// the consent page for the signed-in user, POST checks its CSRF token and
// reports the decision.
func consentHandler(e *env, params url.Values) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		sess, u, err := server.CurrentSession(e.srv, w, r)
		if err != nil || sess == nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		server.RenderConsent(e.srv, w, r, sess, server.ConsentView{ClientID: "app", ClientName: "Example <App>",
			Username: u.Username, Scopes: []string{"openid", "read"}, Params: params})
	})
	mux.HandleFunc("POST /oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		sess, _, err := server.CurrentSession(e.srv, w, r)
		if err != nil || sess == nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		if !server.CheckCSRF(e.srv, r, sess) {
			server.RenderError(e.srv, w, r, http.StatusForbidden, "Request refused", "bad CSRF")
			return
		}
		fmt.Fprintf(w, "consent=%s state=%s", r.PostForm.Get("consent"), r.PostForm.Get("state"))
	})
	mux.Handle("/", e.h)
	return mux
}

func TestConsent_FormCarriesParamsAndCSRF(t *testing.T) {
	e, _, _ := loginEnv(t)
	params := url.Values{"client_id": {"app"}, "state": {`"><script>x</script>`}, "scope": {"openid read"},
		"consent": {"allow"}, "csrf_token": {"attacker's"}}
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	a.h = consentHandler(e, params)

	w := a.get("/oauth2/authorize")
	body := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("consent page: %d", w.Code)
	}
	for _, want := range []string{
		"<h1>Allow Example &lt;App&gt; to use your account?</h1>",
		`<input type="hidden" name="client_id" value="app">`,
		`<input type="hidden" name="scope" value="openid read">`,
		`<input type="hidden" name="state" value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;">`,
		`name="consent" value="allow"`, `name="consent" value="deny"`,
		`<code>read</code>`, "<strong>alice</strong>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
	// consent and csrf_token from the request are not copied: Deny stays Deny.
	if strings.Contains(body, `type="hidden" name="consent"`) || strings.Count(body, `name="csrf_token"`) != 1 {
		t.Fatalf("consent page copies consent or csrf_token from the request:\n%s", body)
	}
	tok := csrfOf(t, body)

	post := func(b *agent, tok string) *httptest.ResponseRecorder {
		return b.post("/oauth2/authorize", url.Values{"csrf_token": {tok}, "consent": {"deny"}, "state": {"s"}})
	}
	if w := post(a, tok); w.Code != 200 || w.Body.String() != "consent=deny state=s" {
		t.Fatalf("consent POST: %d %s", w.Code, w.Body)
	}
	if w := post(a, "wrong"); w.Code != http.StatusForbidden {
		t.Fatalf("wrong token: %d", w.Code)
	}
	cross := *a
	cross.origin = "https://evil.example"
	if w := post(&cross, tok); w.Code != http.StatusForbidden {
		t.Fatalf("cross-origin: %d", w.Code)
	}
	// Another session's token does not fit this session.
	b := newAgent(e)
	b.mustLogin("alice", alicePassword)
	b.h = a.h
	if w := post(b, tok); w.Code != http.StatusForbidden {
		t.Fatalf("another session's token: %d", w.Code)
	}
	// Nor does the session's token survive its regeneration.
	a.mustLogin("alice", alicePassword)
	a.h = b.h
	if w := post(a, tok); w.Code != http.StatusForbidden {
		t.Fatalf("token of the session before re-login: %d", w.Code)
	}
}

// BenchmarkLogin_FailedAttempt measures a failed POST /login at the
// default argon2 parameters, for a known user with a wrong password and
// for an unknown user: the two should cost the same (the unknown one runs
// password.DummyVerify), which is what keeps response times from telling
// which usernames exist. Compare the two sub-benchmarks of one run.
func BenchmarkLogin_FailedAttempt(b *testing.B) {
	for _, tc := range []struct{ name, user string }{{"wrong_password", "alice"}, {"unknown_user", "nobody"}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, func(c *server.Config) {
				c.LoginAccountThrottle.Threshold = 1 << 30
				c.LoginIPThrottle.Threshold = 1 << 30
			})
			mustCreateUser(b, &registry.Users{Store: e.db, Now: e.clock.Now}, registry.UserSpec{Username: "alice", Password: alicePassword})
			a := newAgent(e)
			form := url.Values{"username": {tc.user}, "password": {"wrong password"}, "csrf_token": {a.loginToken()}}
			b.ReportAllocs()
			for b.Loop() {
				if w := a.post("/login", form); w.Code != http.StatusUnprocessableEntity {
					b.Fatalf("%d", w.Code)
				}
			}
		})
	}
}

// otherFirst returns s with its first character replaced by a different
// one: always a wrong token, unlike a fixed replacement character, which
// is the same token when the token happens to start with it.
func otherFirst(s string) string {
	if s[0] == 'x' {
		return "y" + s[1:]
	}
	return "x" + s[1:]
}

func TestLogin_RehashesToTheConfiguredParameters(t *testing.T) {
	e, _, _ := loginEnv(t)
	var mu sync.Mutex
	calls := map[string]int{}
	server.SetPasswordHook(e.srv, func(kind string) { mu.Lock(); calls[kind]++; mu.Unlock() })
	older := cheapParams
	older.Iterations = 2 // a user from before the operator changed the cost
	old := &registry.Users{Store: e.db, Params: older, Now: e.clock.Now}
	v := mustCreateUser(t, old, registry.UserSpec{Username: "olga", Password: "olga's long password"})

	for i := range 2 {
		a := newAgent(e)
		a.mustLogin("olga", "olga's long password")
		u, err := e.db.User(context.Background(), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := password.ParamsOf(u.PasswordHash); got != cheapParams {
			t.Fatalf("login %d: stored parameters %+v, want the configured %+v", i, got, cheapParams)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["rehash"] != 1 {
		t.Errorf("rehashed %d times over two logins, want once", calls["rehash"])
	}
}
