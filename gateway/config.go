package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latch-auth/latch/dpop"
)

// Defaults of Config.
const (
	DefaultCacheEntries     = 10_000
	DefaultCacheTTL         = 30 * time.Second
	DefaultExpiryMargin     = 10 * time.Second
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	DefaultRealm            = "api"
	// DefaultUntaggedRate and DefaultUntaggedPerSourceRate bound the
	// exchanges of opaque tokens that carry no tag the gateway can check
	// (see Config.UntaggedRate).
	DefaultUntaggedRate          = 20
	DefaultUntaggedPerSourceRate = 2
)

// Config configures a Gateway. Issuer, ClientID, ClientSecret and Upstream
// are required; every field that weakens a check is named for it.
type Config struct {
	// Issuer is the authorization server's issuer URL, exactly as its
	// metadata names it (RFC 8414 §3.3).
	Issuer string
	// TokenEndpoint is where opaque tokens are exchanged; "" discovers it
	// from the issuer's metadata at New.
	TokenEndpoint string
	// OpaqueTokenKeysEndpoint is where the keys that tag latch's opaque
	// tokens are fetched (verify.TagKeys) with ClientID and ClientSecret,
	// so that a forged token is refused here, without an exchange. ""
	// takes it from the metadata when TokenEndpoint is discovered; an
	// issuer that names none tags nothing, and every token then takes the
	// untagged path (UntaggedRate).
	OpaqueTokenKeysEndpoint string
	// ClientID and ClientSecret authenticate the gateway at the token
	// endpoint (client_secret_basic). The client must be confidential and
	// registered for the token-exchange grant and for the upstream's
	// audience: `latch client create --grant
	// urn:ietf:params:oauth:grant-type:token-exchange --audience API`.
	ClientID     string
	ClientSecret string

	// Upstream is the API behind the gateway; requests keep their path and
	// query, appended to Upstream's path. http is allowed: the upstream is
	// usually on loopback or behind the mesh's mTLS, but then the JWT
	// crosses that link in the clear.
	Upstream *url.URL
	// Transport carries requests to Upstream. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper

	// AcceptJWT lets JWT access tokens from outside through, verified
	// locally (verify.Verifier, with Audience) and forwarded as they are.
	// Off by default: the outside then holds only opaque tokens, and a JWT
	// arriving from outside is refused. A JWT this gateway obtained by
	// token exchange (act.sub is ClientID) is refused either way: it is
	// meant for the inside only.
	AcceptJWT bool
	// Audience is the upstream's identifier, which an outside JWT must
	// carry in aud. Required with AcceptJWT.
	Audience string

	// IsRevoked is the (iss, jti) denylist consulted for every outside JWT
	// (AcceptJWT), as verify.Config.IsRevoked: wire the Denylist of
	// verify.FollowRevocations. Opaque tokens need no such hook: the feed
	// calls Drop. nil: an outside JWT passes until its exp even if revoked.
	IsRevoked func(ctx context.Context, iss, jti string) bool
	// Ready, when set, is asked before each token is checked; false
	// answers 503 with Retry-After and forwards nothing. Wire the
	// revocation feed's Denylist.Healthy, so that a gateway that can no
	// longer learn of revocations refuses rather than forward tokens that
	// may have been revoked (cached exchanges included).
	Ready func() bool

	// DPoP, when set, makes the gateway accept DPoP-bound tokens (RFC
	// 9449): Authorization: DPoP <token> with a proof in the DPoP header,
	// checked by this Checker against the request, the token (ath) and the
	// key the token is bound to. An opaque token's binding is the cnf.jkt
	// of the JWT the token endpoint exchanges it for; that JWT keeps cnf
	// when forwarded, and the proof, spent here, is not forwarded: the
	// upstream trusts the gateway's check (verify.Config.SkipDPoPProofCheck)
	// and must not be reachable around it. A bound token without the DPoP
	// scheme is refused whether or not DPoP is set.
	DPoP *dpop.Checker
	// ExternalURL is the scheme, host and path prefix clients use to reach
	// the gateway, for the htu of DPoP proofs, as verify.Config.ExternalURL:
	// set it when a load balancer in front terminates TLS or changes the
	// host or path. "": rebuilt from the connection and the Host header.
	ExternalURL string

	// CacheEntries bounds the cache of exchanged JWTs. Default 10,000.
	CacheEntries int
	// CacheTTL is the longest an exchanged JWT is reused for the opaque
	// token it stands for, and so the longest a revoked token still gets
	// through when Drop is not called (the revocation feed calls it). An
	// entry never lives past the JWT's exp minus ExpiryMargin. Default 30s.
	CacheTTL time.Duration
	// ExpiryMargin is how long before its exp a cached JWT is replaced, so
	// the upstream never receives one that expires in flight. Default 10s.
	ExpiryMargin time.Duration
	// NegativeTTL is how long the refusal of an inactive token is reused.
	// An inactive token never becomes active again, so this only trades
	// memory for round trips on replays. 0 (the default) disables it.
	NegativeTTL time.Duration
	// DisableCache exchanges the token on every request.
	DisableCache bool

	// UntaggedRate bounds, per second, the exchanges of opaque tokens the
	// gateway cannot judge itself: untagged (minted before the issuer
	// tagged tokens, or by a process without the key) or under a key it
	// does not hold yet. Anyone can forge those, so they get a budget of
	// their own, in all and per client address (UntaggedPerSourceRate),
	// apart from tagged tokens, which are exchanged unlimited here; a
	// token over budget is answered 503 with Retry-After. Size it for
	// the rate of such tokens new to the cache (each is exchanged once per
	// CacheTTL), well below the issuer's --introspection-rate. Defaults
	// 20/s and 2/s, each with a burst of twice the rate.
	UntaggedRate          float64
	UntaggedPerSourceRate float64

	// HTTPClient talks to the issuer (metadata, token endpoint, and the
	// JWKS with AcceptJWT). Default: a client with Timeout that follows no
	// redirect.
	HTTPClient *http.Client
	// Timeout bounds each call to the issuer. Default 10s.
	Timeout time.Duration
	// MaxResponseBytes bounds each answer of the issuer. Default 64 KiB.
	MaxResponseBytes int64
	// InsecureAllowHTTP allows an http issuer: the gateway's client secret
	// and every opaque token then cross the network in the clear. For
	// tests and local development only.
	InsecureAllowHTTP bool

	// Realm is the realm of the WWW-Authenticate challenges (RFC 6750 §3).
	// Default "api".
	Realm string
	// Logger receives errors (issuer unreachable, credentials refused,
	// upstream unreachable) and refusals of forged tokens; never a token
	// or the secret. Default: discarded.
	Logger *slog.Logger
	// LogInterval is the least time between two log lines of one kind:
	// events in between are counted into the next line. Default
	// DefaultLogInterval (10s).
	LogInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.ExpiryMargin == 0 {
		c.ExpiryMargin = DefaultExpiryMargin
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Timeout: c.Timeout,
			// The token endpoint is where the issuer's metadata says; a
			// redirect could carry the secret elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.UntaggedRate == 0 {
		c.UntaggedRate = DefaultUntaggedRate
	}
	if c.UntaggedPerSourceRate == 0 {
		c.UntaggedPerSourceRate = DefaultUntaggedPerSourceRate
	}
	if c.LogInterval == 0 {
		c.LogInterval = DefaultLogInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem of c, in words that say what to set.
// New calls it after filling in the defaults.
func (c Config) Validate() error {
	if err := checkURL("Issuer", c.Issuer, c.InsecureAllowHTTP, true); err != nil {
		return err
	}
	if c.TokenEndpoint != "" {
		if err := checkURL("TokenEndpoint", c.TokenEndpoint, c.InsecureAllowHTTP, false); err != nil {
			return err
		}
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(c.ExternalURL, "?#") {
			return fmt.Errorf("gateway: ExternalURL %q must be an absolute http or https URL without query, fragment or user info", c.ExternalURL)
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("gateway: ClientID and ClientSecret are required: the gateway authenticates at the token endpoint to exchange opaque tokens")
	}
	if c.Upstream == nil {
		return errors.New("gateway: Upstream is required")
	}
	if u := c.Upstream; (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("gateway: Upstream %q must be an http or https URL without user info, query or fragment", u.Redacted())
	}
	if c.AcceptJWT && c.Audience == "" {
		return errors.New("gateway: AcceptJWT needs Audience, the upstream's identifier that outside JWTs must carry in aud")
	}
	if c.CacheEntries < 0 {
		return errors.New("gateway: CacheEntries is negative; use DisableCache to turn the cache off")
	}
	if c.CacheTTL < 0 || c.NegativeTTL < 0 || c.ExpiryMargin < 0 {
		return errors.New("gateway: CacheTTL, NegativeTTL and ExpiryMargin must not be negative")
	}
	if c.ExpiryMargin >= time.Minute {
		return fmt.Errorf("gateway: ExpiryMargin %v must be under a minute: exchanged JWTs live at most 5 minutes", c.ExpiryMargin)
	}
	if c.OpaqueTokenKeysEndpoint != "" {
		if err := checkURL("OpaqueTokenKeysEndpoint", c.OpaqueTokenKeysEndpoint, c.InsecureAllowHTTP, false); err != nil {
			return err
		}
	}
	if c.UntaggedRate < 0 || c.UntaggedPerSourceRate < 0 || c.LogInterval < 0 {
		return errors.New("gateway: UntaggedRate, UntaggedPerSourceRate and LogInterval must not be negative")
	}
	if c.Timeout < 0 || c.MaxResponseBytes < 0 {
		return errors.New("gateway: Timeout and MaxResponseBytes must not be negative")
	}
	if c.Realm == "" || !isQText(c.Realm) {
		return fmt.Errorf("gateway: Realm %q may hold only printable ASCII without '\"' and '\\'", c.Realm)
	}
	return nil
}

// checkURL applies RFC 8414 §2 to the issuer (no query or fragment) and
// asks https of both the issuer and its endpoints.
func checkURL(what, raw string, allowHTTP, issuer bool) error {
	if raw == "" {
		return fmt.Errorf("gateway: %s is required; set it to the authorization server's issuer URL", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("gateway: %s %q: %v", what, raw, err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || (issuer && (u.RawQuery != "" || u.ForceQuery)) {
		return fmt.Errorf("gateway: %s %q must be an absolute URL without user info, query or fragment", what, raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP:
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("gateway: %s %q is http; use https (or InsecureAllowHTTP for local development)", what, raw)
	}
	return fmt.Errorf("gateway: %s %q: scheme must be https", what, raw)
}

// isQText reports whether s is %x20-21 / %x23-5B / %x5D-7E only (RFC 6750 §3).
func isQText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
