package server

import (
	"context"
	"net/http"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/loginsession"
)

// The login session cookie (security invariant 6, docs/login.md).
//
// It holds only the session ID, 256 bits from crypto/rand in base64url;
// the store keeps the SHA-256 of that string. The __Host- prefix makes the
// browser refuse the cookie unless it is Secure, has Path=/ and no Domain,
// so neither a sibling subdomain nor a plain-http page on the same host
// can set or overwrite it (RFC 6265bis §4.1.3.2). HttpOnly keeps it from
// scripts. It has no Expires: it ends with the browser, and the server
// ends it sooner (idle and absolute timeouts).
//
// SameSite=Lax, not Strict: a client application sends the browser to
// /oauth2/authorize with a top-level GET navigation from its own site,
// and the cookie must come along or the user would have to log in on every
// authorization. Lax sends it on such navigations only; every request that
// changes state is a POST, which Lax keeps from other sites, on top of the
// CSRF token and the Origin check that each of them carries.
const sessionCookie = "__Host-latch_session"

// sessionCookieValue returns the request's session ID if it has the right
// form, else "".
func sessionCookieValue(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !loginsession.ValidRawID(c.Value) {
		return ""
	}
	return c.Value
}

// setCookie writes a __Host- cookie: Secure, HttpOnly, Path=/, no Domain.
// The attributes are the same with --dev on http://127.0.0.1: Chromium
// and Firefox treat loopback as a secure context and keep Secure and
// __Host- cookies there (docs/login.md). maxAge < 0 deletes the cookie.
func setCookie(w http.ResponseWriter, name, value string, sameSite http.SameSite, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: sameSite, MaxAge: maxAge})
}

// createSession stores a new session for user and returns its raw ID for
// the cookie (loginsession.Sessions.Create: never an ID from the request).
// r is the login request: its User-Agent and client address are kept for
// the account page.
func (s *Server) createSession(ctx context.Context, r *http.Request, userID string, now time.Time) (string, *latch.Session, error) {
	return s.sessions.Create(ctx, userID, now, sessionUserAgent(r.UserAgent()), clientAddr(r, s.cfg.TrustedProxies))
}

// currentSession returns the request's active login session and its user,
// or (nil, nil, nil) when there is none: no cookie or a malformed one, an
// unknown or expired session, a user deleted or disabled, or a session
// authenticated before the user's last password change (see
// loginsession.Sessions.Current). It errors only when the store fails.
// Responses that depend on it must not be cached, so it marks them.
func (s *Server) currentSession(w http.ResponseWriter, r *http.Request) (*latch.Session, *latch.User, error) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Cookie")
	raw := sessionCookieValue(r)
	if raw == "" {
		return nil, nil, nil
	}
	return s.sessions.Current(r.Context(), raw, s.now())
}

// endSession ends a login session: logout. Ending one that is already gone
// is not an error.
func (s *Server) endSession(ctx context.Context, sess *latch.Session) error {
	return loginsession.End(ctx, s.store, sess, s.now(), s.revoked)
}
