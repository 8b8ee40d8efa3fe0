package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// dummySecretHash is compared against when the client does not exist, so
// an unknown client id costs the same as a wrong secret (OWASP
// Authentication Cheat Sheet, "Authentication Responses").
var dummySecretHash = sha256.Sum256([]byte("latch: no such client"))

// authenticateClient authenticates the client of an OAuth request. When
// confidential is true, public clients (auth method none) are refused.
// Every refusal that is a 401 carries a Basic challenge, whatever method
// the client tried or none: RFC 7235 §3.1 requires a challenge on every
// 401, RFC 6749 §5.2 names the one of the header the client may use.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values, confidential bool) (*latch.Client, error) {
	c, err := s.authenticateClientCredentials(ctx, r, form, confidential)
	if err == nil {
		allowClientOrigin(ctx, c)
	}
	return c, withChallenge(err, challengeBasic)
}

// Challenges of the endpoints that authenticate clients (RFC 7617,
// RFC 6750 §3).
const (
	challengeBasic  = `Basic realm="latch", charset="UTF-8"`
	challengeBearer = `Bearer realm="latch"`
)

// withChallenge adds the challenge to err when it is a 401 oauth.Error
// that does not carry that challenge yet; any other error is returned as
// it is.
func withChallenge(err error, challenge string) error {
	var oerr *oauth.Error
	if !errors.As(err, &oerr) || oerr.Status != http.StatusUnauthorized {
		return err
	}
	scheme, _, _ := strings.Cut(challenge, " ")
	for _, v := range oerr.Header.Values("Www-Authenticate") {
		if s, _, _ := strings.Cut(v, " "); strings.EqualFold(s, scheme) {
			return err
		}
	}
	e := *oerr
	e.Header = oerr.Header.Clone()
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Add("Www-Authenticate", challenge)
	return &e
}

func (s *Server) authenticateClientCredentials(ctx context.Context, r *http.Request, form url.Values, confidential bool) (*latch.Client, error) {
	a, oerr := oauth.ParseClientAuth(r, form)
	if oerr != nil {
		return nil, oerr
	}
	basic := a.Method == latch.AuthSecretBasic
	if a.Method == latch.AuthPrivateKeyJWT {
		return s.authenticateAssertion(ctx, a)
	}
	c, err := s.clients.Client(ctx, a.ID)
	if err != nil && !errors.Is(err, latch.ErrNotFound) {
		return nil, err
	}
	if c == nil {
		if a.Secret != "" {
			h := sha256.Sum256([]byte(a.Secret))
			subtle.ConstantTimeCompare(h[:], dummySecretHash[:])
		}
		return nil, oauth.InvalidClient("unknown client or wrong credentials", basic)
	}
	switch c.AuthMethod {
	case latch.AuthSecretBasic, latch.AuthSecretPost:
		// Both methods carry the same server-generated secret; which one
		// the client library picks is not a security decision.
		if a.Secret == "" {
			return nil, oauth.InvalidClient("this client must authenticate with its secret", basic)
		}
		h := sha256.Sum256([]byte(a.Secret))
		if len(c.SecretHash) != sha256.Size || subtle.ConstantTimeCompare(h[:], c.SecretHash) != 1 {
			return nil, oauth.InvalidClient("unknown client or wrong credentials", basic)
		}
		return c, nil
	case latch.AuthNone:
		if a.Secret != "" {
			return nil, oauth.InvalidClient("this is a public client; it has no secret", basic)
		}
		if confidential {
			return nil, oauth.InvalidClient("public clients may not use this endpoint", basic)
		}
		return c, nil
	case latch.AuthPrivateKeyJWT:
		return nil, oauth.InvalidClient("this client must authenticate with a private_key_jwt client assertion", basic)
	default:
		return nil, oauth.InvalidClient("client has an unknown authentication method", basic)
	}
}

