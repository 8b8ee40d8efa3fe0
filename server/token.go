package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// TypeAccessToken is the JWT typ of access tokens (RFC 9068 §2.1).
const TypeAccessToken = token.TypeAccessToken

// token implements the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	form, oerr := oauth.ParseForm(w, r, s.cfg.MaxBodyBytes)
	if oerr != nil {
		return oerr
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "grant_type is required")
	}
	if !slices.Contains(grantTypes, grant) {
		return oauth.BadRequest(oauth.ErrUnsupportedGrantType, "grant_type "+oauth.Quote(grant)+" is not supported; this server supports "+strings.Join(grantTypes, ", "))
	}
	s.dpopNonceHeader(w)
	switch grant {
	case latch.GrantClientCredentials:
		return s.clientCredentials(w, r, form)
	case latch.GrantTokenExchange:
		return s.tokenExchange(w, r, form)
	case latch.GrantAuthorizationCode:
		return s.authorizationCodeGrant(w, r, form)
	case latch.GrantRefreshToken:
		return s.refreshTokenGrant(w, r, form)
	case latch.GrantPassword:
		return s.passwordGrant(w, r, form)
	default:
		return oauth.BadRequest(oauth.ErrUnsupportedGrantType, "grant_type "+oauth.Quote(grant)+" is not supported; this server supports "+strings.Join(grantTypes, ", "))
	}
}

// clientCredentials implements RFC 6749 §4.4. The rules are in
// Tokens.clientCredentials, which `latch token issue` applies too.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	_, jkt, err := s.tokenProof(r, c)
	if err != nil {
		return err
	}
	at, err := s.tok.ClientCredentials(ctx, c, form.Get("scope"), requestedAudiences(form), 0, jkt)
	if err != nil {
		return err
	}
	if at.Cookie != "" {
		w.Header().Add("Set-Cookie", at.Cookie)
	}
	s.metrics.issued.WithLabelValues(latch.GrantClientCredentials, string(at.Format)).Inc()
	oauth.WriteJSON(w, http.StatusOK, at.Response)
	return nil
}

// scopeAndAudience returns the scope and audiences a token request form
// asks for, both within the client's registration (Tokens.CheckScopeAndAudience).
func (s *Server) scopeAndAudience(ctx context.Context, c *latch.Client, form url.Values) (scope, aud []string, err error) {
	return s.tok.CheckScopeAndAudience(ctx, c, form.Get("scope"), requestedAudiences(form))
}

// audience resolves the audiences of a request from RFC 8707 resource
// parameters or the widespread audience parameter; without either it is
// the client's first registered audience.
func audience(c *latch.Client, form url.Values) ([]string, error) {
	return authority.CheckAudience(c, requestedAudiences(form))
}

// requestedAudiences are the audiences of a token or authorization
// request: RFC 8707 resource parameters and the widespread audience
// parameter.
func requestedAudiences(form url.Values) []string {
	return append(append([]string(nil), form["resource"]...), form["audience"]...)
}
