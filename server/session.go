package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/latch-auth/latch"
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

// rawIDLen is the length of a session ID in the cookie: 32 bytes in
// unpadded base64url.
var rawIDLen = base64.RawURLEncoding.EncodedLen(32)

// touchInterval is how stale LastSeenAt may get before a request moves
// the idle expiry: one store write per session per minute at most, not one
// per request. The idle timeout is so enforced to within a minute.
const touchInterval = time.Minute

// newRandomID returns 32 bytes from r in base64url.
func newRandomID(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("server: reading random session ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validRawID reports whether v has the form of an ID this server issues,
// so that a malformed cookie is dropped without a store lookup.
func validRawID(v string) bool {
	if len(v) != rawIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

func hashID(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// sessionCookieValue returns the request's session ID if it has the right
// form, else "".
func sessionCookieValue(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !validRawID(c.Value) {
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
// the cookie. The ID is always new: a session ID that came with the
// request, the attacker's in a session fixation, is never adopted.
// r is the login request: its User-Agent and client address are kept for
// the account page.
func (s *Server) createSession(ctx context.Context, r *http.Request, userID string, now time.Time) (string, *latch.Session, error) {
	raw, err := newRandomID(s.rand)
	if err != nil {
		return "", nil, err
	}
	now = now.UTC()
	sess := &latch.Session{IDHash: hashID(raw), UserID: userID, AuthTime: now, CreatedAt: now,
		LastSeenAt: now, IdleExpiresAt: now.Add(s.cfg.SessionIdleTimeout), ExpiresAt: now.Add(s.cfg.SessionMaxAge),
		UserAgent: sessionUserAgent(r.UserAgent()), Address: clientAddr(r, s.cfg.TrustedProxies)}
	if sess.IdleExpiresAt.After(sess.ExpiresAt) {
		sess.IdleExpiresAt = sess.ExpiresAt
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return raw, sess, nil
}

// currentSession returns the request's active login session and its user,
// or (nil, nil, nil) when there is none: no cookie or a malformed one, an
// unknown or expired session, a user deleted or disabled, or a session
// authenticated before the user's last password change. It moves the idle
// expiry at most once per touchInterval. It errors only when the store
// fails. Responses that depend on it must not be cached, so it marks them.
func (s *Server) currentSession(w http.ResponseWriter, r *http.Request) (*latch.Session, *latch.User, error) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Cookie")
	raw := sessionCookieValue(r)
	if raw == "" {
		return nil, nil, nil
	}
	ctx := r.Context()
	sess, err := s.store.Session(ctx, hashID(raw))
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if !sess.Active(now) {
		return nil, nil, nil
	}
	u, err := s.store.User(ctx, sess.UserID)
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	// Users deletes a user's sessions when it is disabled or its password
	// changes; these checks hold even if that failed half-way or another
	// process changed the user.
	if u.Disabled || sess.AuthTime.Before(u.PasswordChangedAt) {
		return nil, nil, nil
	}
	if now.Sub(sess.LastSeenAt) >= touchInterval {
		idle := now.Add(s.cfg.SessionIdleTimeout)
		if idle.After(sess.ExpiresAt) {
			idle = sess.ExpiresAt
		}
		err := s.store.TouchSession(ctx, sess.IDHash, now.UTC(), idle.UTC())
		if latch.ErrorCode(err) == latch.ENOTFOUND {
			return nil, nil, nil // ended meanwhile (logout in another tab)
		} else if err != nil {
			return nil, nil, err
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now.UTC(), idle.UTC()
	}
	return sess, u, nil
}

// endSession ends a login session: logout. Ending one that is already gone
// is not an error.
func (s *Server) endSession(ctx context.Context, sess *latch.Session) error {
	return endSessionRecord(ctx, s.store, sess, s.now(), s.revoked)
}

// endSessionRecord ends sess for logout and the admin API alike. The
// grants the session approved end with it (a terminated session can no
// longer refresh): their refresh tokens and opaque access tokens
// are deleted, their JWTs denylisted, and codes not yet redeemed deleted.
// Families first, so a failure leaves the session to retry with. revoked,
// when not nil, is called when a family was revoked.
func endSessionRecord(ctx context.Context, st UsersStore, sess *latch.Session, now time.Time, revoked func()) error {
	n, err := st.RevokeFamilies(ctx, latch.FamilyFilter{SessionID: sess.SID()}, now)
	if err != nil {
		return err
	}
	if n > 0 && revoked != nil {
		revoked()
	}
	if err := st.DeleteSession(ctx, sess.IDHash); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		return err
	}
	return nil
}
