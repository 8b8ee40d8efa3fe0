package latch

import (
	"context"
	"slices"
	"time"
)

// Consent is a user's standing approval of a third-party client for a
// set of scopes (OIDC Core §3.1.2.4: the server may rely on a consent
// given before). It lasts until the user revokes it on the account page
// (which also ends the client's refresh families for the user), the user
// or the client is deleted, or the client asks again with
// prompt=consent.
type Consent struct {
	UserID    string
	ClientID  string
	Scope     []string // every scope approved so far, sorted, without duplicates
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Covers reports whether the consent approves every scope in want.
func (c *Consent) Covers(want []string) bool {
	for _, s := range want {
		if !slices.Contains(c.Scope, s) {
			return false
		}
	}
	return true
}

// ConsentStore keeps consents, one per user and client.
type ConsentStore interface {
	// SaveConsent stores c, replacing the user's consent to the client if
	// there is one (CreatedAt is then kept); EINVALID if c.UserID names no
	// user or c.ClientID no client.
	SaveConsent(ctx context.Context, c *Consent) error
	// Consent returns the user's consent to the client; ENOTFOUND if none.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// UserConsents returns the user's consents ordered by client ID; none
	// (and no error) for a user without consents or no such user.
	UserConsents(ctx context.Context, userID string) ([]*Consent, error)
	// DeleteConsent removes the user's consent to the client; ENOTFOUND
	// if none.
	DeleteConsent(ctx context.Context, userID, clientID string) error
}