// assertionAudienceIsIssuer reports whether a (verified) client
// assertion's aud is exactly the issuer identifier: a JSON string, or an
// array of that one string. draft-ietf-oauth-rfc7523bis requires the
// issuer alone (OpenID Foundation advisory of January 2025): an assertion
// a client made for another server, with that server's token endpoint as
// aud or with several audiences, could otherwise be replayed here by that
// server (audience injection). The one-element array is kept because the
// draft allows it and it names nothing but the issuer; jwt.Audience would
// read both forms alike and any other array too, so the raw claim is read.
func assertionAudienceIsIssuer(tok *jwt.JSONWebToken, issuer string) bool {
	var raw struct {
		Aud json.RawMessage `json:"aud"`
	}
	if tok.UnsafeClaimsWithoutVerification(&raw) != nil {
		return false
	}
	var one string
	if json.Unmarshal(raw.Aud, &one) == nil {
		return one == issuer
	}
	var many []string
	return json.Unmarshal(raw.Aud, &many) == nil && len(many) == 1 && many[0] == issuer
}

// assertionAlgorithms are the algorithms latch accepts for client
// assertions. HMAC (client_secret_jwt) is not offered: it would require
// keeping client secrets in the clear.
var assertionAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256}

// authenticateAssertion checks a private_key_jwt client assertion
// (RFC 7523 §3, OIDC Core §9): signed by a key in the client's registered
// JWKS, iss = sub = client_id, aud the issuer identifier, not expired, and its
// jti not seen before.
func (s *Server) authenticateAssertion(ctx context.Context, a oauth.ClientAuth) (*latch.Client, error) {
	bad := func(why string) error { return oauth.InvalidClient("client assertion refused: "+why, false) }
	if len(a.Assertion) > 8192 {
		return nil, bad("too large")
	}
	tok, err := jwt.ParseSigned(a.Assertion, assertionAlgorithms)
	if err != nil {
		return nil, bad("not a signed JWT with an accepted algorithm")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, bad("malformed claims")
	}
	id := unverified.Subject
	if a.ID != "" && a.ID != id {
		return nil, bad("sub does not match client_id")
	}
	c, err := s.clients.Client(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, bad("unknown client")
	} else if err != nil {
		return nil, err
	}
	if c.AuthMethod != latch.AuthPrivateKeyJWT {
		return nil, bad("client is not registered for private_key_jwt")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return nil, bad("client's registered JWKS is unreadable")
	}
	if len(tok.Headers) != 1 {
		return nil, bad("exactly one signature expected")
	}
	h := tok.Headers[0]
	var claims jwt.Claims
	verified := false
	for _, k := range set.Keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, bad("signature does not verify with any registered key")
	}
	now := s.now()
	if !assertionAudienceIsIssuer(tok, s.cfg.Issuer) {
		return nil, bad("aud must be the issuer identifier " + s.cfg.Issuer + ", as a single string")
	}
	if claims.Issuer != id || claims.Subject != id {
		return nil, bad("iss and sub must both be the client_id")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, s.cfg.Leeway); err != nil {
		return nil, bad("expired or not yet valid")
	}
	if claims.Expiry == nil || claims.Expiry.Time().Sub(now) > time.Hour {
		return nil, bad("exp is required and at most one hour ahead")
	}
	if claims.ID == "" {
		return nil, bad("jti is required")
	}
	// Single use: record the assertion's (iss, jti) until it expires. Only
	// the one request whose Revoke created the entry passes, however many
	// copies arrive at once, on however many nodes.
	used := &latch.Revocation{Kind: latch.RevokeJWT, Issuer: "client-assertion:" + id, JTI: claims.ID,
		ExpiresAt: claims.Expiry.Time().Add(s.cfg.Leeway), RevokedAt: now}
	if err := s.store.Revoke(ctx, used); err != nil {
		return nil, err
	}
	if !used.Created {
		return nil, bad("jti was already used")
	}
	return c, nil
}
