package server

import (
	"net/http"

	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
)

// revoke implements RFC 7009 §2. Opaque tokens are deleted; JWTs are
// denylisted by (iss, jti) until their exp (security invariant 4); the
// rules are Tokens.RevokeForClient's, whose writes `latch token revoke` makes too. A
// client may revoke only tokens issued to it. An invalid, unknown or
// expired token is answered 200 (§2.2): there is nothing left to revoke.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	form, oerr := oauth.ParseForm(w, r, s.cfg.MaxBodyBytes)
	if oerr != nil {
		return oerr
	}
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, false)
	if err != nil {
		return err
	}
	raw := form.Get("token")
	if raw == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "token is required")
	}
	format, result, err := s.tok.RevokeForClient(ctx, raw, c.ID)
	if err != nil {
		return err
	}
	s.metrics.revoked.WithLabelValues(format, string(result)).Inc()
	switch result {
	case authority.RevokeRefused:
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "the token was not issued to this client")
	case authority.RevokeUnsupported:
		return oauth.BadRequest(oauth.ErrUnsupportedTokenType, authority.JWERevocationRefusal)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
