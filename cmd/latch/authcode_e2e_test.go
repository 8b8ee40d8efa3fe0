package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The authorization code flow of `latch serve`, end to end, driven by
// client libraries latch did not write: golang.org/x/oauth2 (PKCE, code
// exchange, refresh) and github.com/coreos/go-oidc/v3 (discovery, ID token
// signature and claims, at_hash, userinfo). The user is played by
// authBrowser, which signs in on the server's real HTML login form.

// authBrowser is the user's browser. It follows redirects itself and keeps
// cookies by hand, per host:port, because Chromium keeps __Host- and Secure
// cookies on http://127.0.0.1 (a secure context) while
// net/http/cookiejar never sends a Secure cookie over http. When a page
// shows a form with a password field, it fills in the username and
// password and submits the form with every other input as the page set it
// (the hidden csrf_token and return_to), from the page's origin, as a
// browser does.
type authBrowser struct {
	t       testing.TB
	hc      *http.Client
	cookies map[string]map[string]string // host:port -> name -> value
}

func newAuthBrowser(t testing.TB) *authBrowser {
	return &authBrowser{
		t: t,
		hc: &http.Client{
			Timeout:       30 * time.Second, // a hang guard, not an assertion
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: map[string]map[string]string{},
	}
}

// browserPage is one response the browser received, body read.
type browserPage struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

// do sends one request with the host's cookies and stores the cookies of
// the answer (a negative Max-Age deletes one).
func (b *authBrowser) do(method string, u *url.URL, form url.Values, origin string) browserPage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		b.t.Fatalf("browser: %s %s: %v", method, u, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Accept", "text/html")
	for name, value := range b.cookies[u.Host] {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("browser: %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		b.t.Fatalf("browser: reading %s: %v", u, err)
	}
	jar := b.cookies[u.Host]
	if jar == nil {
		jar = map[string]string{}
		b.cookies[u.Host] = jar
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(jar, c.Name)
		} else {
			jar[c.Name] = c.Value
		}
	}
	return browserPage{URL: u, Status: resp.StatusCode, Header: resp.Header, Body: string(raw)}
}

// visit opens start and follows redirects until a page that is not one,
// signing in as username on the way when a login form appears (username
// "": the browser must be signed in already, a form fails the test). It fails
// the test if the login form comes back after it was submitted (wrong
// credentials, refused CSRF) or if the chain does not end.
func (b *authBrowser) visit(start, username, password string) browserPage {
	b.t.Helper()
	u, err := url.Parse(start)
	if err != nil {
		b.t.Fatalf("browser: %q: %v", start, err)
	}
	method, origin := http.MethodGet, ""
	var form url.Values
	submitted := false
	for range 20 {
		pg := b.do(method, u, form, origin)
		method, form, origin = http.MethodGet, nil, ""
		if pg.Status >= 300 && pg.Status < 400 {
			loc, err := u.Parse(pg.Header.Get("Location"))
			if err != nil || pg.Header.Get("Location") == "" {
				b.t.Fatalf("browser: %d from %s with Location %q: %v", pg.Status, u, pg.Header.Get("Location"), err)
			}
			u = loc
			continue
		}
		f, ok := passwordForm(pg.Body)
		if !ok {
			// The consent page of a third-party client: the user allows.
			if cf, ok := consentForm(pg.Body); ok {
				action, err := u.Parse(cf.action)
				if err != nil {
					b.t.Fatalf("browser: consent form action %q: %v", cf.action, err)
				}
				cf.fields.Set("consent", "allow")
				method, form, origin = http.MethodPost, cf.fields, u.Scheme+"://"+u.Host
				u = action
				continue
			}
			return pg
		}
		if username == "" {
			b.t.Fatalf("browser: a login form at %s, but this visit expected a signed-in browser:\n%s", u, pg.Body)
		}
		if submitted {
			b.t.Fatalf("browser: the login form came back after signing in as %s (%d at %s):\n%s", username, pg.Status, u, pg.Body)
		}
		if f.method != http.MethodPost {
			b.t.Fatalf("browser: the login form at %s uses method %q; a password must be posted", u, f.method)
		}
		action, err := u.Parse(f.action)
		if err != nil {
			b.t.Fatalf("browser: login form action %q: %v", f.action, err)
		}
		f.fields.Set(f.userField, username)
		f.fields.Set(f.passwordField, password)
		method, form, origin = http.MethodPost, f.fields, u.Scheme+"://"+u.Host
		u, submitted = action, true
	}
	b.t.Fatalf("browser: more than 20 redirects from %s", start)
	return browserPage{}
}

// htmlForm is a form of a page: where it goes and the inputs it sends.
type htmlForm struct {
	action, method           string
	fields                   url.Values
	userField, passwordField string
}

var (
	formRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE  = regexp.MustCompile(`(?s)([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?`)
)

// attrs returns the attributes of a tag's inside, names lower-cased,
// values unescaped.
func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2] + a[3] + a[4])
	}
	return m
}

