package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/token"
)

// TypeAccessToken is the JWT typ of access tokens (RFC 9068 §2.1).
const TypeAccessToken = "at+jwt"

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
		return oauth.BadRequest(oauth.ErrUnsupportedGrantType, "grant_type "+quote(grant)+" is not supported; this server supports "+strings.Join(grantTypes, ", "))
	}
}

// clientCredentials implements RFC 6749 §4.4.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	if !c.AllowsGrant(latch.GrantClientCredentials) {
		return oauth.BadRequest(oauth.ErrUnauthorizedClient, "client is not registered for the client_credentials grant")
	}
	scope, aud, err := s.scopeAndAudience(c, form)
	if err != nil {
		return err
	}
	resp, err := s.issueAccessToken(ctx, w.Header(), c, c.ID, scope, aud, latch.GrantClientCredentials)
	if err != nil {
		return err
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// scopeAndAudience returns the scope and audiences a token request asks
// for, both within the client's registration: the checks of every grant
// that starts from the client's own registration rather than from a
// previous grant.
func (s *Server) scopeAndAudience(c *latch.Client, form url.Values) (scope, aud []string, err error) {
	scope, oerr := oauth.SplitScope(form.Get("scope"))
	if oerr != nil {
		return nil, nil, oerr
	}
	if !c.AllowsScope(scope) {
		return nil, nil, oauth.BadRequest(oauth.ErrInvalidScope, "requested scope exceeds the client's registered scopes")
	}
	aud, err = s.audience(c, form)
	if err != nil {
		return nil, nil, err
	}
	return scope, aud, nil
}

// audience resolves the audiences of a token request from RFC 8707
// resource parameters or the widespread audience parameter; without either
// it is the client's first registered audience.
func (s *Server) audience(c *latch.Client, form url.Values) ([]string, error) {
	want := append(append([]string(nil), form["resource"]...), form["audience"]...)
	for _, a := range want {
		if a == "" || len(a) > 512 {
			return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "empty or oversized audience")
		}
	}
	if len(want) == 0 {
		if len(c.Audiences) == 0 {
			return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "client has no registered audience; register one with `latch client create --audience`")
		}
		return c.Audiences[:1], nil
	}
	if !c.AllowsAudience(want) {
		return nil, oauth.BadRequest(oauth.ErrInvalidTarget, "requested audience is not registered for the client")
	}
	return want, nil
}

// issueAccessToken mints an access token outside any refresh family
// (client_credentials) and stores it when it is opaque: an RFC 9068 JWT
// costs one signature and no write, an opaque token one write. For a
// client with TokenFingerprint it adds the fingerprint cookie to h, the
// header of the token response (DESIGN invariant 8).
func (s *Server) issueAccessToken(ctx context.Context, h http.Header, c *latch.Client, subject string, scope, aud []string, grant string) (*oauth.TokenResponse, error) {
	resp, issue, format, err := s.mintAccessToken(h, c, subject, scope, aud, "", s.now().Truncate(time.Second), nil)
	if err != nil {
		return nil, err
	}
	if issue.Access != nil {
		if err := s.store.CreateToken(ctx, issue.Access); err != nil {
			return nil, err
		}
	}
	s.metrics.issued.WithLabelValues(grant, string(format)).Inc()
	return resp, nil
}

// signAccessToken signs an RFC 9068 access token (§2.2 claims, typ at+jwt)
// with the current key and a fresh jti, which it returns so that a refresh
// family can remember the token for revocation. Every JWT access token this
// server issues, by any grant, is built here.
func (s *Server) signAccessToken(subject, clientID string, aud []string, scope string, iat, exp time.Time, extra map[string]any) (raw, jti string, err error) {
	signer, err := s.signer()
	if err != nil {
		return "", "", err
	}
	if jti, err = token.NewID(s.rand); err != nil {
		return "", "", err
	}
	raw, err = signer.Sign(TypeAccessToken, &token.Claims{
		Issuer: s.cfg.Issuer, Subject: subject, Audience: aud,
		ExpiresAt: exp.Unix(), IssuedAt: iat.Unix(), NotBefore: iat.Unix(),
		ID: jti, ClientID: clientID, Scope: scope, Extra: extra,
	})
	return raw, jti, err
}

// FingerprintCookie is the cookie that carries the raw fingerprint of a
// bound token (DESIGN invariant 8). __Host-: Secure, Path=/, no Domain, so
// no other host or path can set or shadow it (RFC 6265bis §4.1.3.2).
const FingerprintCookie = "__Host-latch_fgp"

// ClaimFingerprint is the claim holding the lowercase hex SHA-256 of the
// fingerprint cookie's value.
const ClaimFingerprint = "fgp"

// fingerprint returns a Set-Cookie value with 256 fresh random bits,
// base64url, and the hex SHA-256 of that cookie value for the fgp claim
// (OWASP JWT cheat sheet, token sidejacking).
func (s *Server) fingerprint(ttl time.Duration) (setCookie, fgp string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", "", latch.Errorf(latch.EINTERNAL, "server: fingerprint: %v", err)
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(v))
	setCookie = FingerprintCookie + "=" + v + "; Path=/; Max-Age=" + strconv.FormatInt(int64(ttl/time.Second), 10) +
		"; Secure; HttpOnly; SameSite=Strict"
	return setCookie, hex.EncodeToString(sum[:]), nil
}

// signer returns a token.Signer for the current signing key, reusing the
// last one while the key is unchanged (the signer precomputes its header).
func (s *Server) signer() (*token.Signer, error) {
	kid, alg, key, err := s.keys.Signing()
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "server: no signing key: %v", err)
	}
	if cur := s.cachedSigner.Load(); cur != nil && cur.KeyID() == kid {
		return cur, nil
	}
	sg, err := token.NewSigner(kid, alg, key)
	if err != nil {
		return nil, err
	}
	s.cachedSigner.Store(sg)
	return sg, nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
