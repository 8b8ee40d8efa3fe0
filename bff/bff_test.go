package bff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/sqlite"
)

func decodeError(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return e.Error
}

func TestCSRF_StateChangingRequests(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name   string
		method string
		header http.Header
		ok     bool
	}{
		{"fetch from the SPA", "POST", h(CSRFHeader, "1", "Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), true},
		{"PUT from the SPA", "PUT", h(CSRFHeader, "1", "Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), true},
		{"PATCH from the SPA", "PATCH", h(CSRFHeader, "1", "Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), true},
		{"DELETE from the SPA", "DELETE", h(CSRFHeader, "1", "Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), true},
		{"browser without Fetch Metadata, same Origin", "POST", h(CSRFHeader, "1", "Origin", unitOrigin), true},
		{"Fetch Metadata without Origin", "POST", h(CSRFHeader, "1", "Sec-Fetch-Site", "same-origin"), true},
		{"no CSRF header", "POST", h("Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), false},
		{"CSRF header not 1", "POST", h(CSRFHeader, "true", "Origin", unitOrigin, "Sec-Fetch-Site", "same-origin"), false},
		{"CSRF header twice", "POST", h(CSRFHeader, "1", CSRFHeader, "1", "Origin", unitOrigin), false},
		{"cross-site form post", "POST", h("Origin", "https://evil.test", "Sec-Fetch-Site", "cross-site"), false},
		{"cross-site with header", "POST", h(CSRFHeader, "1", "Origin", "https://evil.test", "Sec-Fetch-Site", "cross-site"), false},
		{"same-site sibling", "POST", h(CSRFHeader, "1", "Origin", "https://other.app.test", "Sec-Fetch-Site", "same-site"), false},
		{"user-initiated (none)", "POST", h(CSRFHeader, "1", "Sec-Fetch-Site", "none"), false},
		{"foreign Origin, no Fetch Metadata", "POST", h(CSRFHeader, "1", "Origin", "https://evil.test"), false},
		{"Origin null", "POST", h(CSRFHeader, "1", "Origin", "null"), false},
		{"Origin with another port", "POST", h(CSRFHeader, "1", "Origin", unitOrigin+":8443"), false},
		{"Origin with another scheme", "POST", h(CSRFHeader, "1", "Origin", "http://app.test"), false},
		{"same-origin metadata, foreign Origin", "POST", h(CSRFHeader, "1", "Origin", "https://evil.test", "Sec-Fetch-Site", "same-origin"), false},
		{"two Origin headers", "POST", h(CSRFHeader, "1", "Origin", unitOrigin, "Origin", "https://evil.test"), false},
		{"neither Origin nor Fetch Metadata", "POST", h(CSRFHeader, "1"), false},
		{"GET needs nothing", "GET", h(), true},
		{"HEAD needs nothing", "HEAD", h(), true},
		{"cross-site GET passes (must not change state)", "GET", h("Origin", "https://evil.test", "Sec-Fetch-Site", "cross-site"), true},
		{"unknown method is checked", "PROPFIND", h("Origin", unitOrigin), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newUnitEnv(t)
			cookie := e.newSession(session{AccessToken: "at-1"})
			w := e.do(tc.method, "/api/items", cookie, tc.header, nil)
			got := len(e.up.requests())
			if tc.ok {
				if w.Code != http.StatusOK || got != 1 {
					t.Fatalf("status %d, upstream saw %d requests; want 200 and 1: %s", w.Code, got, w.Body)
				}
				return
			}
			if w.Code != http.StatusForbidden || decodeError(t, w) != CodeCSRF {
				t.Fatalf("status %d %s; want 403 %s", w.Code, w.Body, CodeCSRF)
			}
			if got != 0 {
				t.Fatalf("a refused request reached the upstream")
			}
		})
	}
}

func TestLogout_CSRF_And_MethodRules(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{AccessToken: "at-1"})
	if w := e.do("GET", "/bff/logout", cookie, nil, nil); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /bff/logout: %d, want 405", w.Code)
	}
	w := e.do("POST", "/bff/logout", cookie, http.Header{"Origin": {"https://evil.test"}, "Sec-Fetch-Site": {"cross-site"}}, nil)
	if w.Code != http.StatusForbidden || decodeError(t, w) != CodeCSRF {
		t.Fatalf("cross-site logout: %d %s, want 403", w.Code, w.Body)
	}
	// The session survived the refused logout.
	if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("session after refused logout: %d %s", w.Code, w.Body)
	}
}

func TestProxy_ForwardsWithBearer_StripsPrefixCookiesAndAuthorization(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{AccessToken: "the-access-token"})
	hdr := sameOrigin()
	hdr.Set("Authorization", "Bearer forged")
	hdr.Set("X-Forwarded-For", "6.6.6.6")
	hdr.Set("Content-Type", "application/json")
	r := httptest.NewRequest("POST", unitOrigin+"/api/items/a%2Fb?x=1&y=2", strings.NewReader(`{"n":1}`))
	r.AddCookie(&http.Cookie{Name: e.b.cfg.CookieName, Value: cookie})
	r.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
	for k, vs := range hdr {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	reqs := e.up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	got := reqs[0]
	if got.URL.EscapedPath() != "/base/items/a%2Fb" || got.URL.RawQuery != "x=1&y=2" {
		t.Errorf("upstream path %q query %q; want /base/items/a%%2Fb and x=1&y=2", got.URL.EscapedPath(), got.URL.RawQuery)
	}
	if a := got.Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer the-access-token" {
		t.Errorf("upstream Authorization %q", a)
	}
	if c := got.Header.Get("Cookie"); c != "" {
		t.Errorf("browser cookies reached the upstream: %q", c)
	}
	if got.Header.Get(CSRFHeader) != "" {
		t.Errorf("CSRF header forwarded")
	}
	if xff := got.Header.Get("X-Forwarded-For"); strings.Contains(xff, "6.6.6.6") {
		t.Errorf("inbound X-Forwarded-For forwarded: %q", xff)
	}
}

func TestProxy_UpstreamCannotSetBFFCookies(t *testing.T) {
	e := newUnitEnv(t)
	e.up.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "__Host-latch_bff=stolen; Path=/; Secure")
		w.Header().Add("Set-Cookie", "__Host-latch_bff_login=x; Path=/; Secure")
		w.Header().Add("Set-Cookie", "pref=1; Path=/")
	})
	cookie := e.newSession(session{AccessToken: "at"})
	w := e.do("GET", "/api/x", cookie, nil, nil)
	got := w.Header().Values("Set-Cookie")
	if len(got) != 1 || !strings.HasPrefix(got[0], "pref=1") {
		t.Fatalf("Set-Cookie passed through: %q; want only pref=1", got)
	}
}

func TestProxy_UpstreamDown_Is502JSON(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{AccessToken: "at"})
	e.up.srv.Close()
	w := e.do("GET", "/api/x", cookie, nil, nil)
	if w.Code != http.StatusBadGateway || decodeError(t, w) != "upstream_unreachable" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestAPI_WithoutSession_401LoginRequired(t *testing.T) {
	e := newUnitEnv(t)
	for name, cookie := range map[string]string{
		"no cookie":        "",
		"malformed cookie": "x",
		"unknown cookie":   strings.Repeat("A", cookieValueLen),
	} {
		t.Run(name, func(t *testing.T) {
			w := e.do("GET", "/api/x", cookie, nil, nil)
			if w.Code != http.StatusUnauthorized || decodeError(t, w) != CodeLoginRequired {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			c := findCookie(t, w, e.b.cfg.CookieName)
			if (cookie != "") != (c != nil && c.MaxAge < 0) {
				t.Fatalf("cookie cleared: %v, want %v", c, cookie != "")
			}
			if len(e.up.requests()) != 0 {
				t.Fatal("request without a session reached the upstream")
			}
		})
	}
}

func TestUser_ReturnsClaimsNeverTokens(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{
		Subject: "alice", User: map[string]any{"name": "Alice", "email": "a@example.com", "roles": []any{"admin"}},
		AccessToken: "AT-SECRET", RefreshToken: "lt_rt_SECRET", IDToken: "ID.TOKEN.SECRET",
	})
	w := e.do("GET", "/bff/user", cookie, nil, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, secret := range []string{"AT-SECRET", "lt_rt_SECRET", "ID.TOKEN.SECRET"} {
		if strings.Contains(body, secret) {
			t.Fatalf("/bff/user leaks a token: %s", body)
		}
	}
	var u map[string]any
	json.Unmarshal(w.Body.Bytes(), &u)
	if u["sub"] != "alice" || u["name"] != "Alice" || u["email"] != "a@example.com" {
		t.Fatalf("/bff/user = %s", body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	w = e.do("GET", "/bff/user", "", nil, nil)
	if w.Code != http.StatusUnauthorized || decodeError(t, w) != CodeLoginRequired {
		t.Fatalf("without session: %d %s", w.Code, w.Body)
	}
}

func TestSession_IdleTimeout(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) { c.SessionIdle = 10 * time.Minute; c.SessionMaxAge = time.Hour })
	cookie := e.newSession(session{AccessToken: "at", AccessExp: e.clock.Now().Add(2 * time.Hour).Unix()})
	// Activity every 9 minutes keeps it alive past the first idle expiry.
	for range 3 {
		e.clock.Advance(9 * time.Minute)
		if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusOK {
			t.Fatalf("active session ended: %d %s", w.Code, w.Body)
		}
	}
	e.clock.Advance(10 * time.Minute)
	if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("idle session still served: %d", w.Code)
	}
}

func TestSession_ShortIdleTimeout_StillMovesWithActivity(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) { c.SessionIdle = time.Minute; c.SessionMaxAge = time.Hour })
	cookie := e.newSession(session{AccessToken: "at", AccessExp: e.clock.Now().Add(2 * time.Hour).Unix()})
	for range 5 {
		e.clock.Advance(40 * time.Second)
		if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusOK {
			t.Fatalf("active session ended: %d", w.Code)
		}
	}
	e.clock.Advance(time.Minute)
	if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("idle session still served: %d", w.Code)
	}
}

