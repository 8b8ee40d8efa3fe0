package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latch-auth/latch/token"
)

// TypeAccessToken is the typ of RFC 9068 access tokens (§2.1). An ID token
// (typ JWT) or any other JWT the issuer signs is refused (security
// invariant 2).
const TypeAccessToken = token.TypeAccessToken

// Errors of this package, beside token's sentinels (token.ErrExpired,
// token.ErrAudience, ...), which Verify's errors wrap too. Test with
// errors.Is.
var (
	// ErrRevoked: the token verifies but is denylisted (Config.IsRevoked).
	ErrRevoked = errors.New("verify: token revoked")
	// ErrMissingClaim: a claim a latch access token always has is missing
	// (sub, jti, client_id).
	ErrMissingClaim = errors.New("verify: required claim missing")
	// ErrInactive: the introspection endpoint answered active false.
	ErrInactive = errors.New("verify: token inactive")
	// ErrUnavailable: the token could not be checked because the
	// introspection endpoint failed; the request may succeed later.
	ErrUnavailable = errors.New("verify: introspection unavailable")
)

// Claims are the claims of a verified access token, whether verified
// locally (a JWT) or by introspection (an opaque token). A *Claims may be
// shared between requests through the caches: treat it as read-only.
type Claims struct {
	token.Claims
}

// HasScope reports whether scope is one of the space-separated values of
// the scope claim (RFC 9068 §2.2.3, RFC 6749 §3.3).
func (c *Claims) HasScope(scope string) bool {
	if scope == "" {
		return false
	}
	s := c.Scope
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ' ' {
			i++
		}
		if s[:i] == scope {
			return true
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return false
}

// Verifier verifies latch JWT access tokens locally with the issuer's
// published keys. It is safe for concurrent use and holds no goroutine
// between calls: keys are refreshed in the background when a request finds
// them stale.
type Verifier struct {
	cfg   Config
	keys  token.KeySet // *remoteKeys, or staticKeys from NewWithJWKS
	opts  token.VerifyOptions
	cache *cache[*Claims] // nil when disabled
	dec   *decrypter      // nil without Config.DecryptionKeys
}

// New discovers the issuer's metadata, fetches its JWKS and returns a
// Verifier. It fails when either fetch fails or no key of the JWKS is
// usable, so a misconfiguration shows at start-up.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &fetcher{client: cfg.HTTPClient, timeout: cfg.Timeout, maxBytes: cfg.MaxResponseBytes, allowHTTP: cfg.InsecureAllowHTTP}
	md, err := f.discover(ctx, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if err := checkEndpoint("jwks_uri", md.JWKSURI, cfg.InsecureAllowHTTP); err != nil {
		return nil, err
	}
	v, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	remote := &remoteKeys{
		uri: md.JWKSURI, fetch: f, allowed: cfg.Algorithms,
		floor: cfg.RefreshFloor, ceiling: cfg.RefreshCeiling, interval: cfg.UnknownKeyInterval,
		now: cfg.Now, log: cfg.Logger,
		changed: func() {
			// A key left the JWKS (retired at once after a compromise) or
			// changed: the tokens it signed must stop being accepted now,
			// not when their cache entries expire.
			if v.cache != nil {
				v.cache.Flush()
			}
		},
	}
	v.keys = remote
	if err := remote.refresh(ctx, true); err != nil {
		return nil, fmt.Errorf("verify: fetch JWKS of %s: %w", cfg.Issuer, err)
	}
	return v, nil
}

// NewWithJWKS returns a Verifier that checks tokens against the keys of
// jwks, the issuer's JWK Set document (its /.well-known/jwks.json), with
// every other check of New. It makes no network request, ever: for a
// service that must verify offline or whose keys are delivered with its
// configuration, and for tests. A token signed by a key not in jwks is
// refused (token.ErrUnknownKey); to follow key rotation, build a new
// Verifier from the new set. The fetch settings of cfg are not used.
func NewWithJWKS(cfg Config, jwks []byte) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys, skipped, err := parseJWKS(jwks, cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	for _, e := range skipped {
		cfg.Logger.Warn("verify: a key of the JWKS is not used", "err", e)
	}
	v, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	v.keys = staticKeys(keys)
	return v, nil
}

// newVerifier builds the parts of a Verifier that do not depend on where
// its keys come from.
func newVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{
		cfg: cfg,
		opts: token.VerifyOptions{
			Issuer:            cfg.Issuer,
			Audience:          cfg.Audience,
			SkipAudienceCheck: cfg.SkipAudienceCheck,
			Type:              TypeAccessToken,
			Algorithms:        cfg.Algorithms,
			Leeway:            cfg.Leeway,
			Now:               cfg.Now,
		},
	}
	if !cfg.DisableCache {
		v.cache = newCache[*Claims](cfg.CacheEntries)
	}
	if len(cfg.DecryptionKeys) > 0 {
		var err error
		if v.dec, err = newDecrypter(cfg.DecryptionKeys, cfg.KeyEncryptionAlgorithms, cfg.ContentEncryption); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Verify checks a JWT access token and returns its claims. Errors wrap
// token's sentinels (token.ErrSignature, token.ErrExpired, ...) or
// ErrRevoked or ErrMissingClaim.
//
// Every check of security invariants 1-3 is token.Verify's: the algorithm is
// the key's, pinned from the JWKS and Config.Algorithms (RFC 8725 §3.1);
// the header may name only alg, kid and typ, so no key or URL is ever taken
// from the token (RFC 8725 §3.10); typ is at+jwt (RFC 9068 §4); iss, aud,
// exp, nbf and iat are checked with Config.Leeway. A token already verified
// is served from the cache until its exp; Config.IsRevoked is consulted in
// both cases.
//
// An encrypted token (a compact JWE, see Config.DecryptionKeys) is
// decrypted with the configured key, alg and enc pinned, and its payload
// verified as above; errors wrap ErrDecrypt. With Config.RequireEncryption
// a plain JWS is refused with ErrNotEncrypted. The cache is keyed on the
// token as presented, so a cached encrypted token is not decrypted again.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > MaxJWESize {
		return nil, fmt.Errorf("verify: token of %d bytes exceeds %d: %w", len(raw), MaxJWESize, token.ErrMalformed)
	}
	var key [32]byte
	var gen uint64
	if v.cache != nil {
		key = sha256.Sum256([]byte(raw))
		if c, ok := v.cache.Get(&key, v.cfg.Now()); ok {
			return v.checkRevoked(ctx, c)
		}
		gen = v.cache.Generation()
	}
	jws := raw
	switch {
	case token.IsCompactJWE(raw):
		if v.dec == nil {
			return nil, fmt.Errorf("verify: the token is encrypted (a JWE) and no Config.DecryptionKeys are configured; add this API's private key: %w", ErrDecrypt)
		}
		var err error
		if jws, err = v.dec.decrypt(raw); err != nil {
			return nil, err
		}
	case v.cfg.RequireEncryption:
		return nil, fmt.Errorf("verify: the token is not encrypted and Config.RequireEncryption is set: %w", ErrNotEncrypted)
	}
	tc, err := token.Verify(ctx, jws, v.keys, v.opts)
	if err != nil {
		return nil, err
	}
	if err := requireClaims(tc); err != nil {
		return nil, err
	}
	c := &Claims{Claims: *tc}
	if _, err := v.checkRevoked(ctx, c); err != nil {
		return nil, err
	}
	if v.cache != nil {
		// Never served after exp: the cache has no leeway of its own, a
		// token within Leeway of exp is verified afresh.
		v.cache.Put(&key, c, time.Unix(c.ExpiresAt, 0), v.cfg.Now(), gen)
	}
	return c, nil
}

