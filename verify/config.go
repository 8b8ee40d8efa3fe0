package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
)

// Defaults of Config and IntrospectorConfig.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultCacheEntries       = 10_000
	DefaultUnknownKeyInterval = 30 * time.Second
	DefaultRefreshFloor       = time.Minute
	DefaultRefreshCeiling     = time.Hour
	DefaultTimeout            = 10 * time.Second
	DefaultMaxResponseBytes   = 1 << 20
	DefaultRealm              = "api"
	// DefaultUntaggedRate bounds the introspections per second of opaque
	// tokens without a tag the Introspector can check
	// (IntrospectorConfig.UntaggedRate).
	DefaultUntaggedRate = 20

	// maxLeeway bounds the configured clock skew: more is no longer "small"
	// (security invariant 3) but a second lifetime for expired tokens.
	maxLeeway = 5 * time.Minute
)

// Config configures a Verifier. Issuer and Audience are required; every
// field that weakens a check is named for it.
type Config struct {
	// Issuer is the issuer URL, exactly as the tokens' iss and the
	// metadata's issuer carry it (RFC 8414 §3.3). Its metadata is fetched
	// from it at New.
	Issuer string
	// Audience is this resource server's identifier; a token must list it
	// in aud (RFC 9068 §4). Required unless SkipAudienceCheck.
	Audience string
	// SkipAudienceCheck accepts tokens minted for any audience of the
	// issuer: a token stolen from another service then works here.
	SkipAudienceCheck bool
	// Algorithms are the signature algorithms accepted, pinned per key: a
	// JWK whose alg is not in the list is not used (RFC 8725 §3.1). A JWK
	// without alg gets the algorithm its key type implies only when exactly
	// one allowed algorithm fits it. Default: ES256, latch's default.
	Algorithms []latch.Algorithm
	// Leeway is the clock skew tolerated on exp, nbf and iat, in whole
	// seconds. 0 means the default, 30s; the least is 1s. At most 5m.
	Leeway time.Duration

	// IsRevoked is the (iss, jti) denylist (security invariant 4), consulted
	// on every successful verification, cache hits included, so it must be
	// fast (an in-memory lookup). nil denylists nothing. Plug in the
	// IsRevoked of a Denylist from FollowRevocations to follow latch's
	// revocation feed.
	IsRevoked func(ctx context.Context, iss, jti string) bool

	// CacheEntries bounds the cache of verified tokens. Default 10,000.
	CacheEntries int
	// DisableCache verifies every token's signature on every request.
	DisableCache bool

	// UnknownKeyInterval is the least time between two JWKS fetches caused
	// by a token with an unknown kid, for all requests together. Default 30s.
	UnknownKeyInterval time.Duration
	// RefreshFloor and RefreshCeiling clamp the JWKS's Cache-Control
	// max-age: the keys are refetched after max-age, but never sooner than
	// the floor nor later than the ceiling; without max-age, after the
	// floor. Defaults 1m and 1h.
	RefreshFloor   time.Duration
	RefreshCeiling time.Duration

	// HTTPClient fetches metadata and keys. Default: a client with Timeout
	// that follows no redirect. A caller's client is used as is.
	HTTPClient *http.Client
	// Timeout bounds each fetch. Default 10s.
	Timeout time.Duration
	// MaxResponseBytes bounds each metadata or JWKS body. Default 1 MiB.
	MaxResponseBytes int64
	// InsecureAllowHTTP allows an http issuer and jwks_uri: anyone on the
	// path can then substitute keys. For tests and local development only.
	InsecureAllowHTTP bool

	// CookieName, when set, is a cookie the middleware reads the token
	// from when the request has no Authorization: Bearer header. A cookie
	// is sent by the browser on cross-site requests too: the handler then
	// needs CSRF protection, and the cookie should be __Host- and SameSite.
	CookieName string
	// Realm is the realm of the WWW-Authenticate challenges (RFC 6750 §3).
	// Default "api".
	Realm string

	// FingerprintCookie, when set (latch's is DefaultFingerprintCookie,
	// "__Host-latch_fgp"), makes the middleware require that every token
	// be bound to the browser that received it (security invariant 8, OWASP
	// token sidejacking): the token's fgp claim must equal the hex SHA-256
	// of this cookie's value, so a token stolen without the HttpOnly
	// cookie is refused. A token without fgp is refused too, unless
	// AllowUnboundTokens. Verify and Authenticate do not see the request:
	// callers that skip the middleware use CheckFingerprint. "" turns the
	// check off.
	FingerprintCookie string
	// AllowUnboundTokens accepts tokens without an fgp claim even though
	// FingerprintCookie is set, for deployments where only some clients
	// bind their tokens: a stolen unbound token then works alone. Bound
	// tokens are still checked.
	AllowUnboundTokens bool

	// DecryptionKeys are this resource server's private keys for access
	// tokens encrypted to it (a client registered with `latch client create
	// --encrypt-to` gets its JWTs as a JWE around the JWS, so that neither
	// it nor a browser can read the claims). Each is an EC private key
	// (*ecdsa.PrivateKey: P-256, P-384 or P-521), found by the JWE's kid:
	// its KeyID, or, when that is empty, its RFC 7638 SHA-256 thumbprint,
	// which is what latch sends for a registered key without a kid. A JWE
	// without a kid is tried with the key only when there is exactly one.
	// Keep the previous key here while clients are moved to a new one.
	// Empty: an encrypted token is refused (ErrDecrypt).
	DecryptionKeys []jose.JSONWebKey
	// RequireEncryption refuses plain JWS access tokens (ErrNotEncrypted):
	// for an API whose tokens' claims must never be readable by the client,
	// a token that arrives readable was not minted for it. Needs
	// DecryptionKeys. Opaque tokens, checked by an Introspector, are not
	// affected.
	RequireEncryption bool
	// KeyEncryptionAlgorithms and ContentEncryption are the JWE alg and enc
	// values accepted, pinned like Algorithms: a token naming another is
	// refused before any decryption. Defaults: ECDH-ES+A256KW and A256GCM,
	// which latch issues. Only the ECDH-ES family and AES-GCM or
	// AES-CBC-HMAC-SHA2 can be allowed.
	KeyEncryptionAlgorithms []jose.KeyAlgorithm
	ContentEncryption       []jose.ContentEncryption

	// DPoP, when set, makes the middleware accept DPoP-bound tokens
	// (RFC 9449): Authorization: DPoP <token> with a proof in the DPoP
	// header, checked by this Checker (algorithms, iat window, replay
	// cache, nonces) against the request and the token's cnf.jkt. Share one
	// Checker between the middlewares of a service, so that one replay
	// cache sees every proof. nil: the DPoP scheme is not accepted. A
	// token bound to a DPoP key is refused as a Bearer token either way.
	DPoP *dpop.Checker
	// SkipDPoPProofCheck accepts tokens bound to a DPoP key (cnf.jkt) as
	// Bearer tokens, without a proof, for an API reached only through a
	// gateway that checked the proof (latch gateway with DPoP): the JWT the
	// gateway forwards stands for the client's opaque token and keeps its
	// cnf, but the client's proof was made for the opaque token (its ath),
	// so it cannot be checked here again. Anyone who can reach the API
	// without the gateway can then use a copied bound JWT without the key.
	SkipDPoPProofCheck bool
	// ExternalURL is the scheme, host and path prefix clients use to reach
	// this service, e.g. "https://api.example.com" or
	// "https://example.com/api" when a proxy strips /api, for the htu of
	// DPoP proofs: the URI a proof must name is ExternalURL followed by the
	// path the service receives. Set it whenever a proxy or load balancer
	// terminates TLS or changes the host or the path. "": the URI is
	// rebuilt from the connection (https only on TLS) and the Host header.
	// X-Forwarded-* headers are never used.
	ExternalURL string

	// Logger receives warnings (a refused JWK, a failed refresh). Default:
	// discarded.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if len(c.Algorithms) == 0 {
		c.Algorithms = []latch.Algorithm{latch.ES256}
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.UnknownKeyInterval == 0 {
		c.UnknownKeyInterval = DefaultUnknownKeyInterval
	}
	if c.RefreshFloor == 0 {
		c.RefreshFloor = DefaultRefreshFloor
	}
	if c.RefreshCeiling == 0 {
		c.RefreshCeiling = max(DefaultRefreshCeiling, c.RefreshFloor)
	}
	fetchDefaults(&c.HTTPClient, &c.Timeout, &c.MaxResponseBytes)
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if len(c.KeyEncryptionAlgorithms) == 0 {
		c.KeyEncryptionAlgorithms = DefaultKeyEncryptionAlgorithms
	}
	if len(c.ContentEncryption) == 0 {
		c.ContentEncryption = DefaultContentEncryption
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func fetchDefaults(hc **http.Client, timeout *time.Duration, maxBytes *int64) {
	if *timeout == 0 {
		*timeout = DefaultTimeout
	}
	if *maxBytes == 0 {
		*maxBytes = DefaultMaxResponseBytes
	}
	if *hc == nil {
		*hc = &http.Client{
			Timeout: *timeout,
			// A redirect could lead from https to http or to another
			// host; metadata, keys and introspection are at the URLs the
			// issuer published.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

// Validate reports the first problem of c, in words that say what to set.
// New calls it after filling in the defaults.
func (c Config) Validate() error {
	if err := checkIssuer(c.Issuer, c.InsecureAllowHTTP); err != nil {
		return err
	}
	if c.Audience == "" && !c.SkipAudienceCheck {
		return errors.New("verify: Config.Audience is required; set it to this API's identifier (or SkipAudienceCheck)")
	}
	if len(c.Algorithms) == 0 {
		return errors.New("verify: Config.Algorithms is empty")
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(latch.Algorithms, a) {
			return fmt.Errorf("verify: Config.Algorithms: unsupported algorithm %q; use ES256, EdDSA, RS256 or PS256", a)
		}
		if slices.Contains(c.Algorithms[:i], a) {
			return fmt.Errorf("verify: Config.Algorithms lists %q twice", a)
		}
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		return fmt.Errorf("verify: Config.Leeway %v is outside [0, %v]", c.Leeway, maxLeeway)
	}
	if c.CacheEntries < 0 {
		return errors.New("verify: Config.CacheEntries is negative; use DisableCache to turn the cache off")
	}
	if c.UnknownKeyInterval < 0 {
		return errors.New("verify: Config.UnknownKeyInterval is negative")
	}
	if c.RefreshFloor <= 0 || c.RefreshCeiling < c.RefreshFloor {
		return fmt.Errorf("verify: Config.RefreshFloor %v and RefreshCeiling %v: need 0 < floor <= ceiling", c.RefreshFloor, c.RefreshCeiling)
	}
	if err := checkFetch(c.Timeout, c.MaxResponseBytes); err != nil {
		return err
	}
	if err := checkCookieName(c.CookieName); err != nil {
		return err
	}
	if err := checkRealm(c.Realm); err != nil {
		return err
	}
	if c.RequireEncryption && len(c.DecryptionKeys) == 0 {
		return errors.New("verify: Config.RequireEncryption needs Config.DecryptionKeys, the private key(s) tokens are encrypted to")
	}
	if _, err := newDecrypter(c.DecryptionKeys, c.KeyEncryptionAlgorithms, c.ContentEncryption); err != nil {
		return err
	}
	if _, err := checkExternalURL("Config.ExternalURL", c.ExternalURL); err != nil {
		return err
	}
	return checkFingerprintConfig(c.FingerprintCookie, c.CookieName, c.AllowUnboundTokens)
}

func checkFingerprintConfig(name, tokenCookie string, allowUnbound bool) error {
	if name == "" {
		if allowUnbound {
			return errors.New("verify: Config.AllowUnboundTokens without FingerprintCookie has no effect; set FingerprintCookie or drop it")
		}
		return nil
	}
	for i := 0; i < len(name); i++ {
		if !isTChar(name[i]) {
			return fmt.Errorf("verify: FingerprintCookie %q is not a valid cookie name (RFC 6265 §4.1.1)", name)
		}
	}
	if name == tokenCookie {
		return fmt.Errorf("verify: FingerprintCookie %q is also CookieName; the fingerprint must travel apart from the token", name)
	}
	return nil
}

// checkIssuer applies RFC 8414 §2: an https URL with no query or fragment.
func checkIssuer(issuer string, allowHTTP bool) error {
	if issuer == "" {
		return errors.New("verify: Issuer is required; set it to the authorization server's issuer URL")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("verify: Issuer %q: %v", issuer, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("verify: Issuer %q must be an absolute URL without query, fragment or user info (RFC 8414 §2)", issuer)
	}
	return checkScheme("Issuer", u, allowHTTP)
}

func checkScheme(what string, u *url.URL, allowHTTP bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP:
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("verify: %s %q is http; use https (or InsecureAllowHTTP for tests)", what, u.Redacted())
	}
	return fmt.Errorf("verify: %s %q: scheme must be https", what, u.Redacted())
}

func checkFetch(timeout time.Duration, maxBytes int64) error {
	if timeout < 0 {
		return errors.New("verify: Timeout is negative")
	}
	if maxBytes < 0 {
		return errors.New("verify: MaxResponseBytes is negative")
	}
	return nil
}

func checkCookieName(name string) error {
	for i := 0; i < len(name); i++ {
		if !isTChar(name[i]) {
			return fmt.Errorf("verify: CookieName %q is not a valid cookie name (RFC 6265 §4.1.1)", name)
		}
	}
	return nil
}

// checkRealm keeps the realm a quoted-string without escapes (RFC 6750 §3).
func checkRealm(realm string) error {
	if realm == "" {
		return errors.New("verify: Realm is empty")
	}
	if !isQText(realm) {
		return fmt.Errorf("verify: Realm %q may hold only printable ASCII without '\"' and '\\'", realm)
	}
	return nil
}

// isTChar is RFC 9110 §5.6.2's tchar.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQText reports whether s is %x20-21 / %x23-5B / %x5D-7E only, the
// characters RFC 6750 §3 allows in error_description and realm values.
func isQText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
