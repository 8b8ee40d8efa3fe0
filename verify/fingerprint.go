package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/latch-auth/latch/token"
)

// ClaimFingerprint is the claim of a token bound to a browser: the
// lowercase hex SHA-256 of the value of the fingerprint cookie that the
// token response set (OWASP JWT cheat sheet, token sidejacking; security
// invariant 8).
const ClaimFingerprint = token.ClaimFingerprint

// DefaultFingerprintCookie is the name of the cookie latch sets for bound
// tokens; use it as Config.FingerprintCookie.
const DefaultFingerprintCookie = token.FingerprintCookie

var (
	// ErrFingerprint: the token is bound to a fingerprint cookie and the
	// request lacks it or carries another value, or the token is not bound
	// where every token must be.
	ErrFingerprint = errors.New("verify: token fingerprint missing or wrong")
	// ErrUnboundToken: the token carries no fgp claim. It wraps
	// ErrFingerprint.
	ErrUnboundToken = fmt.Errorf("verify: token carries no %s claim: %w", ClaimFingerprint, ErrFingerprint)
)

// CheckFingerprint checks that claims carry fgp and that the request's
// cookie cookieName hashes to it: hex(SHA-256(cookie value)) equals fgp,
// compared in constant time. A token without fgp is refused with
// ErrUnboundToken (which wraps ErrFingerprint); a deployment that also
// accepts unbound tokens tests for it with errors.Is. Every other failure
// is ErrFingerprint. It is for callers of Verify or Authenticate that do
// not use Middleware, which makes this check itself when
// Config.FingerprintCookie is set. Call it on every request, whether or
// not the claims came from a cache.
func CheckFingerprint(claims *Claims, r *http.Request, cookieName string) error {
	if claims == nil || r == nil || cookieName == "" {
		return ErrFingerprint
	}
	v, present := claims.Extra[ClaimFingerprint]
	if !present {
		return ErrUnboundToken
	}
	want, ok := v.(string)
	if !ok || len(want) != 2*sha256.Size {
		return ErrFingerprint
	}
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return ErrFingerprint
	}
	sum := sha256.Sum256([]byte(ck.Value))
	got := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return ErrFingerprint
	}
	return nil
}

// checkBinding is the middleware's check: CheckFingerprint, letting an
// unbound token through only when allowUnbound.
func checkBinding(c *Claims, r *http.Request, cookieName string, allowUnbound bool) error {
	err := CheckFingerprint(c, r, cookieName)
	if allowUnbound && errors.Is(err, ErrUnboundToken) {
		return nil
	}
	return err
}
