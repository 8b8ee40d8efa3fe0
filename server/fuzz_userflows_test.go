package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"
)

// FuzzUserFlows sends arbitrary queries, form bodies and Authorization
// headers to the endpoints of the user flows, signed in and not: the
// authorization endpoint (GET query and POST form, where the consent page
// posts), RP-initiated logout, userinfo, login and the code and refresh
// grants. Whatever the input, the answer is never a 5xx (security invariant
// 10), and a redirect never leaves for a URI that is not registered.
func FuzzUserFlows(f *testing.F) {
	e, _, _ := loginEnv(f)
	c := e.webClient()
	third := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	session := a.jar["__Host-latch_session"].Value
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid read"}, "state": {"s"}, "code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	f.Add(uint8(0), q.Encode(), "", true)
	q.Set("client_id", third.ID)
	f.Add(uint8(1), q.Encode()+"&consent=allow&csrf_token=x", "", true)
	f.Add(uint8(2), "id_token_hint=e30.e30.e30&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fcb", "", true)
	f.Add(uint8(3), "", "Bearer e30.e30.e30", false)
	f.Add(uint8(4), "username=alice&password=x&csrf_token=y&return_to=%2F%2Fevil", "", false)
	f.Add(uint8(5), "grant_type=authorization_code&code=abc&redirect_uri=x&code_verifier="+testVerifier, "", false)
	f.Add(uint8(6), "grant_type=refresh_token&refresh_token=lt_rt_AAAA&scope=openid", "", false)
	basic := "Basic " + b64std(c.ID+":"+c.Secret)
	f.Fuzz(func(t *testing.T, which uint8, input, auth string, signedIn bool) {
		var r *http.Request
		switch which % 7 {
		case 0:
			r = httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
			r.URL.RawQuery = input
		case 1:
			r = httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader(input))
		case 2:
			r = httptest.NewRequest(http.MethodGet, "/oauth2/logout", nil)
			r.URL.RawQuery = input
		case 3:
			r = httptest.NewRequest(http.MethodGet, "/userinfo", nil)
		case 4:
			r = httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(input))
		case 5, 6:
			r = httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(input))
			if auth == "" {
				auth = basic
			}
		}
		if r.Method == http.MethodPost {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", testIssuer)
		}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if signedIn {
			r.AddCookie(&http.Cookie{Name: "__Host-latch_session", Value: session})
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, w.Body)
		}
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") &&
			!strings.HasPrefix(loc, "https://app.example/cb?") {
			t.Fatalf("%s %s redirects to %q, which is not registered", r.Method, r.URL, loc)
		}
	})
}
