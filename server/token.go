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

// clientCredentials implements RFC 6749 §4.4. The rules are in
// Tokens.clientCredentials, which `latch token issue` applies too.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, form, true)
	if err != nil {
		return err
	}
	at, err := s.tok.ClientCredentials(ctx, c, form.Get("scope"), requestedAudiences(form), 0)
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
// asks for, both within the client's registration (checkScopeAndAudience).
func (s *Server) scopeAndAudience(ctx context.Context, c *latch.Client, form url.Values) (scope, aud []string, err error) {
	return s.tok.checkScopeAndAudience(ctx, c, form.Get("scope"), requestedAudiences(form))
}

// audience resolves the audiences of a request from RFC 8707 resource
// parameters or the widespread audience parameter; without either it is
// the client's first registered audience.
func audience(c *latch.Client, form url.Values) ([]string, error) {
	return checkAudience(c, requestedAudiences(form))
}

// FingerprintCookie is the cookie that carries the raw fingerprint of a
// bound token (security invariant 8). __Host-: Secure, Path=/, no Domain, so
// no other host or path can set or shadow it (RFC 6265bis §4.1.3.2).
const FingerprintCookie = "__Host-latch_fgp"

// ClaimFingerprint is the claim holding the lowercase hex SHA-256 of the
// fingerprint cookie's value.
const ClaimFingerprint = "fgp"

// ClaimRegistration is the private claim (RFC 7519 §4.3) of a JWT access
// token that holds the RegistrationID of its client: the token is active
// here only while the client with its client_id is that registration, so
// that deleting a client and registering another under the same ID does
// not bring the deleted one's tokens back. Absent for clients without one.
const ClaimRegistration = "latch_reg"

// registrationOf returns the registration a JWT's claims name; "" when
// they name none.
func registrationOf(c *token.Claims) string {
	s, _ := c.Extra[ClaimRegistration].(string)
	return s
}

// fingerprint returns a Set-Cookie value with 256 fresh random bits from
// r, base64url, and the hex SHA-256 of that cookie value for the fgp claim
// (OWASP JWT cheat sheet, token sidejacking).
func fingerprint(r io.Reader, ttl time.Duration) (setCookie, fgp string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", latch.Errorf(latch.EINTERNAL, "server: fingerprint: %v", err)
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(v))
	setCookie = FingerprintCookie + "=" + v + "; Path=/; Max-Age=" + strconv.FormatInt(int64(ttl/time.Second), 10) +
		"; Secure; HttpOnly; SameSite=Strict"
	return setCookie, hex.EncodeToString(sum[:]), nil
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
