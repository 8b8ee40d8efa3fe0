package server

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken = oauth.TokenTypeAccessToken
	TokenTypeJWT         = oauth.TokenTypeJWT
)

// ExchangedTokenTTL caps the lifetime of a JWT minted by token exchange.
// The phantom-token gateway caches it and forwards it inside the network;
// the opaque token it stands for can be revoked at any moment, and the JWT
// cannot be (its jti is known to no one but the gateway and the upstream),
// so it must not outlive a short window.
const ExchangedTokenTTL = 5 * time.Minute

// tokenExchange implements the one RFC 8693 exchange latch supports: an
// opaque access token issued here (subject_token_type access_token) for an
// RFC 9068 JWT access token (requested_token_type jwt) that carries the
// same subject, client, scope and audience, and names the exchanging
// client as the actor (§4.1). It is what the phantom-token gateway calls.
//
// Only confidential clients registered for the token-exchange grant may
// call it: such a client learns a token's grant by exchanging it, as an
// introspecting resource server does, and it gets JWTs only for the
// audiences registered for it.
func (s *Server) tokenExchange(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	if !c.AllowsGrant(latch.GrantTokenExchange) {
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the token-exchange grant")
	}
	subject := form.Get("subject_token")
	// An exchange tells whether a token is active, as introspection does:
	// a per-client limit as introspection's keeps it from being a faster
	// probe (security invariant 5). Its budget is its own, and tokens
	// that carry no valid tag have another again, so a flood of forged
	// tokens cannot spend what the tokens this server tagged need.
	if retry, ok := s.allowIntrospection(s.checkBudget(c.ID, "exchange", subject)); !ok {
		return &oauth.Error{Code: oauth.ErrRateLimited, Description: "too many token-exchange requests for this client; retry after the Retry-After delay",
			Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {strconv.Itoa(retry)}}}
	}
	if subject == "" {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "subject_token is required (RFC 8693 §2.1)")
	}
	switch tt := form.Get("subject_token_type"); tt {
	case TokenTypeAccessToken:
	case "":
		return oauth.BadRequest(oauth.ErrInvalidRequest, "subject_token_type is required (RFC 8693 §2.1)")
	default:
		return oauth.BadRequest(oauth.ErrUnsupportedTokenType, "subject_token_type "+oauth.Quote(tt)+" is not supported; use "+TokenTypeAccessToken)
	}
	switch rt := form.Get("requested_token_type"); rt {
	case TokenTypeJWT, "":
	default:
		return oauth.BadRequest(oauth.ErrInvalidRequest, "requested_token_type "+oauth.Quote(rt)+" is not supported; use "+TokenTypeJWT)
	}
	if form.Has("actor_token") || form.Has("actor_token_type") {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "actor_token is not supported; the actor is the authenticated client")
	}
	if !strings.HasPrefix(subject, token.PrefixAccess) {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "subject_token must be an opaque access token ("+token.PrefixAccess+"...) issued by this server")
	}
	now := s.now()
	t, err := s.tok.ActiveOpaqueAccess(ctx, subject)
	if err != nil {
		return err
	}
	if t == nil {
		// One answer for unknown, expired, revoked and malformed, as
		// introspection gives (security invariant 5).
		return oauth.BadRequest(oauth.ErrInvalidGrant, "subject_token is not active")
	}
	// RFC 8693 §2.1: scope, audience and resource may narrow the grant,
	// never widen it.
	scope := t.Scope
	if form.Get("scope") != "" {
		want, oerr := oauth.SplitScope(form.Get("scope"))
		if oerr != nil {
			return oerr
		}
		for _, sc := range want {
			if !slices.Contains(t.Scope, sc) {
				return oauth.BadRequest(oauth.ErrInvalidScope, "requested scope exceeds the subject token's scope")
			}
		}
		scope = want
	}
	// The audience is the subject token's, narrowed to those registered
	// for the exchanging client: a gateway in front of one API gets JWTs
	// for that API only, even for a token valid at several.
	var aud []string
	if want := append(append([]string(nil), form["resource"]...), form["audience"]...); len(want) > 0 {
		for _, a := range want {
			if !slices.Contains(t.Audience, a) {
				return oauth.BadRequest(oauth.ErrInvalidTarget, "requested audience is not an audience of the subject token")
			}
		}
		if !c.AllowsAudience(want) {
			return oauth.BadRequest(oauth.ErrInvalidTarget, "requested audience is not registered for this client")
		}
		aud = want
	} else {
		for _, a := range t.Audience {
			if slices.Contains(c.Audiences, a) {
				aud = append(aud, a)
			}
		}
		if len(aud) == 0 {
			return oauth.BadRequest(oauth.ErrInvalidTarget, "no audience of the subject token is registered for this client; register it with `latch client create --audience`")
		}
	}

	iat := now.Truncate(time.Second)
	exp := iat.Add(ExchangedTokenTTL)
	if t.ExpiresAt.Before(exp) {
		exp = t.ExpiresAt.Truncate(time.Second)
	}
	if !exp.After(iat) {
		// Less than a second left: as good as expired.
		return oauth.BadRequest(oauth.ErrInvalidGrant, "subject_token is not active")
	}
	raw, err := s.tok.SignExchanged(t, c, aud, scope, iat, exp)
	if err != nil {
		return err
	}
	// The JWT is issued to the exchanging client (a gateway): encrypted
	// to its upstream's key when it has one registered.
	if raw, err = authority.SealAccessToken(c, raw); err != nil {
		return err
	}
	s.metrics.issued.WithLabelValues("token_exchange", string(latch.FormatJWT)).Inc()
	oauth.WriteJSON(w, http.StatusOK, &oauth.TokenResponse{
		AccessToken: raw, IssuedTokenType: TokenTypeJWT,
		// RFC 8693 §2.2.1: N_A is for tokens that are not access tokens;
		// this one is a bearer access token.
		TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(iat) / time.Second),
		Scope:     strings.Join(scope, " "),
	})
	return nil
}