// passwordForm finds the first form of body that has a password input and
// returns it with the value of each of its named inputs.
func passwordForm(body string) (htmlForm, bool) {
	for _, fm := range formRE.FindAllStringSubmatch(body, -1) {
		fa := attrs(fm[1])
		f := htmlForm{action: fa["action"], method: strings.ToUpper(fa["method"]), fields: url.Values{}}
		if f.method == "" {
			f.method = http.MethodGet
		}
		for _, in := range inputRE.FindAllStringSubmatch(fm[2], -1) {
			ia := attrs(in[1])
			name := ia["name"]
			if name == "" {
				continue
			}
			switch strings.ToLower(ia["type"]) {
			case "password":
				f.passwordField = name
			case "", "text", "email":
				if f.userField == "" && (ia["autocomplete"] == "username" || name == "username") {
					f.userField = name
				}
			}
			f.fields.Set(name, ia["value"])
		}
		if f.passwordField != "" && f.userField != "" {
			return f, true
		}
	}
	return htmlForm{}, false
}

// consentForm finds the consent page's form: one that posts to
// /oauth2/authorize with an Allow button (name consent, value allow). It
// returns the form with its hidden inputs.
func consentForm(body string) (htmlForm, bool) {
	for _, fm := range formRE.FindAllStringSubmatch(body, -1) {
		fa := attrs(fm[1])
		if !strings.HasSuffix(fa["action"], "/oauth2/authorize") || !strings.Contains(fm[2], `name="consent" value="allow"`) {
			continue
		}
		f := htmlForm{action: fa["action"], method: http.MethodPost, fields: url.Values{}}
		for _, in := range inputRE.FindAllStringSubmatch(fm[2], -1) {
			if ia := attrs(in[1]); ia["name"] != "" {
				f.fields.Set(ia["name"], ia["value"])
			}
		}
		return f, true
	}
	return htmlForm{}, false
}

// authCallback is the client application's redirect URI: a loopback
// listener (RFC 8252 §7.3) that records every authorization response it
// receives, so the code a test redeems is the one the server's redirect
// delivered to it.
type authCallback struct {
	srv *httptest.Server
	got chan *url.URL
}

func newAuthCallback(t testing.TB) *authCallback {
	cb := &authCallback{got: make(chan *url.URL, 16)}
	cb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		select {
		case cb.got <- &u:
		default:
		}
		io.WriteString(w, "signed in; you may close this window")
	}))
	t.Cleanup(cb.srv.Close)
	return cb
}

// URI is the redirect URI to register.
func (cb *authCallback) URI() string { return cb.srv.URL + "/cb" }

// received returns the authorization response the callback got during the
// browser's last visit. The browser has read the callback's answer before
// returning, and the handler records before answering: no waiting.
func (cb *authCallback) received(t testing.TB) *url.URL {
	t.Helper()
	select {
	case u := <-cb.got:
		return u
	default:
		t.Fatal("the redirect URI was never called: no authorization response reached the client")
		return nil
	}
}

// authResponse checks an authorization response (RFC 6749 §4.1.2, RFC 9207
// §2) and returns its code.
func authResponse(t testing.TB, u *url.URL, issuer, state string) string {
	t.Helper()
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error response: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state %q in the authorization response, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != issuer {
		t.Fatalf("iss %q in the authorization response, want %q (RFC 9207)", q.Get("iss"), issuer)
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in the authorization response %s", u)
	}
	return code
}

// createAlice creates the user alice with a password given on stdin and
// returns her record.
func createAlice(t testing.TB, dataDir, password string) userJSON {
	t.Helper()
	out, errOut, code := runCLIStdin(t, password+"\n", "user", "create", "alice", "--password-stdin", "--json", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("latch user create alice: exit %d\n%s%s", code, out, errOut)
	}
	return mustUserJSON(t, out)
}

// idClaims are the ID token claims go-oidc does not expose as fields.
type idClaims struct {
	AuthTime          int64  `json:"auth_time"`
	SID               string `json:"sid"`
	AZP               string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
}

