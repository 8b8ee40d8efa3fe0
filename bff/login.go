package bff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// pendingLogin is the BFF's half of one authorization request. It lives
// nowhere on the server: it is sealed (AES-256-GCM under the BFF's Key,
// bound to SHA-256 of the state) into a pre-login cookie named after the
// state, which only the browser that started the login holds. So an
// unauthenticated GET /bff/login costs the BFF no storage at all, and a
// callback carrying the state without that browser's cookie (login CSRF,
// a leaked authorization response) finds nothing to complete.
type pendingLogin struct {
	Expires  int64 // Unix seconds; the login fails from then on
	Nonce    string
	Verifier string // PKCE code_verifier (RFC 7636 §4.1)
	ReturnTo string
}

// MaxReturnTo bounds return_to, which travels sealed in the pre-login
// cookie: with it, maxPendingLogins cookies stay far below the 4096 bytes
// a browser keeps per cookie and the 16 KiB of headers servers accept.
const MaxReturnTo = 1024

// maxPendingLogins is how many logins one browser may have in flight (one
// per tab). A login started beyond it clears the others, whose callbacks
// then ask the user to start again: a page that navigates a victim's
// browser to /bff/login in a loop cannot pile up cookies.
const maxPendingLogins = 3

// marshal encodes p compactly, without JSON's escaping of the characters
// a path may hold: a field's length (one byte; nonce and verifier are 43)
// before it, return_to last.
func (p pendingLogin) marshal() []byte {
	out := binary.BigEndian.AppendUint64(nil, uint64(p.Expires))
	for _, f := range []string{p.Nonce, p.Verifier} {
		out = append(out, byte(len(f)))
		out = append(out, f...)
	}
	return append(out, p.ReturnTo...)
}

var errPendingFormat = errors.New("bff: malformed pending login")

func unmarshalPending(b []byte) (pendingLogin, error) {
	var p pendingLogin
	if len(b) < 8 {
		return p, errPendingFormat
	}
	p.Expires, b = int64(binary.BigEndian.Uint64(b)), b[8:]
	for _, f := range []*string{&p.Nonce, &p.Verifier} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return p, errPendingFormat
		}
		*f, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
	}
	p.ReturnTo = string(b)
	return p, nil
}

// pendingCookie names the pre-login cookie of the login whose state
// hashes to key: a login per tab gets its own cookie, so logins started
// in several tabs each complete.
func (b *BFF) pendingCookie(key [32]byte) string {
	return b.loginCookie + "_" + base64.RawURLEncoding.EncodeToString(key[:12])
}

// login answers GET /bff/login?return_to=/path: it seals the pending login
// into a pre-login cookie and redirects the browser to the authorization
// endpoint with state, nonce and a PKCE S256 challenge.
func (b *BFF) login(w http.ResponseWriter, r *http.Request) error {
	returnTo := "/"
	if v := r.URL.Query()["return_to"]; len(v) > 0 {
		if len(v) > 1 || !validReturnTo(v[0]) {
			return &httpError{status: http.StatusBadRequest, code: CodeInvalidRequest, desc: fmt.Sprintf("return_to must be one local path of at most %d bytes starting with a single /, e.g. /settings", MaxReturnTo)}
		}
		returnTo = v[0]
	}
	state, err := b.random(32)
	if err != nil {
		return err
	}
	nonce, err := b.random(32)
	if err != nil {
		return err
	}
	verifier, err := b.random(32)
	if err != nil {
		return err
	}
	now := b.cfg.Now()
	key := sha256.Sum256([]byte(state))
	p := pendingLogin{Expires: now.Add(b.cfg.LoginTimeout).Unix(), Nonce: nonce, Verifier: verifier, ReturnTo: returnTo}
	sealed, err := b.seal.seal(kindLogin, key[:], p.marshal())
	if err != nil {
		return err
	}
	var pending []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, b.loginCookie+"_") {
			pending = append(pending, c.Name)
		}
	}
	if len(pending) >= maxPendingLogins {
		for _, name := range pending {
			b.clearCookie(w, name)
		}
	}
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {b.cfg.ClientID},
		"redirect_uri":          {b.cfg.RedirectURL},
		"scope":                 {strings.Join(b.cfg.Scopes, " ")},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	if b.cfg.Audience != "" {
		q.Set("resource", b.cfg.Audience)
	}
	if jkt := b.jkt(); jkt != "" {
		// RFC 9449 §10: the code is bound to the BFF's key, so a code
		// that leaks from the front channel is useless to a client without
		// it, PKCE aside.
		q.Set("dpop_jkt", jkt)
	}
	b.setCookie(w, b.pendingCookie(key), base64.RawURLEncoding.EncodeToString(sealed), b.cfg.LoginTimeout, http.SameSiteLaxMode)
	noStore(w)
	http.Redirect(w, r, withQuery(b.iss.md.AuthorizationEndpoint, q), http.StatusFound)
	return nil
}

