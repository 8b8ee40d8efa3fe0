package bff

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultCookieName       = "__Host-latch_bff"
	DefaultAPIPrefix        = "/api"
	DefaultSessionIdle      = time.Hour
	DefaultSessionMaxAge    = 12 * time.Hour
	DefaultLoginTimeout     = 10 * time.Minute
	DefaultRefreshSkew      = time.Minute
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultPurgeInterval    = time.Minute

	// CSRFHeader is the header every state-changing request must carry,
	// with the value "1" (see the package doc, "CSRF").
	CSRFHeader = "X-Latch-CSRF"
)

// DefaultScopes are requested when Config.Scopes is empty. openid is
// always requested: the BFF needs the ID token to know who logged in.
var DefaultScopes = []string{"openid", "profile"}

// Config configures a BFF. Issuer, ClientID, ClientSecret, RedirectURL,
// Upstream, Store and Key are required; every field that weakens a check is
// named for it.
type Config struct {
	// Issuer is the authorization server's issuer URL, exactly as its
	// metadata names it; its endpoints are discovered at New.
	Issuer string
	// ClientID and ClientSecret authenticate the BFF at the token and
	// revocation endpoints (client_secret_basic): it is a confidential
	// client, registered for the authorization_code and refresh_token
	// grants with RedirectURL as its redirect URI.
	ClientID     string
	ClientSecret string
	// RedirectURL is the BFF's callback, https://APP/bff/callback, exactly
	// as registered. Its origin is the BFF's own origin, which the CSRF
	// check compares Origin with, and its scheme decides whether cookies
	// can be Secure: https, or http on a loopback host (browsers treat
	// those as secure) with InsecureAllowHTTP.
	RedirectURL string
	// PostLogoutRedirectURL, when set, is passed to the issuer's
	// end_session_endpoint in the end_session_url that /bff/logout
	// returns.
	PostLogoutRedirectURL string

	// Upstream is the API that /api/* is forwarded to, with the prefix
	// stripped and the user's access token attached.
	Upstream *url.URL
	// APIPrefix is the path prefix that is proxied. Default "/api".
	APIPrefix string
	// Transport carries requests to Upstream. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// SPA, when set, serves every path that is neither /bff/* nor the API:
	// the single-page app's files (StaticFiles) or a dev server
	// (httputil.ReverseProxy). nil answers 404 there.
	SPA http.Handler

	// Scopes are requested at login. Default DefaultScopes; openid is
	// added when missing.
	Scopes []string
	// Audience, when set, is the resource indicator (RFC 8707) of the
	// access tokens: the upstream API's identifier. "" takes the client's
	// default audience.
	Audience string

	// CookieName names the session cookie; it must start with __Host-
	// (Secure, Path=/, no Domain: no subdomain can set or read it).
	// Default "__Host-latch_bff". The pre-login cookies are CookieName +
	// "_login_" + an identifier of the login.
	CookieName string
	// SessionIdle ends a session that made no request for this long.
	// Default 1h. SessionMaxAge ends every session this long after login,
	// whatever its activity. Default 12h.
	SessionIdle   time.Duration
	SessionMaxAge time.Duration
	// LoginTimeout is how long a login may take between /bff/login and
	// /bff/callback. Default 10m.
	LoginTimeout time.Duration
	// RefreshSkew: an access token that expires within it is refreshed
	// before a request is forwarded, so the upstream never receives one
	// that expires in flight. Default 1m.
	RefreshSkew time.Duration

	// Store keeps sessions: sqlite.OpenBFF or redis.OpenBFF.
	Store Store
	// Key is the 32-byte AES-256 key that seals every record before it
	// reaches Store. Losing or changing it logs every user out.
	Key []byte

	// IsRevoked is the (iss, jti) denylist of the issuer's revocation
	// feed: wire the IsRevoked of verify.FollowRevocations. A session
	// whose current access token is denylisted is refreshed before its
	// request is forwarded, which fails (401 session_revoked) when its
	// refresh family was revoked: that is how "log out everywhere" at the
	// server reaches the BFF. nil: a revoked session keeps working until
	// its access token expires and the refresh is refused.
	IsRevoked func(ctx context.Context, iss, jti string) bool
	// Ready, when set, is asked before each API request; false answers
	// 503 temporarily_unavailable. Wire the feed's Denylist.Healthy, so a
	// BFF that can no longer learn of revocations does not forward.
	Ready func() bool

	// HTTPClient talks to the issuer. Default: a client with Timeout that
	// follows no redirect.
	HTTPClient *http.Client
	// Timeout bounds each call to the issuer. Default 10s.
	Timeout time.Duration
	// MaxResponseBytes bounds each answer of the issuer. Default 1 MiB.
	MaxResponseBytes int64
	// InsecureAllowHTTP allows an http issuer, upstream and RedirectURL
	// (the latter on a loopback host only). For local development: the
	// client secret and tokens then cross the network in the clear.
	InsecureAllowHTTP bool

	// PurgeInterval is how often Run deletes expired records. Default 1m.
	PurgeInterval time.Duration
	// Logger receives errors and security events (refused CSRF, revoked
	// sessions); never a token, cookie value or the secret. Default:
	// discarded.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand is the source of cookie values, state, nonce and PKCE
	// verifiers. Default crypto/rand.Reader.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	if c.APIPrefix == "" {
		c.APIPrefix = DefaultAPIPrefix
	}
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = DefaultSessionIdle
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = DefaultSessionMaxAge
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = DefaultLoginTimeout
	}
	if c.RefreshSkew == 0 {
		c.RefreshSkew = DefaultRefreshSkew
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
			// The endpoints are where the issuer's metadata says; a
			// redirect could carry the secret or a token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Validate reports the first problem of c, in words that say what to set.
// New calls it after filling in the defaults.
func (c Config) Validate() error {
	if err := checkURL("Issuer", c.Issuer, c.InsecureAllowHTTP); err != nil {
		return err
	}
	if u, _ := url.Parse(c.Issuer); u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("bff: Issuer %q must not have a query (RFC 8414 §2)", c.Issuer)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("bff: ClientID and ClientSecret are required: the BFF is a confidential client; register it with `latch client create --grant authorization_code,refresh_token --redirect-uri https://APP/bff/callback`")
	}
	if err := checkURL("RedirectURL", c.RedirectURL, c.InsecureAllowHTTP); err != nil {
		return err
	}
	ru, _ := url.Parse(c.RedirectURL)
	if ru.RawQuery != "" {
		return fmt.Errorf("bff: RedirectURL %q must not have a query", c.RedirectURL)
	}
	if ru.Scheme == "http" && !isLoopback(ru.Hostname()) {
		return fmt.Errorf("bff: RedirectURL %q is http on a host that is not loopback: browsers refuse the Secure __Host- cookie there; use https", c.RedirectURL)
	}
	if ru.Path != "/bff/callback" {
		return fmt.Errorf("bff: RedirectURL %q must have the path /bff/callback, where the BFF answers", c.RedirectURL)
	}
	if c.PostLogoutRedirectURL != "" {
		if err := checkURL("PostLogoutRedirectURL", c.PostLogoutRedirectURL, c.InsecureAllowHTTP); err != nil {
			return err
		}
	}
	if c.Upstream == nil {
		return errors.New("bff: Upstream is required: the URL of the API that /api/* is forwarded to")
	}
	if u := c.Upstream; (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("bff: Upstream %q must be an http or https URL without user info, query or fragment", u.Redacted())
	}
	if c.Upstream.Scheme == "http" && !c.InsecureAllowHTTP && !isLoopback(c.Upstream.Hostname()) {
		return fmt.Errorf("bff: Upstream %q is http: access tokens would cross the network in the clear; use https (or InsecureAllowHTTP)", c.Upstream.Redacted())
	}
	if !strings.HasPrefix(c.APIPrefix, "/") || strings.HasSuffix(c.APIPrefix, "/") || c.APIPrefix == "/bff" || strings.HasPrefix(c.APIPrefix, "/bff/") || strings.ContainsAny(c.APIPrefix, "{}?#% ") {
		return fmt.Errorf("bff: APIPrefix %q must be a path like /api: starting with /, not ending with /, outside /bff", c.APIPrefix)
	}
	if !strings.HasPrefix(c.CookieName, "__Host-") || !isToken(c.CookieName) {
		return fmt.Errorf("bff: CookieName %q must start with __Host- and hold only cookie-name characters: the prefix makes browsers require Secure, Path=/ and no Domain", c.CookieName)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") || !isPrintable(s) {
			return fmt.Errorf("bff: scope %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	if c.SessionIdle < time.Minute || c.SessionMaxAge < c.SessionIdle {
		return fmt.Errorf("bff: SessionIdle %v and SessionMaxAge %v: need 1m <= SessionIdle <= SessionMaxAge", c.SessionIdle, c.SessionMaxAge)
	}
	if c.LoginTimeout < time.Minute || c.LoginTimeout > time.Hour {
		return fmt.Errorf("bff: LoginTimeout %v must be between 1m and 1h", c.LoginTimeout)
	}
	if c.RefreshSkew < 0 || c.RefreshSkew > 5*time.Minute {
		return fmt.Errorf("bff: RefreshSkew %v must be between 0 and 5m", c.RefreshSkew)
	}
	if c.Store == nil {
		return errors.New("bff: Store is required: sqlite.OpenBFF(path) or redis.OpenBFF(url)")
	}
	if len(c.Key) != KeySize {
		return fmt.Errorf("bff: Key must be %d bytes (AES-256) to seal tokens at rest, got %d", KeySize, len(c.Key))
	}
	if c.Timeout < 0 || c.MaxResponseBytes < 0 || c.PurgeInterval < 0 {
		return errors.New("bff: Timeout, MaxResponseBytes and PurgeInterval must not be negative")
	}
	return nil
}

// checkURL asks for an absolute https URL (http with allowHTTP) without
// user info or fragment.
func checkURL(what, raw string, allowHTTP bool) error {
	if raw == "" {
		return fmt.Errorf("bff: %s is required", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bff: %s %q: %v", what, raw, err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("bff: %s %q must be an absolute URL without user info or fragment", what, raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP:
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("bff: %s %q is http; use https (or InsecureAllowHTTP for local development)", what, raw)
	}
	return fmt.Errorf("bff: %s %q: scheme must be https", what, raw)
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback()
	}
	return false
}

// isToken reports whether s is an RFC 9110 token (a cookie name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
