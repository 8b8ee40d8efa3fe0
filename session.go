package latch

import "time"

// Session is the server-side record of a browser's login session
// (security invariant 6).
//
// The cookie __Host-latch_session holds 256 bits from crypto/rand; the
// store keeps only IDHash, its SHA-256, so a copy of the database yields no
// cookie that logs anyone in. The raw ID is regenerated (a new Session
// created, the old one deleted) on login, logout and any privilege change.
//
// # CSRF
//
// The session carries no CSRF field on purpose. Its synchronizer token
// (OWASP CSRF Prevention Cheat Sheet, "Synchronizer Token Pattern") is
// derived, not stored: HMAC-SHA256 keyed with the raw session ID over a
// fixed label. Only a holder of the raw cookie value can compute it, a
// leaked CSRF token (it is in every HTML form) reveals nothing about the
// cookie, it changes whenever the session ID is regenerated, and the
// server can put it in any page it renders, which a stored hash would not
// allow (the server would have no raw token to render). Nodes need no
// shared CSRF key and the store no extra column. The session package
// computes it and compares it with hmac.Equal (invariant 9).
type Session struct {
	IDHash []byte // SHA-256 of the raw cookie value; the primary key
	UserID string
	// AuthTime is when the user last authenticated with credentials (the
	// OIDC auth_time claim; max_age and prompt=login compare against it).
	AuthTime  time.Time
	CreatedAt time.Time
	// LastSeenAt is the last request that used the session.
	LastSeenAt time.Time
	// IdleExpiresAt is LastSeenAt plus the idle timeout: the session ends
	// when the browser has been away this long. TouchSession moves it.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute timeout, CreatedAt plus the maximum session
	// lifetime; activity never moves it.
	ExpiresAt time.Time
	// UserAgent and Address are the User-Agent header and the client
	// address of the login request, so that the user can tell their
	// sessions apart on the account page. Both are what the browser (or a
	// trusted proxy) said, shown, never trusted; each at most
	// MaxSessionUserAgent bytes.
	UserAgent string
	Address   string
}

// MaxSessionUserAgent is the most of a User-Agent header a session keeps:
// enough for every browser's, bounded so that a client cannot make the
// store keep a header's worth of bytes per session.
const MaxSessionUserAgent = 512

// Active reports whether the session may be used at now: now is before
// both the idle and the absolute expiry. A zero expiry is never active.
func (s *Session) Active(now time.Time) bool {
	return now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
}