// noStore marks an answer that must not be cached or leak its URL (the
// callback's carries the code) through Referer.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// withQuery appends q to endpoint, which may have a query of its own.
func withQuery(endpoint string, q url.Values) string {
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q.Encode()
}

func loginFailed(desc string, cause error) *httpError {
	return &httpError{status: http.StatusBadRequest, code: CodeLoginFailed, desc: desc, cause: cause}
}

// callback answers GET /bff/callback, the redirect back from the
// authorization endpoint (RFC 6749 §4.1.2): it takes the pending login of
// the state, checks that this browser started it, exchanges the code with
// the PKCE verifier, checks the ID token, creates a new session and
// redirects to return_to.
func (b *BFF) callback(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		return loginFailed("the callback has no valid state; start again at /bff/login", nil)
	}
	now := b.cfg.Now()
	key := sha256.Sum256([]byte(state))
	name := b.pendingCookie(key)
	c, err := r.Cookie(name)
	if err != nil {
		return loginFailed("no login with this state is pending in this browser: it expired, was already used or was started in another browser; start again at /bff/login", nil)
	}
	// Single use: the cookie goes now, whatever happens next, and the code
	// the state came with is single-use at the authorization server (RFC
	// 6749 §4.1.2).
	b.clearCookie(w, name)
	var p pendingLogin
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err == nil {
		var plain []byte
		if plain, err = b.seal.open(kindLogin, key[:], sealed); err == nil {
			p, err = unmarshalPending(plain)
		}
	}
	if err != nil {
		return loginFailed("the pending login cannot be read; start again at /bff/login", err)
	}
	if now.Unix() >= p.Expires {
		return loginFailed("the login expired; start again at /bff/login", nil)
	}
	// RFC 9207 §2.4: the response must come from the issuer we sent the
	// user to (mix-up attacks).
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != b.cfg.Issuer {
			return loginFailed("the authorization response comes from another issuer", nil)
		}
	} else if b.iss.md.IssParameter {
		return loginFailed("the authorization response has no iss (RFC 9207)", nil)
	}
	if e := q.Get("error"); e != "" {
		return loginFailed("the authorization server refused the login: "+sanitize(e), nil)
	}
	code := q.Get("code")
	if code == "" {
		return loginFailed("the callback has no code", nil)
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {b.cfg.RedirectURL},
		"code_verifier": {p.Verifier},
	}
	if b.cfg.Audience != "" {
		form.Set("resource", b.cfg.Audience)
	}
	tr, err := b.iss.token(ctx, form)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) && oe.Status < 500 {
			if oe.Code == "invalid_client" || oe.Code == "unauthorized_client" {
				// Our own configuration, not the user's doing.
				return &httpError{status: http.StatusBadGateway, code: "server_error", desc: "the authorization server refused the BFF's client credentials; check --client-id and the secret", cause: err}
			}
			return loginFailed("the authorization server refused the code: "+sanitize(oe.Code), err)
		}
		return unavailable("the authorization server cannot be reached", err)
	}
	if tr.IDToken == "" {
		return &httpError{status: http.StatusBadGateway, code: "server_error", desc: "the authorization server returned no ID token; the client must be allowed the openid scope", cause: nil}
	}
	idc, err := b.iss.verifyIDToken(ctx, tr.IDToken, p.Nonce)
	if err != nil {
		return loginFailed("the ID token is not valid for this login", err)
	}
	if tr.RefreshToken == "" {
		b.cfg.Logger.Warn("bff: the token endpoint issued no refresh token: sessions end when their access token expires; allow the refresh_token grant for the client")
	}

	s := session{
		Subject:      idc.Subject,
		User:         map[string]any{},
		IDToken:      tr.IDToken,
		RefreshToken: tr.RefreshToken,
		CreatedAt:    now.Unix(),
		ExpiresAt:    now.Add(b.cfg.SessionMaxAge).Unix(),
	}
	for _, name := range userClaims {
		if v, ok := idc.Extra[name]; ok {
			s.User[name] = v
		}
	}
	b.setAccess(&s, tr, now)

	// Session fixation (OWASP Session Management §"Renew the Session ID
	// After Any Privilege Level Change"): the cookie value is new at every
	// login, and a session the browser had before ends.
	if old, err := r.Cookie(b.cfg.CookieName); err == nil {
		if oldKey, found := cookieKey(old.Value); found {
			if _, err := b.endSession(ctx, oldKey); err != nil {
				return err
			}
		}
	}
	value, err := b.random(32)
	if err != nil {
		return err
	}
	skey := sha256.Sum256([]byte(value))
	sealedSession, err := b.sealSession(skey, &s)
	if err != nil {
		return err
	}
	exp := min(now.Add(b.cfg.SessionIdle).Unix(), s.ExpiresAt)
	if err := b.cfg.Store.CreateSession(ctx, skey[:], sealedSession, time.Unix(exp, 0), now); err != nil {
		return unavailable("the session store cannot be reached", err)
	}
	b.setCookie(w, b.cfg.CookieName, value, b.cfg.SessionMaxAge, http.SameSiteStrictMode)
	b.cfg.Logger.Info("bff: login", "sub", s.Subject)
	http.Redirect(w, r, p.ReturnTo, http.StatusFound)
	return nil
}