func TestSession_AbsoluteTimeout(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) { c.SessionIdle = 10 * time.Minute; c.SessionMaxAge = 30 * time.Minute })
	cookie := e.newSession(session{AccessToken: "at", AccessExp: e.clock.Now().Add(2 * time.Hour).Unix()})
	for range 3 {
		e.clock.Advance(9 * time.Minute)
		if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusOK {
			t.Fatalf("session ended before its absolute timeout: %d", w.Code)
		}
	}
	e.clock.Advance(4 * time.Minute) // 31 minutes after login, 4 after the last request
	if w := e.do("GET", "/bff/user", cookie, nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("session served past its absolute timeout: %d", w.Code)
	}
}

func TestAPI_FeedNotReady_503(t *testing.T) {
	ready := false
	e := newUnitEnv(t, func(c *Config) { c.Ready = func() bool { return ready } })
	cookie := e.newSession(session{AccessToken: "at"})
	w := e.do("GET", "/api/x", cookie, nil, nil)
	if w.Code != http.StatusServiceUnavailable || decodeError(t, w) != CodeUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	ready = true
	if w := e.do("GET", "/api/x", cookie, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("ready: %d %s", w.Code, w.Body)
	}
}

func TestLogin_RedirectsWithPKCEAndPreLoginCookie(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) { c.Audience = "api" })
	w := e.do("GET", "/bff/login?return_to=/settings%3Ftab%3D2", "", nil, nil)
	if w.Code != http.StatusFound {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != unitIssuer+"/oauth2/authorize" {
		t.Fatalf("Location %q", w.Header().Get("Location"))
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "bff", "redirect_uri": unitRedirect,
		"scope": "openid profile", "code_challenge_method": "S256", "resource": "api",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) != 43 {
			t.Errorf("%s = %q, want 256 bits base64url", k, q.Get(k))
		}
	}
	key := sha256.Sum256([]byte(q.Get("state")))
	name := e.b.pendingCookie(key)
	raw := rawSetCookie(w, name)
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600"} {
		if !strings.Contains(raw, attr) {
			t.Errorf("pre-login cookie %q lacks %s", raw, attr)
		}
	}
	if strings.Contains(strings.ToLower(raw), "domain=") {
		t.Errorf("pre-login cookie has a Domain: %q", raw)
	}
	// The pending login is in the cookie, sealed, and its verifier
	// matches the challenge sent.
	sealed, err := base64.RawURLEncoding.DecodeString(findCookie(t, w, name).Value)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.b.seal.open(kindLogin, key[:], sealed)
	if err != nil {
		t.Fatal(err)
	}
	p, err := unmarshalPending(plain)
	if err != nil {
		t.Fatal(err)
	}
	ch := sha256.Sum256([]byte(p.Verifier))
	if base64.RawURLEncoding.EncodeToString(ch[:]) != q.Get("code_challenge") || p.Nonce != q.Get("nonce") || p.ReturnTo != "/settings?tab=2" {
		t.Fatalf("pending login %+v does not match the authorization request", p)
	}
	if bytes.Contains(sealed, []byte(p.Verifier)) || bytes.Contains(sealed, []byte(p.Nonce)) {
		t.Fatal("pending login sealed in the clear")
	}
}