func (v *Verifier) checkRevoked(ctx context.Context, c *Claims) (*Claims, error) {
	if v.cfg.IsRevoked != nil && v.cfg.IsRevoked(ctx, c.Issuer, c.ID) {
		return nil, fmt.Errorf("verify: jti %q of %s: %w", c.ID, c.Issuer, ErrRevoked)
	}
	return c, nil
}

// requireClaims checks the claims every latch access token carries (RFC
// 9068 §2.2): sub, jti (the denylist's key, security invariant 4) and
// client_id.
func requireClaims(c *token.Claims) error {
	switch {
	case c.Subject == "":
		return fmt.Errorf("verify: no sub: %w", ErrMissingClaim)
	case c.ID == "":
		return fmt.Errorf("verify: no jti: %w", ErrMissingClaim)
	case c.ClientID == "":
		return fmt.Errorf("verify: no client_id: %w", ErrMissingClaim)
	}
	return nil
}

// Middleware returns next behind bearer-token authentication with this
// Verifier, with Config.Realm and Config.CookieName: see
// Authenticator.Middleware. Opaque tokens are refused; use an Authenticator
// with an Introspector to accept them too.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	a := &Authenticator{Verifier: v, Realm: v.cfg.Realm, CookieName: v.cfg.CookieName}
	return a.Middleware(next)
}