func mustIDToken(ctx context.Context, t testing.TB, v *oidc.IDTokenVerifier, tok *oauth2.Token) (*oidc.IDToken, idClaims) {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatalf("the token response has no id_token")
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc: verifying the ID token against the discovered JWKS: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatalf("ID token claims: %v", err)
	}
	return idt, c
}

// expired is tok with its access token expired, so that x/oauth2's
// TokenSource refreshes it on the next Token call.
func expired(tok *oauth2.Token) *oauth2.Token {
	return &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: time.Now().Add(-time.Hour)}
}

// TestAuthCode_GoOAuth2AndGoOIDC_ConfidentialClient runs the whole
// authorization code flow against the real binary: discovery, PKCE, login
// on the HTML form, code exchange, ID token verification (signature,
// nonce, auth_time, sid, at_hash), userinfo, rotation on refresh through
// x/oauth2's TokenSource, reuse of a rotated refresh token revoking its
// family, and `latch revoke --subject alice` ending it all.
//
// The server runs with --refresh-grace 0, so that any reuse is one after
// the grace window without the test sleeping through the default 10s.
func TestAuthCode_GoOAuth2AndGoOIDC_ConfidentialClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	dir := t.TempDir()
	p := startLatch(t, dir, "--refresh-grace", "0")
	const pw = "correct horse battery staple"
	alice := createAlice(t, dir, pw)
	cb := newAuthCallback(t)
	c := createClient(t, dir, "--grant", "authorization_code,refresh_token", "--redirect-uri", cb.URI(),
		"--scope", "openid profile read", "--audience", "api", "--first-party")
	if c.Secret == "" {
		t.Fatalf("confidential client created without a secret: %+v", c)
	}

	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", p.Issuer, err)
	}
	conf := &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: cb.URI(), Scopes: []string{oidc.ScopeOpenID, "profile", "read"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic, as registered
	idVerifier := provider.Verifier(&oidc.Config{ClientID: c.ID})

	start := time.Now()
	verifier, state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	br := newAuthBrowser(t)
	if pg := br.visit(authURL, "alice", pw); pg.Status != http.StatusOK || pg.URL.Host != cb.srv.Listener.Addr().String() {
		t.Fatalf("browser ended at %s with %d, want the callback:\n%s", pg.URL, pg.Status, pg.Body)
	}
	code := authResponse(t, cb.received(t), p.Issuer, state)

	// A wrong verifier is refused without spending the code
	// (server/grants.go: a thief's attempt must not lock the real client
	// out), so the same code then redeems with the right one.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("exchange with a wrong code_verifier: %v, want invalid_grant", err)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 code exchange: %v", err)
	}
	if tok.AccessToken == "" || !strings.HasPrefix(tok.RefreshToken, "lt_rt_") || tok.Type() != "Bearer" {
		t.Fatalf("token response: access %q, refresh %q, type %q", tok.AccessToken, tok.RefreshToken, tok.Type())
	}

	idt, claims := mustIDToken(ctx, t, idVerifier, tok)
	if idt.Subject != alice.ID {
		t.Errorf("ID token sub %q, want alice's id %q", idt.Subject, alice.ID)
	}
	if idt.Nonce != nonce {
		t.Errorf("ID token nonce %q, want %q", idt.Nonce, nonce)
	}
	if claims.SID == "" || claims.AZP != c.ID || claims.PreferredUsername != "alice" {
		t.Errorf("ID token claims %+v: want sid, azp %q, preferred_username alice", claims, c.ID)
	}
	// auth_time is the login's, not the token's; a minute either side only
	// guards against a zero or nonsense value.
	if at := time.Unix(claims.AuthTime, 0); at.Before(start.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
		t.Errorf("ID token auth_time %v, want the login time (test started %v)", at, start)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash does not bind the access token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken + "x"); err == nil {
		t.Errorf("at_hash accepted another access token")
	}

	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc userinfo: %v", err)
	}
	var uc struct {
		PreferredUsername string `json:"preferred_username"`
	}
	if err := ui.Claims(&uc); err != nil || ui.Subject != alice.ID || uc.PreferredUsername != "alice" {
		t.Fatalf("userinfo sub %q preferred_username %q (%v), want %q alice", ui.Subject, uc.PreferredUsername, err, alice.ID)
	}

	// Refresh through x/oauth2, the way an application does: its
	// TokenSource refreshes an expired token by itself.
	tok2, err := conf.TokenSource(ctx, expired(tok)).Token()
	if err != nil {
		t.Fatalf("x/oauth2 refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh did not rotate: old %q new %q", tok.RefreshToken, tok2.RefreshToken)
	}
	if tok2.AccessToken == tok.AccessToken || !tok2.Valid() {
		t.Fatalf("refresh returned the old or an invalid access token")
	}
	idt2, claims2 := mustIDToken(ctx, t, idVerifier, tok2)
	if idt2.Subject != alice.ID || claims2.AuthTime != claims.AuthTime || (idt2.Nonce != "" && idt2.Nonce != nonce) {
		t.Errorf("refreshed ID token sub %q auth_time %d nonce %q: want %q, %d, no nonce or the first one (OIDC Core §12.2)",
			idt2.Subject, claims2.AuthTime, idt2.Nonce, alice.ID, claims.AuthTime)
	}
	if err := idt2.VerifyAccessToken(tok2.AccessToken); err != nil {
		t.Errorf("refreshed at_hash: %v", err)
	}

	// The old refresh token again, after the grace window: a stolen token.
	// Refused, and its whole family is revoked (security invariant 7): the
	// successor's refresh token and access token too.
	if _, err := conf.TokenSource(ctx, expired(tok)).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse of a rotated refresh token: %v, want invalid_grant", err)
	}
	if _, err := conf.TokenSource(ctx, expired(tok2)).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh with the successor after the reuse: %v, want invalid_grant (family revoked)", err)
	}
	if got, _ := json.Marshal(introspect(t, p, c, tok2.AccessToken)); string(got) != `{"active":false}` {
		t.Fatalf("introspection of the successor's access token after the reuse = %s, want exactly {\"active\":false}", got)
	}

	// A new grant in the same login session (no form this time: the
	// browser is signed in) is another family, untouched by that.
	verifier, state, nonce = oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	if pg := br.visit(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), "", ""); pg.URL.Host != cb.srv.Listener.Addr().String() {
		t.Fatalf("signed-in browser ended at %s, want the callback", pg.URL)
	}
	tok3, err := conf.Exchange(ctx, authResponse(t, cb.received(t), p.Issuer, state), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("second code exchange: %v", err)
	}
	if idt3, _ := mustIDToken(ctx, t, idVerifier, tok3); idt3.Nonce != nonce {
		t.Fatalf("second ID token nonce %q, want %q", idt3.Nonce, nonce)
	}
	tok4, err := conf.TokenSource(ctx, expired(tok3)).Token()
	if err != nil || tok4.RefreshToken == tok3.RefreshToken {
		t.Fatalf("refresh in the new family: %v (rotated: %v)", err, err == nil && tok4.RefreshToken != tok3.RefreshToken)
	}

	// latch revoke --subject alice: signed out everywhere.
	revoked := mustUserJSON(t, runCLI(t, "revoke", "--subject", "alice", "--data-dir", dir, "--json"))
	if revoked.ID != alice.ID || revoked.SessionsEnded == nil || *revoked.SessionsEnded != 1 {
		t.Fatalf("latch revoke --subject alice: %+v, want alice with her one login session ended", revoked)
	}
	if got := introspect(t, p, c, tok4.RefreshToken); got["active"] != false {
		t.Fatalf("introspection of the last refresh token after latch revoke: %v, want inactive", got)
	}
	_, err = conf.TokenSource(ctx, expired(tok4)).Token()
	if !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh after latch revoke --subject alice: %v, want invalid_grant", err)
	}
	got := introspect(t, p, c, tok4.AccessToken)
	if b, _ := json.Marshal(got); string(b) != `{"active":false}` {
		t.Fatalf("introspection of the last access token after revocation = %s, want exactly {\"active\":false}", b)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok4)); err == nil {
		t.Fatalf("userinfo answered for a revoked access token")
	}
	// The login session is gone too: the browser is sent to the login form.
	pg := br.do(http.MethodGet, mustParseURL(t, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))), nil, "")
	if loc, _ := url.Parse(pg.Header.Get("Location")); pg.Status != http.StatusSeeOther || loc == nil || loc.Path != "/login" {
		t.Fatalf("authorize after revocation: %d Location %q, want 303 to /login", pg.Status, pg.Header.Get("Location"))
	}
}