// Unauthenticated logins cost the BFF no storage: a flood of them with
// the longest return_to leaves the store as it was, and each pre-login
// cookie stays within what a browser keeps.
func TestLogin_Flood_StoresNothingServerSide(t *testing.T) {
	e := newUnitEnv(t)
	ctx := context.Background()
	rt := "/" + strings.Repeat("<", MaxReturnTo-1)
	for i := range 500 {
		w := e.do("GET", "/bff/login?return_to="+url.QueryEscape(rt), "", nil, nil)
		if w.Code != http.StatusFound {
			t.Fatalf("login %d: %d %s", i, w.Code, w.Body)
		}
		if i == 0 {
			for _, c := range w.Header().Values("Set-Cookie") {
				if len(c) > 2048 {
					t.Fatalf("pre-login cookie of %d bytes", len(c))
				}
			}
		}
	}
	var logins, sessions int
	db, err := sql.Open("sqlite", "file:"+e.store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name = 'bff_logins'").Scan(&logins)
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM bff_sessions").Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if logins != 0 || sessions != 0 {
		t.Fatalf("after 500 logins the store holds a logins table (%d) and %d sessions; want nothing", logins, sessions)
	}
	if w := e.do("GET", "/bff/login?return_to="+url.QueryEscape("/"+strings.Repeat("a", MaxReturnTo)), "", nil, nil); w.Code != http.StatusBadRequest {
		t.Fatalf("return_to of %d bytes: %d, want 400", MaxReturnTo+1, w.Code)
	}
}

