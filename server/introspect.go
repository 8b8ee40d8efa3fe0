package server

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// introspect implements RFC 7662 §2. The caller must authenticate as a
// confidential client and is rate-limited per client (security invariant 5).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) error {
	form, oerr := oauth.ParseForm(w, r, s.cfg.MaxBodyBytes)
	if oerr != nil {
		return oerr
	}
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	raw := form.Get("token")
	if retry, ok := s.allowIntrospection(s.checkBudget(c.ID, "introspect", raw)); !ok {
		return &oauth.Error{Code: oauth.ErrRateLimited, Description: "too many introspection requests for this client; retry after the Retry-After delay",
			Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {strconv.Itoa(retry)}}}
	}
	if raw == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "token is required")
	}
	resp, format, err := s.inspect(ctx, c, raw)
	if err != nil {
		return err
	}
	result := "inactive"
	if resp.Active {
		result = "active"
	}
	s.metrics.introspects.WithLabelValues(format, result).Inc()
	if acceptsIntrospectionJWT(r.Header) {
		return s.writeIntrospectionJWT(w, c, resp)
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// MediaTypeIntrospectionJWT is the media type of RFC 9701 §4 requests and
// §5 responses; TypeIntrospectionJWT is the typ of the response's header.
const (
	MediaTypeIntrospectionJWT = "application/token-introspection+jwt"
	TypeIntrospectionJWT      = "token-introspection+jwt"
)

// acceptsIntrospectionJWT reports whether the request asks for an RFC 9701
// answer: its Accept header names application/token-introspection+jwt
// (parameters ignored; q=0 refuses it, RFC 9110 §12.5.1).
func acceptsIntrospectionJWT(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(mt), MediaTypeIntrospectionJWT) {
				continue
			}
			refused := false
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "q") {
					if q, err := strconv.ParseFloat(v, 64); err == nil && q == 0 {
						refused = true
					}
				}
			}
			if !refused {
				return true
			}
		}
	}
	return false
}

// introspectionJWT is the claims set of an RFC 9701 §5 response. It has no
// sub and no exp at the top level, and its typ is token-introspection+jwt,
// not at+jwt: it describes a token and must never be usable as one
// (RFC 9701 §8.1; security invariant 2 makes every verifier refuse it).
type introspectionJWT struct {
	Issuer        string              `json:"iss"`
	Audience      string              `json:"aud"`
	IssuedAt      int64               `json:"iat"`
	ID            string              `json:"jti"`
	Introspection oauth.Introspection `json:"token_introspection"`
}

// writeIntrospectionJWT answers with RFC 9701 §5: the RFC 7662 answer in
// the token_introspection claim of a JWT signed with the current signing
// key, for the introspecting client (aud) only. An inactive token is
// {"active":false} there too (security invariant 5).
func (s *Server) writeIntrospectionJWT(w http.ResponseWriter, c *latch.Client, resp oauth.Introspection) error {
	signer, err := s.tok.signer()
	if err != nil {
		return err
	}
	jti, err := token.NewID(s.rand)
	if err != nil {
		return err
	}
	raw, err := signer.Sign(TypeIntrospectionJWT, &introspectionJWT{
		Issuer: s.cfg.Issuer, Audience: c.ID, IssuedAt: s.now().Unix(), ID: jti, Introspection: resp,
	})
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", MediaTypeIntrospectionJWT)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err = io.WriteString(w, raw)
	return err
}

// inspect finds out whether raw is an active token issued here, by the
// rules of Tokens.examine, and returns the answer for a client: every kind
// of failure (malformed, foreign, expired, revoked, unknown) is the same
// inactive answer; only a failing store is an error. caller, when not nil,
// is the client asking: a refresh token is active only to its own client.
// The format (opaque, jwe or jwt) labels the metrics.
func (s *Server) inspect(ctx context.Context, caller *latch.Client, raw string) (oauth.Introspection, string, error) {
	x, err := s.tok.examine(ctx, raw, caller, false)
	if err != nil {
		return oauth.Introspection{}, x.Format, err
	}
	return x.Answer(), x.Format, nil
}

// keySet adapts the key manager to token.KeySet, turning "not found" into
// token.ErrUnknownKey.
type keySet struct{ m *keys.Manager }

func (k keySet) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	pub, alg, err := k.m.Key(ctx, kid)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %v", token.ErrUnknownKey, err)
	}
	return pub, alg, err
}

// allowIntrospection applies the per-client rate limit and, when it
// refuses, says how many seconds to wait.
func (s *Server) allowIntrospection(clientID string) (int, bool) {
	s.limitersMu.Lock()
	lim, ok := s.limiters[clientID]
	if !ok {
		lim = rate.NewLimiter(s.cfg.IntrospectionRate, s.cfg.IntrospectionBurst)
		s.limiters[clientID] = lim
	}
	s.limitersMu.Unlock()
	if lim.Allow() {
		return 0, true
	}
	return max(1, int(math.Ceil(1/float64(s.cfg.IntrospectionRate)))), false
}
