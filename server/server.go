// Package server is latch's authorization server: the HTTP handlers of the
// OAuth endpoints, discovery, JWKS, health, metrics and the admin API, and
// the background work (purging, key reloads) that keeps them correct. It
// wires package oauth (the wire), token (formats), keys (signing keys) and a
// latch.Store; it does not open stores or parse flags (cmd/latch does).
package server

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
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/loginsession"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/revfeed"
	"github.com/latch-auth/latch/throttle"
	"github.com/latch-auth/latch/token"
)

// Config configures a Server. Zero values take the defaults in withDefaults.
type Config struct {
	// Issuer is the iss of every token and the base of every endpoint URL
	// in the metadata (RFC 8414 §2). Required; https unless
	// InsecureAllowHTTP.
	Issuer string
	// InsecureAllowHTTP permits an http issuer (dev on loopback).
	InsecureAllowHTTP bool

	Store latch.Store
	Keys  *keys.Manager

	// AccessTokenTTL is the lifetime of access tokens for clients that do
	// not set their own. Default 10 minutes.
	AccessTokenTTL time.Duration
	// MaxAccessTokenTTL caps any client's access-token lifetime; the keys
	// package keeps a retired key published this long. Default 24h.
	MaxAccessTokenTTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s.
	Leeway time.Duration

	// RefreshTokenTTL is the idle lifetime of refresh tokens for clients
	// that do not set their own: a refresh token unused this long
	// expires. Default 14 days. RefreshFamilyMaxAge is the absolute
	// lifetime of a grant: no rotation extends it. Default 30 days.
	RefreshTokenTTL     time.Duration
	RefreshFamilyMaxAge time.Duration
	// RefreshGrace is how long after its rotation a refresh token may be
	// used again without being taken for stolen (see refreshTokenGrant).
	// Default 10s; negative means none (every second use revokes).
	RefreshGrace time.Duration
	// AuthCodeTTL is the lifetime of authorization codes. Default 60s
	// (RFC 6749 §4.1.2 recommends at most 10 minutes).
	AuthCodeTTL time.Duration
	// IDTokenTTL is the lifetime of ID tokens. Default 10 minutes.
	IDTokenTTL time.Duration

	// IntrospectionRate and IntrospectionBurst bound each client's
	// introspection calls (security invariant 5). Default 2000/s, burst 4000:
	// a resource server behind a cache needs far less; an attacker probing
	// tokens gets far less than it would need.
	IntrospectionRate  rate.Limit
	IntrospectionBurst int

	// OpaqueTagKeys tag new opaque access tokens (token.NewTaggedOpaque)
	// with the first key; all of them are handed to confidential clients
	// at GET /oauth2/opaque-token-keys, so that gateways and resource
	// servers refuse forged tokens without asking (docs/gateway.md). Put
	// a new key first to rotate; keep the old one listed until the tokens
	// it tagged have expired (MaxAccessTokenTTL). Empty: one is generated
	// at New, per process, so tokens from before a restart or from another
	// node name a key verifiers do not know, and take their budgeted
	// untagged path; `latch serve` derives it from the KEK instead.
	OpaqueTagKeys []*token.TagKey

	// PasswordParams are the argon2id parameters of password hashes made
	// by the admin API (zero: password.DefaultParams), MinPasswordLen the
	// shortest password it accepts (zero: registry.DefaultMinPasswordLen).
	// See registry.Users.
	PasswordParams password.Params
	MinPasswordLen int
	// PasswordBlocklist, when set, is refused as new passwords through
	// the admin API (breached or common passwords), in addition to the
	// built-in password.Common.
	PasswordBlocklist *password.Blocklist

	// MaxBodyBytes limits request bodies. Default oauth.MaxFormBytes.
	MaxBodyBytes int64

	// SessionIdleTimeout ends a login session after this long without a
	// request (to within a minute: the idle expiry moves at most once a
	// minute); SessionMaxAge ends it this long after login, however active.
	// Defaults 30 minutes and 12 hours (OWASP Session Management Cheat
	// Sheet, "Session Expiration"; security invariant 6).
	SessionIdleTimeout time.Duration
	SessionMaxAge      time.Duration

	// LoginAccountThrottle and LoginIPThrottle are the exponential
	// back-offs of /login per account and per client address (see
	// throttle.Config; zero fields take the defaults: 5 and 20 free failures, 1s
	// doubling to 15 minutes). The state is per process unless
	// SharedLoginThrottle is set.
	LoginAccountThrottle throttle.Config
	LoginIPThrottle      throttle.Config
	// SharedLoginThrottle, when set, keeps the login back-offs where every
	// node sharing the store counts them (package redis), so an attacker
	// spreading guesses over N nodes gets one allowance, not N. It is
	// called once per scope, "account" and "address", with that scope's
	// configuration (defaults applied). A call that fails is answered by this
	// node's memory instead (latch_login_throttle_fallbacks_total), so an
	// outage neither fails logins nor lifts the throttle.
	SharedLoginThrottle func(scope string, t throttle.Config) throttle.Throttle
	// MaxConcurrentLogins bounds the argon2 verifications running at once
	// (default 2×GOMAXPROCS); a login that finds none free within
	// LoginQueueTimeout (default 1s) gets 503 with Retry-After.
	MaxConcurrentLogins int
	LoginQueueTimeout   time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the client address of the per-address login throttle.
	// Empty (the default): the address is the TCP peer's, and behind a
	// proxy every client shares the proxy's allowance.
	TrustedProxies []netip.Prefix

	// ClientCacheTTL is how long a client read from the store is reused.
	// A client changed or deleted by another process (the CLI, another
	// node) takes effect within it; changes through this server's admin API
	// at once. Default 1s; negative disables the cache.
	ClientCacheTTL time.Duration

	// TokenCacheSize is how many opaque access tokens read from the store
	// are kept in memory for introspection and token exchange (see
	// authority.TokenCache). A revocation made through this server takes
	// effect at once; one made by another process (the CLI, another node) within the
	// revocation feed's poll of the log, 100 ms (another node's at once
	// with a Fanout). The cache is used only while Run runs (the feed
	// keeps it in step). The same number of JWTs this server verified are
	// remembered, so that a JWT introspected again is not verified again
	// (authority.Tokens.CacheVerified; its denylist entry is still read
	// every time).
	// Default 100,000 entries each; negative disables both.
	TokenCacheSize int

	// Fanout, when set, tells the other nodes sharing the store at once
	// that this one appended to the revocation log, and this node when
	// they did (package redis: pub/sub), so their revocation feeds need not
	// wait for their next poll of the store. Run starts it.
	Fanout Fanout

	// DPoPAlgorithms are the DPoP proof algorithms accepted (RFC 9449
	// §4.3 step 5), advertised as dpop_signing_alg_values_supported.
	// Default dpop.DefaultAlgorithms.
	DPoPAlgorithms []latch.Algorithm
	// DPoPReplay remembers the jti of the proofs the server accepted, for
	// their lifetime (RFC 9449 §11.1). A cache shared by every node
	// (redis.Client.DPoPReplayCache) refuses a proof replayed to another
	// node; the default, a bounded memory cache, only to this one.
	DPoPReplay dpop.ReplayCache
	// DPoPNonces makes the token, PAR and userinfo endpoints require a
	// server nonce in every proof (RFC 9449 §8), changing every
	// DPoPNoncePeriod (default DefaultDPoPNoncePeriod) and accepted for
	// that period and the next. The nonces are derived from Keys, so every
	// node sharing the keys accepts the others'. Off by default: a nonce
	// costs every client one more round trip per period, and the replay
	// cache and the proof's iat window already bound a proof's use.
	DPoPNonces      bool
	DPoPNoncePeriod time.Duration

	// PARLifetime is how long a pushed authorization request's
	// request_uri can be used (RFC 9126 §2.2 expires_in). It must cover
	// the user's sign-in: the request_uri is used up when a code is issued
	// from it. Default DefaultPARLifetime.
	PARLifetime time.Duration

	// PurgeInterval is how often expired tokens and revocations are deleted.
	// Default 1 minute. KeyReloadInterval is how often keys changed by
	// another process (the CLI, another node) are picked up. Default 10s.
	PurgeInterval     time.Duration
	KeyReloadInterval time.Duration

	// IDTokenAlgorithm is the alg of ID tokens for clients that do not
	// register their own (id_token_signed_response_alg). Empty: the
	// default signing key's. latch serve sets RS256 (--id-token-alg) and
	// keeps an RSA key for it beside the default key (keys.Config).
	IDTokenAlgorithm latch.Algorithm
	// LoginName is what /login and the password grant accept as the
	// user's name. Default LoginUsernameOrEmail.
	LoginName LoginName
	// RefuseUnknownScopes answers invalid_scope to a request naming a
	// scope latch does not know, instead of dropping it from the grant
	// (see grantableScope and docs/scopes.md).
	RefuseUnknownScopes bool

	Logger   *slog.Logger
	Registry *prometheus.Registry // default: a new registry
	Now      func() time.Time
	Rand     io.Reader
}