// A browser sent to /bff/login again and again keeps at most
// maxPendingLogins pre-login cookies.
func TestLogin_PendingCookiesPerBrowser_Bounded(t *testing.T) {
	e := newUnitEnv(t)
	var jar []*http.Cookie
	for range 10 {
		_, _, w := startLoginIn(t, e, jar)
		jar = applyCookies(jar, w)
		if n := len(jar); n > maxPendingLogins {
			t.Fatalf("%d pre-login cookies, want at most %d", n, maxPendingLogins)
		}
	}
}

func TestLogin_ReturnTo_OpenRedirectRefused(t *testing.T) {
	e := newUnitEnv(t)
	for _, rt := range []string{
		"//evil.test", "//evil.test/x", "/\\evil.test", "\\\\evil.test", "https://evil.test", "http:evil.test",
		"javascript:alert(1)", "evil.test", "", "/%0d%0aSet-Cookie:x", "/\x00", "/a b", "/\tevil", "/\\/evil",
		"./x", "../x", "/" + strings.Repeat("a", 3000),
	} {
		w := e.do("GET", "/bff/login?return_to="+url.QueryEscape(rt), "", nil, nil)
		if rt == "/%0d%0aSet-Cookie:x" {
			// Percent-encoded CR LF stay encoded in a path: harmless, allowed.
			if w.Code != http.StatusFound {
				t.Errorf("return_to %q: %d", rt, w.Code)
			}
			continue
		}
		if w.Code != http.StatusBadRequest || decodeError(t, w) != CodeInvalidRequest {
			t.Errorf("return_to %q: %d %s, want 400 invalid_request", rt, w.Code, w.Body)
		}
	}
	w := e.do("GET", "/bff/login?return_to=/a&return_to=/b", "", nil, nil)
	if w.Code != http.StatusBadRequest {
		t.Errorf("two return_to: %d", w.Code)
	}
	for _, rt := range []string{"/", "/settings", "/a/b?c=d#e", "/caf%C3%A9"} {
		if w := e.do("GET", "/bff/login?return_to="+url.QueryEscape(rt), "", nil, nil); w.Code != http.StatusFound {
			t.Errorf("return_to %q: %d, want 302", rt, w.Code)
		}
	}
}

