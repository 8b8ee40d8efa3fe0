package server_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"
)

// hiddenRE finds the hidden fields of a page's form.
var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func htmlUnescape(s string) string { return html.UnescapeString(s) }

// authorizeURL is an authorization request of the web client with PKCE.
func authorizeURL(c creds, mutate ...func(url.Values)) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid profile read"}, "state": {"st-123"}, "nonce": {"nc-456"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	for _, m := range mutate {
		m(q)
	}
	return "/oauth2/authorize?" + q.Encode()
}

// callback parses a redirect to the client's redirect URI.
func callback(t testing.TB, w interface{ Header() http.Header }) url.Values {
	t.Helper()
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "https://app.example/cb" {
		t.Fatalf("not a redirect to the client: %q", w.Header().Get("Location"))
	}
	return loc.Query()
}

func TestAuthorize_LoginThenCodeThenTokens(t *testing.T) {
	e, _, alice := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)

	w := a.get(authorizeURL(c))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?") {
		t.Fatalf("authorize without a session: %d %q", w.Code, w.Header().Get("Location"))
	}
	loginURL, _ := url.Parse(w.Header().Get("Location"))
	returnTo := loginURL.Query().Get("return_to")
	w = a.login("alice", alicePassword, returnTo)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != returnTo {
		t.Fatalf("login: %d to %q, want %q", w.Code, w.Header().Get("Location"), returnTo)
	}
	w = a.get(returnTo)
	if w.Code != http.StatusFound {
		t.Fatalf("authorize after login: %d %s", w.Code, w.Body)
	}
	q := callback(t, w)
	if q.Get("state") != "st-123" || q.Get("iss") != testIssuer || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	status, tr := e.redeem(c, q.Get("code"))
	if status != 200 {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
	id := payload(t, tr.IDToken)
	if id["sub"] != alice.ID || id["nonce"] != "nc-456" || id["sid"] == nil || id["auth_time"] == nil {
		t.Errorf("ID token claims %v", id)
	}

	// Signed in already: straight to the client, no login page.
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("state", "again") }))
	if w.Code != http.StatusFound || callback(t, w).Get("state") != "again" {
		t.Fatalf("second authorize: %d %q", w.Code, w.Header().Get("Location"))
	}

	// Signing out of this browser ends the grants it approved.
	tok := csrfOf(t, a.get("/").Body.String())
	if w := a.post("/logout", url.Values{"csrf_token": {tok}}); w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if status, _ := e.refresh(c, tr.RefreshToken); status != 400 {
		t.Errorf("refresh after the session's logout: %d, want 400", status)
	}
	if e.active(c, tr.AccessToken) {
		t.Error("access token of the ended session still active")
	}
}

func TestAuthorize_ThirdPartyClientAsksForConsent(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false; s.Name = "Other App" })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)

	w := a.get(authorizeURL(c))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Other App") {
		t.Fatalf("consent page: %d %s", w.Code, w.Body)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(w.Body.String(), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	allow, deny := url.Values{}, url.Values{}
	for k, v := range form {
		allow[k], deny[k] = v, v
	}
	deny.Set("consent", "deny")
	if w := a.post("/oauth2/authorize", deny); w.Code != http.StatusSeeOther || callback(t, w).Get("error") != "access_denied" {
		t.Fatalf("deny: %d %q", w.Code, w.Header().Get("Location"))
	}
	// A forged approval without the page's CSRF token is refused.
	forged := url.Values{}
	for k, v := range allow {
		forged[k] = v
	}
	forged.Set("consent", "allow")
	forged.Set("csrf_token", "forged")
	if w := a.post("/oauth2/authorize", forged); w.Code != http.StatusForbidden {
		t.Fatalf("forged consent: %d %q", w.Code, w.Header().Get("Location"))
	}
	// prompt=none cannot show the page.
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("prompt", "none") }))
	if callback(t, w).Get("error") != "consent_required" {
		t.Fatalf("prompt=none for a third party: %q", w.Header().Get("Location"))
	}
	allow.Set("consent", "allow")
	w = a.post("/oauth2/authorize", allow)
	if w.Code != http.StatusSeeOther || callback(t, w).Get("code") == "" {
		t.Fatalf("allow: %d %q", w.Code, w.Header().Get("Location"))
	}
	if status, tr := e.redeem(c, callback(t, w).Get("code")); status != 200 {
		t.Fatalf("redeem after consent: %d %+v", status, tr)
	}
}