func (c *Config) withDefaults() {
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.MaxAccessTokenTTL == 0 {
		c.MaxAccessTokenTTL = DefaultMaxAccessTokenTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.RefreshFamilyMaxAge == 0 {
		c.RefreshFamilyMaxAge = DefaultRefreshFamilyMaxAge
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = DefaultRefreshGrace
	} else if c.RefreshGrace < 0 {
		c.RefreshGrace = 0
	}
	if c.AuthCodeTTL == 0 {
		c.AuthCodeTTL = DefaultAuthCodeTTL
	}
	if c.IDTokenTTL == 0 {
		c.IDTokenTTL = DefaultIDTokenTTL
	}
	if c.IntrospectionRate == 0 {
		c.IntrospectionRate = DefaultIntrospectionRate
	}
	if c.IntrospectionBurst == 0 {
		c.IntrospectionBurst = DefaultIntrospectionBurst
	}
	if len(c.OpaqueTagKeys) == 0 {
		if k, err := token.GenerateTagKey(nil); err == nil {
			c.OpaqueTagKeys = []*token.TagKey{k}
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = oauth.MaxFormBytes
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = DefaultSessionMaxAge
	}
	c.LoginAccountThrottle.WithDefaults(throttle.DefaultAccount)
	c.LoginIPThrottle.WithDefaults(throttle.DefaultAddress)
	if c.MaxConcurrentLogins == 0 {
		c.MaxConcurrentLogins = 2 * runtime.GOMAXPROCS(0)
	}
	if c.LoginQueueTimeout == 0 {
		c.LoginQueueTimeout = DefaultLoginQueueTimeout
	}
	if c.ClientCacheTTL == 0 {
		c.ClientCacheTTL = DefaultClientCacheTTL
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.KeyReloadInterval == 0 {
		c.KeyReloadInterval = DefaultKeyReloadInterval
	}
	if len(c.DPoPAlgorithms) == 0 {
		c.DPoPAlgorithms = dpop.DefaultAlgorithms
	}
	if c.DPoPNoncePeriod == 0 {
		c.DPoPNoncePeriod = DefaultDPoPNoncePeriod
	}
	if c.PARLifetime == 0 {
		c.PARLifetime = DefaultPARLifetime
	}
	if c.LoginName == "" {
		c.LoginName = DefaultLoginName
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// Validate checks the configuration once, at start-up.
func (c *Config) Validate() error {
	if c.Issuer == "" {
		return errors.New("server: Issuer is required")
	}
	if err := oauth.CheckIssuerURL(c.Issuer); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if u, _ := url.Parse(c.Issuer); u.Scheme != "https" && !c.InsecureAllowHTTP {
		return fmt.Errorf("server: issuer %q must use https; behind a TLS-terminating proxy you trust, latch serve --insecure-allow-http allows http (and --dev does on loopback)", c.Issuer)
	}
	if c.Store == nil || c.Keys == nil {
		return errors.New("server: Store and Keys are required")
	}
	if c.AccessTokenTTL < 0 || c.MaxAccessTokenTTL < 0 || c.Leeway < 0 {
		return errors.New("server: durations must not be negative")
	}
	if c.AccessTokenTTL > c.MaxAccessTokenTTL {
		return fmt.Errorf("server: AccessTokenTTL %v exceeds MaxAccessTokenTTL %v", c.AccessTokenTTL, c.MaxAccessTokenTTL)
	}
	if c.RefreshTokenTTL < 0 || c.RefreshFamilyMaxAge < 0 || c.AuthCodeTTL < 0 || c.IDTokenTTL < 0 {
		return errors.New("server: refresh, code and ID token lifetimes must not be negative")
	}
	if c.RefreshGrace > time.Minute {
		return fmt.Errorf("server: RefreshGrace %v is longer than a minute: a stolen refresh token would stay usable that long after its rotation", c.RefreshGrace)
	}
	if c.AuthCodeTTL > 10*time.Minute {
		return fmt.Errorf("server: AuthCodeTTL %v exceeds the 10 minutes RFC 6749 §4.1.2 allows", c.AuthCodeTTL)
	}
	if c.IntrospectionRate <= 0 || c.IntrospectionBurst < 1 {
		return fmt.Errorf("server: introspection rate %v/s and burst %d must be positive", c.IntrospectionRate, c.IntrospectionBurst)
	}
	if slices.Contains(c.OpaqueTagKeys, nil) {
		return errors.New("server: OpaqueTagKeys holds a nil key; make each with token.NewTagKey")
	}
	if c.PurgeInterval <= 0 || c.KeyReloadInterval <= 0 {
		return fmt.Errorf("server: PurgeInterval %v and KeyReloadInterval %v must be positive", c.PurgeInterval, c.KeyReloadInterval)
	}
	if err := (&registry.Users{Params: c.PasswordParams, MinPasswordLen: c.MinPasswordLen}).Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("server: MaxBodyBytes %d is too small to carry a token request", c.MaxBodyBytes)
	}
	if c.SessionIdleTimeout <= 0 || c.SessionMaxAge <= 0 {
		return fmt.Errorf("server: SessionIdleTimeout %v and SessionMaxAge %v must be positive", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	if c.SessionIdleTimeout > c.SessionMaxAge {
		return fmt.Errorf("server: SessionIdleTimeout %v exceeds SessionMaxAge %v", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	if err := c.LoginAccountThrottle.Validate("account"); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := c.LoginIPThrottle.Validate("address"); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := c.validateDPoP(); err != nil {
		return err
	}
	if c.IDTokenAlgorithm != "" && !slices.Contains(latch.Algorithms, c.IDTokenAlgorithm) {
		return fmt.Errorf("server: ID token algorithm %q: use one of %v", c.IDTokenAlgorithm, latch.Algorithms)
	}
	if err := c.LoginName.Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if c.MaxConcurrentLogins < 1 || c.LoginQueueTimeout <= 0 {
		return fmt.Errorf("server: MaxConcurrentLogins %d and LoginQueueTimeout %v must be positive", c.MaxConcurrentLogins, c.LoginQueueTimeout)
	}
	return nil
}

// Server is the authorization server. Create it with New, serve
// Handler(), and run Run in the background for purging and key reloads.
type Server struct {
	cfg     Config
	store   latch.Store
	keys    *keys.Manager
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	metrics *metrics
	mux     *http.ServeMux

	clients *registry.ClientCache
	tokens  *authority.TokenCache // nil when disabled
	// webOrigins answers CORS preflights (cors.go).
	webOrigins webOriginSet

	limitersMu sync.Mutex
	limiters   map[string]*rate.Limiter

	tok *authority.Tokens // the rules of issuance, introspection and revocation

	dpop       *dpop.Checker // DPoP proofs at the server's own endpoints
	dpopProofs *prometheus.CounterVec
	idSigners  idTokenSigners

	sessions *loginsession.Sessions // login sessions; their cookie is session.go's

	feed *revfeed.Feed // GET /oauth2/revocations; its broadcaster runs in Run

	publish chan struct{} // capacity 1: a revocation to announce through cfg.Fanout

	origin          string         // the issuer's origin, as browsers send it in Origin
	accountThrottle *loginThrottle // login back-off per account
	addrThrottle    *loginThrottle // login back-off per client address
	loginSlots      chan struct{}  // one per argon2 verification allowed at once
	// passwordHook, when set (by tests only), is called before each
	// argon2 verification of a login, with "verify" or "dummy".
	passwordHook func(kind string)
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		store:    cfg.Store,
		keys:     cfg.Keys,
		log:      slog.New(requestIDHandler{cfg.Logger.Handler()}),
		now:      cfg.Now,
		rand:     cfg.Rand,
		metrics:  newMetrics(cfg.Registry),
		limiters: make(map[string]*rate.Limiter),
		publish:  make(chan struct{}, 1),

		origin:     originOf(cfg.Issuer),
		loginSlots: make(chan struct{}, cfg.MaxConcurrentLogins),
	}
	s.accountThrottle = s.newLoginThrottle("account", cfg.LoginAccountThrottle)
	s.addrThrottle = s.newLoginThrottle("address", cfg.LoginIPThrottle)
	s.metrics.throttled(s.accountThrottle.local, s.addrThrottle.local, cfg.Now)
	s.clients = registry.NewClientCache(cfg.Store, cfg.ClientCacheTTL, cfg.Now)
	if cfg.TokenCacheSize > 0 {
		s.tokens = authority.NewTokenCache(cfg.TokenCacheSize, revfeed.PollInterval, cfg.Now)
		s.store = s.tokens.Wrap(cfg.Store)
		s.metrics.tokenCache(s.tokens)
	}
	s.tok = &authority.Tokens{
		Store: s.store, Keys: cfg.Keys, Issuer: cfg.Issuer,
		AccessTokenTTL: cfg.AccessTokenTTL, MaxAccessTokenTTL: cfg.MaxAccessTokenTTL, Leeway: cfg.Leeway,
		RefreshTokenTTL: cfg.RefreshTokenTTL, SuccessorKey: cfg.Keys.DeriveKey(authority.SuccessorKeyPurpose),
		Now: cfg.Now, Rand: cfg.Rand, TagKeys: cfg.OpaqueTagKeys,
		Cache: s.tokens, ClientLookup: s.clients.Client,
		OnRevoke: s.revoked, // the feed, and the other nodes through the fan-out

		RefuseUnknownScopes: cfg.RefuseUnknownScopes, ScopeCacheTTL: max(cfg.ClientCacheTTL, 0),
	}
	if cfg.TokenCacheSize > 0 {
		s.tok.CacheVerified(cfg.TokenCacheSize)
	}
	s.sessions = &loginsession.Sessions{Store: s.store, IdleTimeout: cfg.SessionIdleTimeout, MaxAge: cfg.SessionMaxAge,
		Rand: cfg.Rand, OnRevoke: s.revoked}
	if err := s.newDPoP(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler. When the issuer is https,
// every response carries Strict-Transport-Security (RFC 6797), so that a
// browser that has seen latch once never sends a login form or a session
// cookie over plain http, even to a link or a typed address that says
// http.
func (s *Server) Handler() http.Handler {
	if !strings.HasPrefix(s.cfg.Issuer, "https://") {
		return s.mux
	}
	return hsts(s.mux)
}

// MaxHeaderBytes is the most a request's line and header fields may
// take, in bytes; a larger request is answered 431 Request Header Fields
// Too Large (RFC 6585 §5) before any handler runs.
const MaxHeaderBytes = 16 << 10

// HTTPServerMaxHeaderBytes is the value of http.Server.MaxHeaderBytes
// that enforces MaxHeaderBytes: net/http reads up to 4096 bytes more than
// its MaxHeaderBytes ("bufio slop") before it answers 431, so set as
// MaxHeaderBytes the real limit would be 20 KiB.
const HTTPServerMaxHeaderBytes = MaxHeaderBytes - 4096

// HSTSHeader is the Strict-Transport-Security value latch sends over
// https: one year, OWASP's HTTP Strict Transport Security Cheat Sheet's
// value. No includeSubDomains: the subdomains of the issuer's host are not
// latch's to commit to https.
const HSTSHeader = "max-age=31536000"

func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", HSTSHeader)
		h.ServeHTTP(w, r)
	})
}

// Run purges expired records and reloads keys until ctx ends; it also
// runs the revocation feed's broadcaster and, with a Fanout, its
// publisher and subscriber.
func (s *Server) Run(ctx context.Context) {
	purge := time.NewTicker(s.cfg.PurgeInterval)
	reload := time.NewTicker(s.cfg.KeyReloadInterval)
	defer purge.Stop()
	defer reload.Stop()
	go s.feed.Run(ctx)
	if s.cfg.Fanout != nil {
		go s.runFanout(ctx)
	}
	// A purge of many rows yields to the writers and may take minutes: it
	// runs beside this loop, one at a time, so key reloads keep their pace.
	var purging sync.WaitGroup
	purgeDone := make(chan struct{}, 1)
	purgeDone <- struct{}{}
	defer purging.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-purge.C:
			select {
			case <-purgeDone:
			default:
				continue // the last purge still runs
			}
			purging.Go(func() {
				defer func() { purgeDone <- struct{}{} }()
				n, err := s.store.PurgeExpired(ctx, s.now())
				if err != nil && ctx.Err() == nil {
					s.log.Error("purge expired records", "err", err)
				} else if n > 0 {
					s.log.Info("purged expired records", "rows", n)
				}
			})
		case <-reload.C:
			if err := s.keys.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reload signing keys", "err", err)
			}
		}
	}
}

func (s *Server) routes() {
	m := http.NewServeMux()
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		m.Handle("GET "+p, corsPublic(s.handle("metadata", s.metadata)))
		m.Handle("OPTIONS "+p, corsPublic(s.handle("metadata", allowMethods("GET, OPTIONS"))))
	}
	m.Handle("GET /.well-known/jwks.json", corsPublic(s.handle("jwks", s.jwks)))
	m.Handle("OPTIONS /.well-known/jwks.json", corsPublic(s.handle("jwks", allowMethods("GET, OPTIONS"))))
	m.Handle("/oauth2/token", s.corsClients("POST", s.handle("token", s.token)))
	m.Handle("/oauth2/introspect", s.handle("introspect", s.introspect))
	m.Handle("/oauth2/revoke", s.corsClients("POST", s.handle("revoke", s.revoke)))
	m.Handle("/oauth2/authorize", s.handle("authorize", s.authorize))
	m.Handle(parPath, s.handle("par", s.par))
	m.Handle("/oauth2/logout", s.handle("end_session", s.endSessionEndpoint))
	m.Handle("GET /userinfo", s.corsClients("GET, POST", s.handle("userinfo", s.userinfo)))
	m.Handle("POST /userinfo", s.corsClients("GET, POST", s.handle("userinfo", s.userinfo)))
	m.Handle("OPTIONS /userinfo", s.corsClients("GET, POST", s.handle("userinfo", allowMethods("GET, POST, OPTIONS"))))
	var follower revfeed.Follower // a nil *TokenCache must not become a non-nil interface
	if s.tokens != nil {
		follower = s.tokens
	}
	s.feed = revfeed.New(s.cfg.Issuer, s.store, s.now, s.log, follower)
	m.Handle("GET /oauth2/revocations", s.handle("revocations", s.revocations))
	m.Handle("GET /oauth2/opaque-token-keys", s.handle("opaque_token_keys", s.opaqueTokenKeys))
	m.Handle("GET /healthz", s.handle("healthz", s.healthz))
	m.Handle("GET /readyz", s.handle("readyz", s.readyz))
	m.Handle("GET /metrics", s.metrics.handler())
	s.adminRoutes(m)
	s.loginRoutes(m)
	m.Handle(catchAll, s.handle("not_found", s.notFound))
	s.mux = m
}

// endpoint returns the absolute URL of path under the issuer.
func (s *Server) endpoint(path string) string { return s.cfg.Issuer + path }