// startLoginIn runs /bff/login in a browser holding jar and returns the
// state, the new pre-login cookie and the answer.
func startLoginIn(t testing.TB, e *unitEnv, jar []*http.Cookie) (string, *http.Cookie, *httptest.ResponseRecorder) {
	t.Helper()
	r := httptest.NewRequest("GET", unitOrigin+"/bff/login", nil)
	for _, c := range jar {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusFound {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	state := loc.Query().Get("state")
	c := findCookie(t, w, e.b.pendingCookie(sha256.Sum256([]byte(state))))
	if c == nil {
		t.Fatal("no pre-login cookie")
	}
	return state, c, w
}

// startLogin runs /bff/login in a new browser and returns the state and
// the pre-login cookie.
func startLogin(t testing.TB, e *unitEnv) (string, *http.Cookie) {
	t.Helper()
	state, c, _ := startLoginIn(t, e, nil)
	return state, c
}

// applyCookies is what a browser does with w's Set-Cookie lines.
func applyCookies(jar []*http.Cookie, w *httptest.ResponseRecorder) []*http.Cookie {
	for _, set := range w.Result().Cookies() {
		jar = slices.DeleteFunc(jar, func(c *http.Cookie) bool { return c.Name == set.Name })
		if set.MaxAge >= 0 {
			jar = append(jar, &http.Cookie{Name: set.Name, Value: set.Value})
		}
	}
	return jar
}

func callback(e *unitEnv, query string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", unitOrigin+"/bff/callback?"+query, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestLogin_TwoTabs_EachHasItsOwnPendingLogin(t *testing.T) {
	e := newUnitEnv(t)
	s1, c1, w := startLoginIn(t, e, nil)
	jar := applyCookies(nil, w)
	s2, c2, w := startLoginIn(t, e, jar)
	jar = applyCookies(jar, w)
	if c1.Name == c2.Name || len(jar) != 2 {
		t.Fatal("a second login in the same browser replaced the first one's pre-login cookie: the first tab's callback would fail")
	}
	// Each tab's callback finds its own pending login (and fails later,
	// at the fake issuer's answer, not for want of one).
	for _, st := range []string{s1, s2} {
		w := callback(e, "error=access_denied&state="+url.QueryEscape(st), jar...)
		if !strings.Contains(w.Body.String(), "access_denied") {
			t.Fatalf("tab callback: %d %s", w.Code, w.Body)
		}
	}
}

func TestCallback_StateFromAnotherBrowser_Refused(t *testing.T) {
	e := newUnitEnv(t)
	state, _ := startLogin(t, e)    // the victim's browser
	_, attacker := startLogin(t, e) // another browser with its own cookie
	w := callback(e, "code=abc&state="+url.QueryEscape(state), attacker)
	if w.Code != http.StatusBadRequest || decodeError(t, w) != CodeLoginFailed || !strings.Contains(w.Body.String(), "another browser") {
		t.Fatalf("callback from another browser: %d %s", w.Code, w.Body)
	}
	if findCookie(t, w, e.b.cfg.CookieName) != nil {
		t.Fatal("a session cookie was set")
	}
}

func TestCallback_WithoutPreLoginCookie_Refused(t *testing.T) {
	e := newUnitEnv(t)
	state, _ := startLogin(t, e)
	w := callback(e, "code=abc&state="+url.QueryEscape(state))
	if w.Code != http.StatusBadRequest || decodeError(t, w) != CodeLoginFailed {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestCallback_UnknownOrMissingState_Refused(t *testing.T) {
	e := newUnitEnv(t)
	_, browser := startLogin(t, e)
	for _, q := range []string{"code=abc", "code=abc&state=" + strings.Repeat("A", 43), "code=abc&state=" + strings.Repeat("A", 600)} {
		if w := callback(e, q, browser); w.Code != http.StatusBadRequest || decodeError(t, w) != CodeLoginFailed {
			t.Fatalf("%q: %d %s", q, w.Code, w.Body)
		}
	}
}

func TestCallback_ExpiredState_Refused(t *testing.T) {
	e := newUnitEnv(t)
	state, browser := startLogin(t, e)
	e.clock.Advance(DefaultLoginTimeout)
	w := callback(e, "code=abc&state="+url.QueryEscape(state), browser)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "expired") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestCallback_StateIsSingleUse(t *testing.T) {
	e := newUnitEnv(t)
	state, browser := startLogin(t, e)
	// The first use ends at the authorization server's error answer, after
	// the pre-login cookie was cleared. (A copy of the cookie replayed
	// with the state would reach the code exchange, where the code is
	// single-use.)
	w := callback(e, "error=access_denied&state="+url.QueryEscape(state), browser)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "access_denied") {
		t.Fatalf("first use: %d %s", w.Code, w.Body)
	}
	if c := findCookie(t, w, browser.Name); c == nil || c.MaxAge >= 0 {
		t.Fatal("the callback did not clear the pre-login cookie")
	}
	jar := applyCookies([]*http.Cookie{browser}, w)
	w = callback(e, "code=abc&state="+url.QueryEscape(state), jar...)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "already used") {
		t.Fatalf("second use: %d %s", w.Code, w.Body)
	}
}

func TestCallback_MixUp_WrongIss_Refused(t *testing.T) {
	e := newUnitEnv(t)
	state, browser := startLogin(t, e)
	w := callback(e, "code=abc&iss="+url.QueryEscape("https://evil.test")+"&state="+url.QueryEscape(state), browser)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "another issuer") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestSessionCookie_Attributes(t *testing.T) {
	e := newUnitEnv(t)
	w := httptest.NewRecorder()
	e.b.setCookie(w, e.b.cfg.CookieName, "v", e.b.cfg.SessionMaxAge, http.SameSiteStrictMode)
	raw := rawSetCookie(w, "__Host-latch_bff")
	want := "__Host-latch_bff=v; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict"
	if raw != want {
		t.Fatalf("Set-Cookie %q, want %q", raw, want)
	}
	w = httptest.NewRecorder()
	e.b.clearCookie(w, e.b.cfg.CookieName)
	if raw := rawSetCookie(w, "__Host-latch_bff"); raw != "__Host-latch_bff=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict" {
		t.Fatalf("clearing Set-Cookie %q", raw)
	}
}

// TestEncryptionAtRest_DatabaseHoldsNoToken: neither the tokens, nor the
// cookie value, nor the user's claims appear in the database files.
func TestEncryptionAtRest_DatabaseHoldsNoToken(t *testing.T) {
	e := newUnitEnv(t)
	secrets := []string{"eyJACCESS.TOKEN.at-8c1f", "lt_rt_REFRESH8c1f", "eyJID.TOKEN.idt-8c1f", "alice@example.com"}
	var cookies []string
	for range 20 {
		cookies = append(cookies, e.newSession(session{
			Subject: "alice", User: map[string]any{"email": secrets[3]},
			AccessToken: secrets[0], RefreshToken: secrets[1], IDToken: secrets[2],
		}))
	}
	startLogin(t, e)
	// Every session still opens.
	for _, c := range cookies {
		if w := e.do("GET", "/bff/user", c, nil, nil); w.Code != http.StatusOK {
			t.Fatalf("session does not open: %d", w.Code)
		}
	}
	files, _ := filepath.Glob(e.store.Path() + "*") // the db, -wal, -shm
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(secrets, cookies...) {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s holds %q in the clear", filepath.Base(f), s)
			}
		}
	}
}