// checkBudget names the rate-limit bucket a token check by clientID at
// endpoint spends: the endpoint's own, except that an opaque token
// without a tag under one of OpaqueTagKeys (untagged, forged or under an
// unknown key) spends a separate one. Introspection keeps clientID alone
// as its bucket for tagged tokens and JWTs.
func (s *Server) checkBudget(clientID, endpoint, raw string) string {
	b := clientID
	if endpoint != "introspect" {
		b += " " + endpoint
	}
	if token.IsOpaque(raw) {
		if _, tag, err := token.CheckTag(raw, s.cfg.OpaqueTagKeys); err != nil || tag != token.TagValid {
			b += " untagged"
		}
	}
	return b
}

// opaqueTokenKeysResponse is the answer of GET /oauth2/opaque-token-keys.
type opaqueTokenKeysResponse struct {
	Keys []opaqueTokenKey `json:"keys"`
}

type opaqueTokenKey struct {
	KeyID  string `json:"kid"`
	Secret string `json:"k"` // base64url, no padding
}

// opaqueTokenKeys hands the keys that tag opaque access tokens to a
// confidential client (a gateway or a resource server), so that it can
// refuse forged tokens without a round trip here. A key is no credential:
// a token with a valid tag is still looked up before anything is granted,
// so a client holding it can at worst send forged tokens here again, on
// its own budget.
func (s *Server) opaqueTokenKeys(w http.ResponseWriter, r *http.Request) error {
	c, err := s.authenticateClient(r.Context(), r, url.Values{}, true)
	if err != nil {
		return err
	}
	if retry, ok := s.allowIntrospection(c.ID + " opaque-token-keys"); !ok {
		return &oauth.Error{Code: oauth.ErrRateLimited, Description: "too many opaque-token key requests for this client; retry after the Retry-After delay",
			Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {strconv.Itoa(retry)}}}
	}
	resp := opaqueTokenKeysResponse{Keys: []opaqueTokenKey{}}
	for _, k := range s.cfg.OpaqueTagKeys {
		resp.Keys = append(resp.Keys, opaqueTokenKey{KeyID: k.ID(), Secret: base64.RawURLEncoding.EncodeToString(k.Secret())})
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}
