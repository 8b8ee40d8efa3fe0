package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// revocationClockSkew is how far ahead of this node's clock another node's
// may be for its not-yet-valid JWTs still to be revoked here.
const revocationClockSkew = 24 * time.Hour

// revoke implements RFC 7009 §2. Opaque tokens are deleted; JWTs are
// denylisted by (iss, jti) until their exp (security invariant 4); the
// writes are Tokens' (tokens.go), which `latch token revoke` makes too. A
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
	notYours := oauth.BadRequest(oauth.ErrUnauthorizedClient, "the token was not issued to this client")
	if token.IsOpaque(raw) {
		t, err := s.tok.findOpaque(ctx, raw)
		if err != nil {
			return err
		}
		if t == nil {
			s.metrics.revoked.WithLabelValues("opaque", "unknown").Inc()
			w.WriteHeader(http.StatusOK)
			return nil
		}
		if t.ClientID != c.ID {
			s.metrics.revoked.WithLabelValues("opaque", "refused").Inc()
			return notYours
		}
		family, err := s.tok.revokeOpaque(ctx, t)
		if err != nil {
			return err
		}
		result := "revoked"
		if family {
			result = "family"
		}
		s.metrics.revoked.WithLabelValues("opaque", result).Inc()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if isCompactJWE(raw) {
		// An encrypted access token hides its jti from this server (only
		// the resource server holds the key), so there is nothing to
		// denylist. Answering 200 would tell the client it is revoked
		// while it stays valid until exp: say so instead (RFC 7009
		// §2.2.1). docs/security.md lists what works instead.
		s.metrics.revoked.WithLabelValues("jwe", "unsupported").Inc()
		return oauth.BadRequest(oauth.ErrUnsupportedTokenType, errJWERevocation)
	}
	claims, err := s.tok.verifyJWT(ctx, raw, s.tok.leeway())
	if errors.Is(err, token.ErrNotYetValid) || errors.Is(err, token.ErrIssuedInFuture) {
		// Signed by us, but by a node whose clock runs ahead of this
		// one's: once the clocks agree the token is valid, so it must be
		// denylisted now. Answering 200 without recording the revocation
		// would let it pass later everywhere.
		claims, err = s.tok.verifyJWT(ctx, raw, revocationClockSkew)
	}
	if err != nil {
		s.metrics.revoked.WithLabelValues("jwt", "invalid").Inc()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if claims.ClientID != c.ID {
		s.metrics.revoked.WithLabelValues("jwt", "refused").Inc()
		return notYours
	}
	if _, _, err := s.tok.revokeJWT(ctx, claims); err != nil {
		return err
	}
	s.metrics.revoked.WithLabelValues("jwt", "revoked").Inc()
	w.WriteHeader(http.StatusOK)
	return nil
}