func TestEncryptionAtRest_OtherKeyOrMovedRecord_DoesNotOpen(t *testing.T) {
	e := newUnitEnv(t)
	cookie := e.newSession(session{AccessToken: "at"})
	key := sha256.Sum256([]byte(cookie))
	sealed, _, err := e.store.Session(context.Background(), key[:], e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes under another cookie's key: AAD and key derivation
	// differ, so it does not open.
	other := strings.Repeat("B", cookieValueLen)
	okey := sha256.Sum256([]byte(other))
	if err := e.store.CreateSession(context.Background(), okey[:], sealed, e.clock.Now().Add(time.Hour), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if w := e.do("GET", "/bff/user", other, nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("a record moved under another cookie opened: %d", w.Code)
	}
	// A BFF with another Key cannot open the original either.
	s2, err := newSealer(randBytes(t, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.open(kindSession, key[:], sealed); err == nil {
		t.Fatal("opened under another key")
	}
	if _, err := e.b.seal.open(kindLogin, key[:], sealed); err == nil {
		t.Fatal("a session opened as a pending login")
	}
}

func TestUnknownBFFPath_404JSON(t *testing.T) {
	e := newUnitEnv(t)
	w := e.do("GET", "/bff/nope", "", nil, nil)
	if w.Code != http.StatusNotFound || decodeError(t, w) != "not_found" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestSPA_ServedWithFramingDenied(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) {
		c.SPA = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>app</html>")) })
	})
	w := e.do("GET", "/", "", nil, nil)
	if w.Code != 200 || w.Body.String() != "<html>app</html>" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%d %q %v", w.Code, w.Body, w.Header())
	}
}

func TestJWTIDAndExp(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{"jti":"j1","exp":1700000000}`)) + ".sig"
	if jti, exp := jwtIDAndExp(tok); jti != "j1" || exp != 1700000000 {
		t.Fatalf("got %q %d", jti, exp)
	}
	for _, bad := range []string{"lt_at_abc", "a.b", "a.!!!.c", "a." + enc([]byte("[1]")) + ".c", ""} {
		if jti, exp := jwtIDAndExp(bad); jti != "" || exp != 0 {
			t.Fatalf("%q: got %q %d", bad, jti, exp)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	up, _ := url.Parse("https://api.internal")
	base := func() Config {
		return Config{
			Issuer: "https://auth.example.com", ClientID: "bff", ClientSecret: "s",
			RedirectURL: "https://app.example.com/bff/callback", Upstream: up,
			Store: &sqlite.BFFStore{}, Key: make([]byte, 32),
		}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"http issuer", func(c *Config) { c.Issuer = "http://auth.example.com" }, "use https"},
		{"http issuer allowed", func(c *Config) { c.Issuer = "http://auth.example.com"; c.InsecureAllowHTTP = true }, ""},
		{"issuer with query", func(c *Config) { c.Issuer += "?x=1" }, "query"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "confidential client"},
		{"no redirect", func(c *Config) { c.RedirectURL = "" }, "RedirectURL is required"},
		{"redirect wrong path", func(c *Config) { c.RedirectURL = "https://app.example.com/callback" }, "/bff/callback"},
		{"http redirect on a public host", func(c *Config) {
			c.RedirectURL = "http://app.example.com/bff/callback"
			c.InsecureAllowHTTP = true
		}, "not loopback"},
		{"http redirect on loopback", func(c *Config) {
			c.RedirectURL = "http://127.0.0.1:8082/bff/callback"
			c.InsecureAllowHTTP = true
		}, ""},
		{"http redirect on localhost", func(c *Config) {
			c.RedirectURL = "http://localhost:8082/bff/callback"
			c.InsecureAllowHTTP = true
		}, ""},
		{"no upstream", func(c *Config) { c.Upstream = nil }, "Upstream is required"},
		{"upstream with query", func(c *Config) { c.Upstream = &url.URL{Scheme: "https", Host: "a", RawQuery: "x"} }, "Upstream"},
		{"http upstream on loopback", func(c *Config) { c.Upstream = &url.URL{Scheme: "http", Host: "127.0.0.1:9000"} }, ""},
		{"http upstream elsewhere", func(c *Config) { c.Upstream = &url.URL{Scheme: "http", Host: "api.internal"} }, "in the clear"},
		{"prefix without slash", func(c *Config) { c.APIPrefix = "api" }, "APIPrefix"},
		{"prefix /bff", func(c *Config) { c.APIPrefix = "/bff" }, "APIPrefix"},
		{"prefix trailing slash", func(c *Config) { c.APIPrefix = "/api/" }, "APIPrefix"},
		{"cookie without __Host-", func(c *Config) { c.CookieName = "sid" }, "__Host-"},
		{"cookie with bad char", func(c *Config) { c.CookieName = "__Host-a;b" }, "__Host-"},
		{"bad scope", func(c *Config) { c.Scopes = []string{"openid", "a b"} }, "scope"},
		{"idle above max age", func(c *Config) { c.SessionIdle = 2 * time.Hour; c.SessionMaxAge = time.Hour }, "SessionIdle"},
		{"tiny login timeout", func(c *Config) { c.LoginTimeout = time.Second }, "LoginTimeout"},
		{"skew too large", func(c *Config) { c.RefreshSkew = time.Hour }, "RefreshSkew"},
		{"no store", func(c *Config) { c.Store = nil }, "Store is required"},
		{"short key", func(c *Config) { c.Key = make([]byte, 16) }, "32 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.withDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfig_OpenIDAlwaysRequested(t *testing.T) {
	c := Config{Scopes: []string{"read"}}.withDefaults()
	if strings.Join(c.Scopes, " ") != "openid read" {
		t.Fatalf("scopes %v", c.Scopes)
	}
}
