package server

import (
	"net/url"
	"slices"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// checkGrantTarget checks the resource (RFC 8707) and audience parameters
// of an authorization_code or refresh_token request against the audiences
// the grant was issued for: one outside them, or no longer registered for
// the client, is invalid_target (RFC 8707 §2.2), never silently dropped, so
// a client that asks for a token for an API learns at once that it will
// not get one. Parameters within them change nothing: the access token
// carries the grant's audiences.
func checkGrantTarget(c *latch.Client, form url.Values, granted []string) error {
	want := requestedAudiences(form)
	for _, a := range want {
		if a == "" || len(a) > 512 {
			return oauth.BadRequest(oauth.ErrInvalidTarget, "empty or oversized resource or audience")
		}
		if !slices.Contains(granted, a) {
			return oauth.BadRequest(oauth.ErrInvalidTarget, "a requested resource or audience is not one this grant was issued for; ask for it in the authorization request")
		}
	}
	if len(want) > 0 && !c.AllowsAudience(want) {
		return oauth.BadRequest(oauth.ErrInvalidTarget, "a requested resource or audience is no longer registered for the client")
	}
	return nil
}
