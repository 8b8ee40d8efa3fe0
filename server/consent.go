package server

import (
	"context"
	"slices"

	"github.com/latch-auth/latch"
)

// Remembered consent (OIDC Core §3.1.2.4): once a user allows a
// third-party client a set of scopes, a later authorization request of that
// client for those scopes or fewer skips the consent page. A request for
// a scope not yet allowed shows the page again, for the whole request; the
// scopes then allowed join the remembered ones. prompt=consent always
// shows it. The user revokes a consent on the account page, which also
// ends the client's refresh families for the user (revokeAccess).

// consentCovers reports whether the user has allowed the client every
// scope of scope before.
func (s *Server) consentCovers(ctx context.Context, userID, clientID string, scope []string) (bool, error) {
	c, err := s.store.Consent(ctx, userID, clientID)
	if latch.ErrorCode(err) == latch.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return c.Covers(scope), nil
}

// rememberConsent adds scope to what the user has allowed the client.
func (s *Server) rememberConsent(ctx context.Context, userID, clientID string, scope []string) error {
	now := s.now().UTC()
	c := &latch.Consent{UserID: userID, ClientID: clientID, CreatedAt: now, UpdatedAt: now}
	old, err := s.store.Consent(ctx, userID, clientID)
	switch {
	case err == nil:
		c.Scope = slices.Clone(old.Scope)
	case latch.ErrorCode(err) != latch.ENOTFOUND:
		return err
	}
	for _, sc := range scope {
		if !slices.Contains(c.Scope, sc) {
			c.Scope = append(c.Scope, sc)
		}
	}
	slices.Sort(c.Scope)
	return s.store.SaveConsent(ctx, c)
}

// revokeAccess ends what the user granted the client: the remembered
// consent first, so that no new authorization slips through without the
// consent page, then every live refresh family of the client for the
// user (its refresh and opaque access tokens deleted, its JWTs
// denylisted). It returns how many families it revoked. Repeating it
// after a failure finishes the job.
//
// An authorization code issued just before and redeemed after it starts a
// new family; codes live AuthCodeTTL (a minute by default), and the
// account page lists that family, to be removed again.
func (s *Server) revokeAccess(ctx context.Context, userID, clientID string) (int, error) {
	if err := s.store.DeleteConsent(ctx, userID, clientID); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
		return 0, err
	}
	fs, err := s.store.UserFamilies(ctx, userID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range fs {
		if f.ClientID != clientID {
			continue
		}
		if err := s.store.RevokeFamily(ctx, f.ID, s.now()); err != nil && latch.ErrorCode(err) != latch.ENOTFOUND {
			return n, err
		}
		n++
	}
	if n > 0 {
		s.revoked()
	}
	return n, nil
}
