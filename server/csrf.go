package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/latch-auth/latch"
)

// CSRF defence (OWASP CSRF Prevention Cheat Sheet): every form that
// changes state carries a synchronizer token, and every POST must come
// from the issuer's own origin, by its Origin header or, failing that, its
// Sec-Fetch-Site header. A request with neither (not a browser, or a very
// old one) is judged by the token alone.
//
// Signed in, the token is HMAC-SHA256 keyed with the raw session ID over
// csrfLabel (latch.Session's doc says why it is derived and not stored).
// Before login there is no session, yet the login form needs a token too
// (login CSRF: a site logging the victim in to the attacker's account). A
// pre-session cookie, __Host-latch_login, holds 256 random bits for that,
// and the login form's token is the HMAC of that cookie over
// loginCSRFLabel: only a page of this origin, which saw the cookie set,
// can have the matching token. The cookie is SameSite=Strict (it is only
// ever needed on a POST from the login page itself), lives loginCookieTTL
// and is deleted at login. No server state and no server key: any node
// checks any form.

const (
	loginCookie    = "__Host-latch_login"
	loginCookieTTL = 3600 // seconds: how long a login form may stay open
	csrfField      = "csrf_token"
	csrfLabel      = "latch csrf v1"
	loginCSRFLabel = "latch login csrf v1"
)

// csrfToken is HMAC-SHA256(raw, label) in base64url.
func csrfToken(raw, label string) string {
	m := hmac.New(sha256.New, []byte(raw))
	m.Write([]byte(label))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenMatches compares a submitted token with the expected one in
// constant time (security invariant 9).
func tokenMatches(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// sameOrigin reports whether a state-changing request came from a page of
// the issuer's origin. Referrer-Policy: same-origin on every page keeps
// browsers sending the real Origin on our own form posts (no-referrer
// would make them send "Origin: null", Fetch §3.1).
func (s *Server) sameOrigin(r *http.Request) bool {
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		return len(origins) == 1 && origins[0] == s.origin
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	return true
}

// checkCSRF reports whether the POST r, made with the session sess, is a
// form this server rendered for sess: its csrf_token (read from the body
// only, never the URL) matches the session's token, and it comes from the
// issuer's origin. It parses the form if the caller has not.
func (s *Server) checkCSRF(r *http.Request, sess *latch.Session) bool {
	if sess == nil || !s.sameOrigin(r) {
		return false
	}
	raw := sessionCookieValue(r)
	if raw == "" || subtle.ConstantTimeCompare(hashID(raw), sess.IDHash) != 1 {
		return false
	}
	if r.PostForm == nil {
		if err := r.ParseForm(); err != nil {
			return false
		}
	}
	return tokenMatches(r.PostForm.Get(csrfField), csrfToken(raw, csrfLabel))
}

// sessionCSRF returns the token for the forms of a page rendered for the
// request's session; "" when the request has no session cookie.
func sessionCSRF(r *http.Request) string {
	raw := sessionCookieValue(r)
	if raw == "" {
		return ""
	}
	return csrfToken(raw, csrfLabel)
}

// loginCSRF returns the login form's token, setting a fresh
// __Host-latch_login cookie when the request has none (or a malformed
// one), and refreshing its lifetime otherwise so that several tabs share
// one.
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) (string, error) {
	raw := ""
	if c, err := r.Cookie(loginCookie); err == nil && validRawID(c.Value) {
		raw = c.Value
	} else if raw, err = newRandomID(s.rand); err != nil {
		return "", err
	}
	setCookie(w, loginCookie, raw, http.SameSiteStrictMode, loginCookieTTL)
	return csrfToken(raw, loginCSRFLabel), nil
}

// checkLoginCSRF is checkCSRF for the login form.
func (s *Server) checkLoginCSRF(r *http.Request) bool {
	if !s.sameOrigin(r) {
		return false
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !validRawID(c.Value) {
		return false
	}
	return tokenMatches(r.PostForm.Get(csrfField), csrfToken(c.Value, loginCSRFLabel))
}

// originOf returns the serialised origin of an absolute URL as a browser
// sends it in Origin (RFC 6454 §6.1): lower-case scheme and host, the
// port only when not the scheme's default.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}