// TestAuthCode_GoOAuth2_PublicClientPKCE runs the same flow for a public
// client (token_endpoint_auth_method none): no secret, PKCE alone proves
// that the redeemer is the one that asked. It also checks the other side
// of the grace window: a retry with the rotated refresh token within it
// gets the same successor, a new access token, and revokes nothing. The
// server runs with the longest window, --refresh-grace 1m, so that the
// retry, the next request after the rotation, is inside it even on a
// loaded machine.
func TestAuthCode_GoOAuth2_PublicClientPKCE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	dir := t.TempDir()
	const grace = time.Minute
	p := startLatch(t, dir, "--refresh-grace", grace.String())
	const pw = "correct horse battery staple"
	alice := createAlice(t, dir, pw)
	cb := newAuthCallback(t)
	c := createClient(t, dir, "--grant", "authorization_code,refresh_token", "--redirect-uri", cb.URI(),
		"--scope", "openid profile read", "--audience", "api", "--auth-method", "none") // consent page: not first party
	if c.Secret != "" {
		t.Fatalf("public client was given a secret")
	}

	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	conf := &oauth2.Config{ClientID: c.ID, Endpoint: provider.Endpoint(), RedirectURL: cb.URI(),
		Scopes: []string{oidc.ScopeOpenID, "profile", "read"}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id in the form, no secret anywhere

	br := newAuthBrowser(t)
	verifier, state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	br.visit(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), "alice", pw)
	code := authResponse(t, cb.received(t), p.Issuer, state)

	// Without a secret, the verifier is what proves the redeemer is the
	// client that asked: a code alone is refused.
	if _, err := conf.Exchange(ctx, code); !isOAuthError(err, "invalid_request") {
		t.Fatalf("public client exchange without code_verifier: %v, want invalid_request", err)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("public client code exchange: %v", err)
	}
	idt, claims := mustIDToken(ctx, t, provider.Verifier(&oidc.Config{ClientID: c.ID}), tok)
	if idt.Subject != alice.ID || idt.Nonce != nonce || claims.SID == "" || claims.AuthTime == 0 {
		t.Fatalf("ID token sub %q nonce %q claims %+v: want %q, %q, sid and auth_time", idt.Subject, idt.Nonce, claims, alice.ID, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	rotated := time.Now()
	tok2, err := conf.TokenSource(ctx, expired(tok)).Token()
	if err != nil {
		t.Fatalf("public client refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh did not rotate: old %q new %q", tok.RefreshToken, tok2.RefreshToken)
	}
	// The rotated token again, as a second tab or a retry after a lost
	// response would send it: within the window it works, with the same
	// successor (one chain), and that successor stays valid.
	tok3, err := conf.TokenSource(ctx, expired(tok)).Token()
	if since := time.Since(rotated); since < grace-10*time.Second {
		if err != nil {
			t.Fatalf("retry with the rotated refresh token %v after its rotation, within the %v window: %v", since, grace, err)
		}
		if tok3.RefreshToken != tok2.RefreshToken || tok3.AccessToken == tok2.AccessToken {
			t.Fatalf("a retry within the grace window got refresh token %q and access token %q, want the first successor %q and a new access token",
				tok3.RefreshToken, tok3.AccessToken, tok2.RefreshToken)
		}
	} else {
		// Only a machine stalled for most of a minute gets here; then
		// either answer is right and neither is checked.
		t.Logf("the retry came %v after the rotation, too near the %v window to judge (%v)", since, grace, err)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2))
	if err != nil || ui.Subject != alice.ID {
		t.Fatalf("userinfo with the refreshed access token: %+v %v", ui, err)
	}
	// A secret the client does not have is refused: it is public.
	bad := *conf
	bad.ClientSecret = "not-a-secret"
	if _, err := bad.TokenSource(ctx, expired(tok2)).Token(); !isOAuthError(err, "invalid_client") {
		t.Fatalf("public client refresh with a secret: %v, want invalid_client", err)
	}

	// The code replayed: refused, and the tokens issued with it are
	// revoked (RFC 6749 §4.1.2), rotated successors included.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("second redemption of the code: %v, want invalid_grant", err)
	}
	for _, rt := range []*oauth2.Token{tok2, tok3} {
		if rt == nil {
			continue // the stalled-machine branch above
		}
		if _, err := conf.TokenSource(ctx, expired(rt)).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh after the code was replayed: %v, want invalid_grant (family revoked)", err)
		}
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Fatalf("userinfo answered for an access token of a revoked family")
	}
}

// isOAuthError reports whether err is an RFC 6749 §5.2 error response
// with the given code, as x/oauth2 reports it.
func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
