package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// introspect implements RFC 7662 §2. The caller authenticates as a
// confidential client or with an access token for this endpoint, and is
// rate-limited per client (security invariant 5). It learns about a token
// only when mayIntrospect allows it; any other token is {"active":false}
// (§2.2).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) error {
	form, oerr := oauth.ParseForm(w, r, s.cfg.MaxBodyBytes)
	if oerr != nil {
		return oerr
	}
	ctx := r.Context()
	c, err := s.introspectionCaller(ctx, r, form)
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

// introspectionCaller authenticates the caller of the introspection
// endpoint (RFC 7662 §2.1): a confidential client by its credentials, or
// by "Authorization: Bearer" with an active access token of its own (sub
// is the client: a client_credentials token, never a user's) that has the
// audience AudienceIntrospection and the scope ScopeIntrospect. Every 401
// names both schemes (RFC 7235 §3.1).
func (s *Server) introspectionCaller(ctx context.Context, r *http.Request, form url.Values) (*latch.Client, error) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		c, err := s.authenticateClient(ctx, r, form, true)
		return c, withChallenge(err, challengeBearer)
	}
	refuse := func(status int, code, description string) error {
		e := &oauth.Error{Code: code, Description: description, Status: status, Header: http.Header{
			"Www-Authenticate": {challengeBearer + `, error="` + code + `", error_description="` + description + `"`}}}
		return withChallenge(e, challengeBasic)
	}
	raw, ok := bearer(r)
	if !ok {
		return nil, refuse(http.StatusBadRequest, oauth.ErrInvalidRequest, "use one Authorization: Bearer <token> header")
	}
	if form.Has("client_secret") || form.Has("client_assertion") {
		return nil, refuse(http.StatusBadRequest, oauth.ErrInvalidRequest, "authenticate with an access token or with client credentials, not both")
	}
	x, err := s.tok.Introspect(ctx, raw, authority.ClientPolicy(nil))
	if err != nil {
		return nil, err
	}
	if !x.Active || x.TokenType != "Bearer" {
		return nil, refuse(http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not active")
	}
	if !slices.Contains(x.Aud, latch.AudienceIntrospection) {
		return nil, refuse(http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not for the introspection endpoint: request it with audience "+latch.AudienceIntrospection)
	}
	if x.Sub != x.ClientID {
		return nil, refuse(http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token speaks for a user; introspect with a client_credentials token of the client")
	}
	if !slices.Contains(strings.Fields(x.Scope), latch.ScopeIntrospect) {
		return nil, refuse(http.StatusForbidden, oauth.ErrInsufficientScope, "the access token lacks scope "+latch.ScopeIntrospect)
	}
	c, err := s.clients.Client(ctx, x.ClientID)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, refuse(http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not active")
	} else if err != nil {
		return nil, err
	}
	if c.AuthMethod == latch.AuthNone {
		return nil, refuse(http.StatusUnauthorized, oauth.ErrInvalidToken, "public clients may not use this endpoint")
	}
	return c, nil
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
	signer, err := s.tok.Signer()
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
// client policy of Tokens.Introspect, and returns the answer for a client: every kind
// of failure (malformed, foreign, expired, revoked, unknown) is the same
// inactive answer; only a failing store is an error. caller, when not nil,
// is the client asking: a refresh token is active only to its own client.
// The format (opaque, jwe or jwt) labels the metrics.
func (s *Server) inspect(ctx context.Context, caller *latch.Client, raw string) (oauth.Introspection, string, error) {
	x, err := s.tok.Introspect(ctx, raw, authority.ClientPolicy(caller))
	if err != nil {
		return oauth.Introspection{}, x.Format, err
	}
	return x.Answer(), x.Format, nil
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
