package server

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// TypeIDToken is the typ of ID tokens. OIDC Core does not name one; "JWT"
// (RFC 7519 §5.1) is what verifiers expect, and it is not at+jwt, so an ID
// token is refused wherever an access token is expected (security invariant 2).
const TypeIDToken = "JWT"

// grantTypes are the grant types the token endpoint implements.
var grantTypes = []string{latch.GrantAuthorizationCode, latch.GrantRefreshToken, latch.GrantClientCredentials,
	latch.GrantTokenExchange, latch.GrantPassword}

// userClaims are the claims about the user that access tokens, ID tokens
// and userinfo carry: the roles and groups an operator assigned, so
// resource servers can authorize without a lookup. Empty lists are left
// out.
func userClaims(u *latch.User) map[string]any {
	m := map[string]any{}
	if len(u.Roles) > 0 {
		m["roles"] = u.Roles
	}
	if len(u.Groups) > 0 {
		m["groups"] = u.Groups
	}
	return m
}

// signIDToken signs an OIDC ID token (Core §2, §3.1.3.6) for u and client
// c: aud is the client alone, azp names it too, auth_time and sid come from
// the login session, nonce from the authorization request (empty on
// refresh, §12.2), at_hash binds the access token issued with it.
func (s *Server) signIDToken(c *latch.Client, u *latch.User, f *latch.Family, scope []string, now time.Time, nonce, accessToken string) (string, error) {
	signer, err := s.idTokenSigner(c)
	if err != nil {
		return "", err
	}
	jti, err := token.NewID(s.rand)
	if err != nil {
		return "", err
	}
	extra := userClaims(u)
	extra["azp"] = c.ID
	extra["auth_time"] = f.AuthTime.Unix()
	if f.SessionID != "" {
		extra["sid"] = f.SessionID
	}
	if nonce != "" {
		extra["nonce"] = nonce
	}
	identityClaims(extra, u, scope)
	if accessToken != "" {
		extra["at_hash"] = leftHalfHash(signer.Algorithm(), accessToken)
	}
	ttl := min(s.cfg.IDTokenTTL, s.cfg.MaxAccessTokenTTL)
	return signer.Sign(TypeIDToken, &token.Claims{
		Issuer: s.cfg.Issuer, Subject: u.ID, Audience: token.Audience{c.ID},
		ExpiresAt: now.Add(ttl).Unix(), IssuedAt: now.Unix(), ID: jti, Extra: extra,
	})
}

// leftHalfHash is OIDC Core §3.1.3.6's at_hash: base64url of the left half
// of the hash of the token's ASCII, with the hash of the signing
// algorithm. Ed25519 signs with SHA-512 inside, so EdDSA takes SHA-512
// (OpenID Connect Core errata 2, §3.1.3.6).
func leftHalfHash(alg latch.Algorithm, tok string) string {
	var h hash.Hash
	if alg == latch.EdDSA {
		h = sha512.New()
	} else {
		h = sha256.New() // ES256, RS256, PS256
	}
	h.Write([]byte(tok))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// userinfo implements OIDC Core §5.3: the claims about the user of an
// access token that carries the openid scope. Errors follow RFC 6750 §3
// with WWW-Authenticate.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	in, ok, err := s.userinfoToken(w, r)
	if err != nil || !ok {
		return err
	}
	ctx := r.Context()
	if c, err := s.clients.Client(ctx, in.ClientID); err == nil {
		allowClientOrigin(ctx, c)
	}
	scope := strings.Fields(in.Scope)
	if !slices.Contains(scope, latch.ScopeOpenID) {
		return bearerError(w, http.StatusForbidden, oauth.ErrInsufficientScope, "the access token lacks the openid scope")
	}
	u, err := s.store.User(ctx, in.Sub)
	if errors.Is(err, latch.ErrNotFound) {
		return bearerError(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token's subject is not a user")
	} else if err != nil {
		return err
	}
	if u.Disabled {
		return bearerError(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the user is disabled")
	}
	claims := userClaims(u)
	claims["sub"] = u.ID
	identityClaims(claims, u, scope)
	oauth.WriteJSON(w, http.StatusOK, claims)
	return nil
}

// maxBearerLength bounds the tokens the server's bearer-authenticated
// endpoints read: more than any token it issues, so a longer one is refused
// before any work is spent on it.
const maxBearerLength = 8192

// bearer returns the token of an RFC 6750 §2.1 Authorization header, read
// by oauth.BearerToken as verify reads it. The form-body and query methods
// (§2.2, §2.3) are not accepted: the query leaks into logs, and the body
// needs a form userinfo does not otherwise parse.
func bearer(r *http.Request) (string, bool) {
	tok, err := oauth.BearerToken(r.Header)
	if err != nil || tok == "" || len(tok) > maxBearerLength {
		return "", false
	}
	return tok, true
}

// bearerError answers an RFC 6750 §3.1 error with its WWW-Authenticate
// challenge and a JSON body.
func bearerError(w http.ResponseWriter, status int, code, description string) error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="latch", error="`+code+`", error_description="`+description+`"`)
	oauth.WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
	return nil
}
