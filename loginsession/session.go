package loginsession

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/latch-auth/latch"
)

// rawIDLen is the length of a session ID in the cookie: 32 bytes in
// unpadded base64url.
var rawIDLen = base64.RawURLEncoding.EncodedLen(32)

// TouchInterval is how stale LastSeenAt may get before a request moves
// the idle expiry: one store write per session per minute at most, not one
// per request. The idle timeout is so enforced to within a minute.
const TouchInterval = time.Minute

// NewRandomID returns 32 bytes from r in base64url: a session ID, or the
// pre-session value of the login form's CSRF cookie.
func NewRandomID(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("loginsession: reading random session ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidRawID reports whether v has the form of an ID NewRandomID makes,
// so that a malformed cookie is dropped without a store lookup.
func ValidRawID(v string) bool {
	if len(v) != rawIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

// HashID is what the store keeps of a raw session ID: its SHA-256.
func HashID(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// Store is what sessions need of a store: the sessions themselves, their
// users, and the grants a session approved, which end with it.
type Store interface {
	latch.SessionStore
	latch.UserStore
	latch.GrantStore
}

// Sessions creates, reads and ends login sessions (security invariant 6):
// the idle and absolute timeouts, the ID that is never adopted from a
// request, and the grants that end with their session. The cookie that
// carries the ID is the HTTP layer's.
type Sessions struct {
	Store Store
	// IdleTimeout and MaxAge are as the server's SessionIdleTimeout and
	// SessionMaxAge; both must be positive.
	IdleTimeout time.Duration
	MaxAge      time.Duration
	Rand        io.Reader
	// OnRevoke, when set, is called after ending a session revoked a grant,
	// so a server wakes its revocation feed at once.
	OnRevoke func()
}

// Create stores a new session for user and returns its raw ID for the
// cookie. The ID is always new: a session ID that came with the request,
// the attacker's in a session fixation, is never adopted. userAgent and
// address describe the login's browser for the account page
// (latch.Session.UserAgent, Address).
func (m *Sessions) Create(ctx context.Context, userID string, now time.Time, userAgent, address string) (string, *latch.Session, error) {
	raw, err := NewRandomID(m.Rand)
	if err != nil {
		return "", nil, err
	}
	now = now.UTC()
	sess := &latch.Session{IDHash: HashID(raw), UserID: userID, AuthTime: now, CreatedAt: now,
		LastSeenAt: now, IdleExpiresAt: now.Add(m.IdleTimeout), ExpiresAt: now.Add(m.MaxAge),
		UserAgent: userAgent, Address: address}
	if sess.IdleExpiresAt.After(sess.ExpiresAt) {
		sess.IdleExpiresAt = sess.ExpiresAt
	}
	if err := m.Store.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return raw, sess, nil
}

// Current returns the active session with the raw ID and its user, or
// (nil, nil, nil) when there is none: a malformed ID, an unknown or
// expired session, a user deleted or disabled, or a session authenticated
// before the user's last password change. It moves the idle expiry at most
// once per TouchInterval. It errors only when the store fails.
func (m *Sessions) Current(ctx context.Context, raw string, now time.Time) (*latch.Session, *latch.User, error) {
	if !ValidRawID(raw) {
		return nil, nil, nil
	}
	sess, err := m.Store.Session(ctx, HashID(raw))
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	if !sess.Active(now) {
		return nil, nil, nil
	}
	u, err := m.Store.User(ctx, sess.UserID)
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
	if now.Sub(sess.LastSeenAt) >= TouchInterval {
		idle := now.Add(m.IdleTimeout)
		if idle.After(sess.ExpiresAt) {
			idle = sess.ExpiresAt
		}
		err := m.Store.TouchSession(ctx, sess.IDHash, now.UTC(), idle.UTC())
		if latch.ErrorCode(err) == latch.ENOTFOUND {
			return nil, nil, nil // ended meanwhile (logout in another tab)
		} else if err != nil {
			return nil, nil, err
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now.UTC(), idle.UTC()
	}
	return sess, u, nil
}

// End ends sess for logout and the admin API alike. The grants the
// session approved end with it (a terminated session can no longer
// refresh): their refresh tokens and opaque access tokens are deleted,
// their JWTs denylisted, and codes not yet redeemed deleted. Families
// first, so a failure leaves the session to retry with. onRevoke, when not
// nil, is called when a family was revoked. Ending a session that is
// already gone is not an error.
func End(ctx context.Context, st Store, sess *latch.Session, now time.Time, onRevoke func()) error {
	n, err := st.RevokeFamilies(ctx, latch.FamilyFilter{SessionID: sess.SID()}, now)
	if err != nil {
		return err
	}
	if n > 0 && onRevoke != nil {
		onRevoke()
	}
	if err := st.DeleteSession(ctx, sess.IDHash); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		return err
	}
	return nil
}
