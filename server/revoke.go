package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// revoke implements RFC 7009 §2. Opaque tokens are deleted; JWTs are
// denylisted by (iss, jti) until their exp (DESIGN invariant 4). A client
// may revoke only tokens issued to it. An invalid, unknown or expired token
// is answered 200 (§2.2): there is nothing left to revoke.
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
	now := s.now()
	if strings.HasPrefix(raw, "lt_") {
		t, err := s.findOpaque(ctx, raw)
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
		if t.Kind == latch.KindRefresh && t.FamilyID != "" {
			// §2.1: revoking a refresh token revokes the grant: the
			// family, its other refresh tokens and its access tokens.
			if err := s.revokeFamilyOf(ctx, t); err != nil {
				return err
			}
			s.metrics.revoked.WithLabelValues("opaque", "family").Inc()
			w.WriteHeader(http.StatusOK)
			return nil
		}
		if err := s.store.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeOpaque, TokenHash: t.Hash, ExpiresAt: t.ExpiresAt, RevokedAt: now}); err != nil {
			return err
		}
		s.revoked()
		s.metrics.revoked.WithLabelValues("opaque", "revoked").Inc()
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
		return oauth.BadRequest(oauth.ErrUnsupportedTokenType, "encrypted access tokens cannot be revoked by value: this server cannot read their jti; revoke the refresh token they were issued with, or let them expire")
	}
	claims, err := s.verifyJWT(ctx, raw)
	if err != nil {
		s.metrics.revoked.WithLabelValues("jwt", "invalid").Inc()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if claims.ClientID != c.ID {
		s.metrics.revoked.WithLabelValues("jwt", "refused").Inc()
		return notYours
	}
	// Keep the entry until the token could no longer pass a verifier that
	// allows the same leeway.
	exp := time.Unix(claims.ExpiresAt, 0).Add(s.cfg.Leeway)
	if err := s.store.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeJWT, Issuer: claims.Issuer, JTI: claims.ID, ExpiresAt: exp, RevokedAt: now}); err != nil {
		return err
	}
	s.revoked()
	s.metrics.revoked.WithLabelValues("jwt", "revoked").Inc()
	w.WriteHeader(http.StatusOK)
	return nil
}