// setAccess records the access token of a token response in s. Its expiry
// is expires_in from now, or the JWT's exp, or 5 minutes when neither is
// known (the refresh then just comes early).
func (b *BFF) setAccess(s *session, tr *tokenResponse, now time.Time) {
	s.AccessToken = tr.AccessToken
	s.AccessJTI = ""
	s.JKT = ""
	if strings.EqualFold(tr.TokenType, "DPoP") {
		s.JKT = b.jkt()
	}
	jti, jexp := jwtIDAndExp(tr.AccessToken)
	s.AccessJTI = jti
	switch {
	case tr.ExpiresIn > 0:
		s.AccessExp = now.Unix() + tr.ExpiresIn
	case jexp > 0:
		s.AccessExp = jexp
	default:
		s.AccessExp = now.Add(5 * time.Minute).Unix()
	}
	if tr.RefreshToken != "" {
		s.RefreshToken = tr.RefreshToken
	}
	if tr.IDToken != "" {
		s.IDToken = tr.IDToken
	}
}

// jwtIDAndExp reads jti and exp from a JWT access token's payload without
// checking it: the BFF got it straight from the token endpoint and only
// needs its jti for the denylist; the upstream verifies it. An opaque
// token yields nothing.
func jwtIDAndExp(tok string) (string, int64) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", 0
	}
	var c struct {
		JTI string `json:"jti"`
		Exp int64  `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", 0
	}
	return c.JTI, c.Exp
}

// sanitize keeps an error code from the query fit for a JSON description:
// printable ASCII, at most 64 bytes.
func sanitize(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s) && sb.Len() < 64; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// logoutAnswer is the body of POST /bff/logout.
type logoutAnswer struct {
	LoggedOut bool `json:"logged_out"`
	// Revoked is false when the session's refresh family could not be
	// revoked at the authorization server (unreachable): the BFF session
	// is gone all the same, the family lives until it expires.
	Revoked bool `json:"revoked"`
	// EndSessionURL, when the issuer has an end_session_endpoint, is where
	// the SPA may send the browser to end its login session at the
	// authorization server too (OIDC RP-Initiated Logout).
	EndSessionURL string `json:"end_session_url,omitempty"`
}

// logout answers POST /bff/logout: it revokes the session's refresh token
// at the authorization server (RFC 7009; latch revokes the whole family
// and denylists its access tokens), deletes the session and clears the
// cookie. Without a session it only clears the cookie.
func (b *BFF) logout(w http.ResponseWriter, r *http.Request) error {
	if err := b.checkCSRF(r); err != nil {
		return err
	}
	ans := logoutAnswer{LoggedOut: true, Revoked: true}
	if c, err := r.Cookie(b.cfg.CookieName); err == nil {
		if key, ok := cookieKey(c.Value); ok {
			var err error
			if ans.Revoked, err = b.endSession(r.Context(), key); err != nil {
				return err
			}
		}
		b.clearCookie(w, b.cfg.CookieName)
	}
	if ep := b.iss.md.EndSessionEndpoint; ep != "" {
		q := url.Values{"client_id": {b.cfg.ClientID}}
		if b.cfg.PostLogoutRedirectURL != "" {
			q.Set("post_logout_redirect_uri", b.cfg.PostLogoutRedirectURL)
		}
		ans.EndSessionURL = withQuery(ep, q)
	}
	return writeJSON(w, ans)
}

// endSession revokes the session's tokens at the issuer and deletes it. It
// reports whether the revocation succeeded; a session that no longer
// exists has nothing left to revoke (true).
func (b *BFF) endSession(ctx context.Context, key [32]byte) (bool, error) {
	now := b.cfg.Now()
	s, _, err := b.readSession(ctx, key, now)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.code == CodeLoginRequired {
			return true, nil // already gone
		}
		return false, err
	}
	revoked := true
	tok, hint := s.RefreshToken, "refresh_token"
	if tok == "" {
		tok, hint = s.AccessToken, "access_token"
	}
	if err := b.iss.revoke(ctx, tok, hint); err != nil {
		revoked = false
		b.cfg.Logger.Warn("bff: logout: cannot revoke the session's tokens at the authorization server; they stay valid until they expire", "sub", s.Subject, "err", err)
	}
	if err := b.cfg.Store.DeleteSession(ctx, key[:]); err != nil {
		return revoked, unavailable("the session store cannot be reached", err)
	}
	b.cfg.Logger.Info("bff: logout", "sub", s.Subject, "revoked", revoked)
	return revoked, nil
}