func TestAuthorize_Errors(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)

	// Shown on a page, never redirected: the redirect URI is not trusted.
	for name, target := range map[string]string{
		"no client":          "/oauth2/authorize?response_type=code",
		"unknown client":     authorizeURL(creds{ID: "nope"}),
		"unregistered uri":   authorizeURL(c, func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }),
		"prefix of uri":      authorizeURL(c, func(v url.Values) { v.Set("redirect_uri", "https://app.example/cb/x") }),
		"no redirect uri":    authorizeURL(c, func(v url.Values) { v.Del("redirect_uri") }),
		"duplicated param":   authorizeURL(c) + "&state=two",
		"malformed query":    "/oauth2/authorize?client_id=%zz",
		"duplicate redirect": authorizeURL(c) + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
	} {
		w := a.get(target)
		if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d to %q, want a 400 page", name, w.Code, w.Header().Get("Location"))
		}
	}
	if w := a.do(http.MethodPut, authorizeURL(c), nil, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}

	// Redirected back with the error and the state.
	for name, tc := range map[string]struct {
		mutate func(url.Values)
		want   string
	}{
		"no pkce":        {func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "invalid_request"},
		"plain pkce":     {func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		"short chall":    {func(v url.Values) { v.Set("code_challenge", "abc") }, "invalid_request"},
		"implicit":       {func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		"scope":          {func(v url.Values) { v.Set("scope", "openid latch:admin") }, "invalid_scope"},
		"audience":       {func(v url.Values) { v.Set("resource", "https://other.example") }, "invalid_target"},
		"request object": {func(v url.Values) { v.Set("request", "eyJ...") }, "request_not_supported"},
		"prompt":         {func(v url.Values) { v.Set("prompt", "bogus") }, "invalid_request"},
		"max_age":        {func(v url.Values) { v.Set("max_age", "-1") }, "invalid_request"},
		"fragment mode":  {func(v url.Values) { v.Set("response_mode", "fragment") }, "invalid_request"},
	} {
		w := a.get(authorizeURL(c, tc.mutate))
		q := callback(t, w)
		if q.Get("error") != tc.want || q.Get("state") != "st-123" || q.Get("iss") != testIssuer || q.Get("code") != "" {
			t.Errorf("%s: redirected with %v, want error %s", name, q, tc.want)
		}
	}
}

func TestAuthorize_PromptAndMaxAge(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	if w := a.get(authorizeURL(c, func(v url.Values) { v.Set("prompt", "none") })); callback(t, w).Get("error") != "login_required" {
		t.Fatalf("prompt=none without a session: %q", w.Header().Get("Location"))
	}
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("prompt", "login") }))
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusSeeOther || loc.Path != "/login" || loc.Query().Get("prompt") != "login" ||
		strings.Contains(loc.Query().Get("return_to"), "prompt=login") {
		t.Fatalf("prompt=login: %d %q", w.Code, w.Header().Get("Location"))
	}
	// Logging in again leads back to a request that does not loop.
	w = a.login("alice", alicePassword, loc.Query().Get("return_to"))
	w = a.get(w.Header().Get("Location"))
	if w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
		t.Fatalf("after the forced login: %d %q", w.Code, w.Header().Get("Location"))
	}
	e.clock.Advance(2 * 60e9)
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("max_age", "60") }))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?") {
		t.Fatalf("max_age exceeded: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestEndSession_WithHintEndsTheSessionAndRedirects(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c))
	_, tr := e.redeem(c, callback(t, w).Get("code"))

	// Without a hint: the account page, where signing out is one click.
	if w := a.get("/oauth2/logout"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("logout without a hint: %d %q", w.Code, w.Header().Get("Location"))
	}
	if a.signedInAs() != "alice" {
		t.Fatal("a hintless logout request ended the session")
	}
	bad := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"https://evil.example/"}}
	if w := a.get("/oauth2/logout?" + bad.Encode()); w.Code != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: %d %q", w.Code, w.Header().Get("Location"))
	}
	q := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"https://app.example/cb"}, "state": {"bye"}}
	w = a.get("/oauth2/logout?" + q.Encode())
	if w.Code != http.StatusFound || callback(t, w).Get("state") != "bye" {
		t.Fatalf("logout with hint: %d %q", w.Code, w.Header().Get("Location"))
	}
	if a.signedInAs() != "" {
		t.Fatal("still signed in after RP-initiated logout")
	}
	if status, _ := e.refresh(c, tr.RefreshToken); status != 400 {
		t.Error("refresh token of the ended session still works")
	}
}
