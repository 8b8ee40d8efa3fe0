package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/token"
)

// IntrospectorConfig configures an Introspector.
type IntrospectorConfig struct {
	// Issuer is the issuer the answers' iss must equal exactly; when
	// Endpoint is empty, its metadata gives the introspection_endpoint.
	Issuer string
	// Endpoint is the introspection endpoint; "" discovers it.
	Endpoint string
	// OpaqueTokenKeysEndpoint is where the keys that tag latch's opaque
	// tokens are fetched (TagKeys), so that forged tokens are refused
	// without introspecting them. "" takes it from the metadata when
	// Endpoint is discovered; an issuer that names none tags nothing, and
	// every opaque token is introspected.
	OpaqueTokenKeysEndpoint string
	// ClientID and ClientSecret authenticate this resource server to the
	// endpoint (RFC 7662 §2.1), with client_secret_basic.
	ClientID     string
	ClientSecret string
	// Audience must be one of the answer's aud values. Required unless
	// SkipAudienceCheck, which accepts tokens issued for any audience.
	Audience          string
	SkipAudienceCheck bool
	// Leeway is the clock skew tolerated on exp and nbf. Default 30s.
	Leeway time.Duration

	// CacheTTL is how long an active answer is reused; never past the
	// token's exp. 0 disables the cache: every request is introspected,
	// and a revoked token is refused at once. Caching trades that delay
	// (at most CacheTTL, or until Drop) for latency and load.
	CacheTTL time.Duration
	// NegativeTTL is how long an inactive answer is reused, so a replayed
	// bad token does not cost a round trip each time. 0 disables.
	NegativeTTL time.Duration
	// UntaggedRate bounds, per second (burst twice that), the
	// introspections of latch opaque tokens whose tag this Introspector
	// cannot check (untagged, or under a key it does not hold yet), when
	// the issuer tags tokens: anyone can forge those, so a flood of them
	// must not spend what tagged tokens need. Over it, Introspect answers
	// ErrUnavailable (503). Default DefaultUntaggedRate.
	UntaggedRate float64
	// MaxEntries bounds the cache. Default 10,000.
	MaxEntries int

	// IsRevoked is the (iss, jti) denylist, consulted on every request,
	// cache hits included, as in Config.
	IsRevoked func(ctx context.Context, iss, jti string) bool

	// HTTPClient, Timeout, MaxResponseBytes and InsecureAllowHTTP are as
	// in Config.
	HTTPClient        *http.Client
	Timeout           time.Duration
	MaxResponseBytes  int64
	InsecureAllowHTTP bool

	// Realm and CookieName are as in Config, for Middleware.
	Realm      string
	CookieName string
	// DPoP and ExternalURL are as in Config, for Middleware: an opaque
	// token whose introspection answer carries cnf.jkt is DPoP-bound.
	DPoP        *dpop.Checker
	ExternalURL string

	Logger *slog.Logger
	Now    func() time.Time
}

func (c IntrospectorConfig) withDefaults() IntrospectorConfig {
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultCacheEntries
	}
	if c.UntaggedRate == 0 {
		c.UntaggedRate = DefaultUntaggedRate
	}
	fetchDefaults(&c.HTTPClient, &c.Timeout, &c.MaxResponseBytes)
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem of c.
func (c IntrospectorConfig) Validate() error {
	if err := checkIssuer(c.Issuer, c.InsecureAllowHTTP); err != nil {
		return err
	}
	if _, err := checkExternalURL("IntrospectorConfig.ExternalURL", c.ExternalURL); err != nil {
		return err
	}
	if c.Endpoint != "" {
		if err := checkEndpoint("IntrospectorConfig.Endpoint", c.Endpoint, c.InsecureAllowHTTP); err != nil {
			return err
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("verify: IntrospectorConfig.ClientID and ClientSecret are required (RFC 7662 §2.1)")
	}
	if c.Audience == "" && !c.SkipAudienceCheck {
		return errors.New("verify: IntrospectorConfig.Audience is required; set it to this API's identifier (or SkipAudienceCheck)")
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		return fmt.Errorf("verify: IntrospectorConfig.Leeway %v is outside [0, %v]", c.Leeway, maxLeeway)
	}
	if c.CacheTTL < 0 || c.NegativeTTL < 0 {
		return errors.New("verify: IntrospectorConfig.CacheTTL and NegativeTTL must not be negative")
	}
	if c.MaxEntries < 0 {
		return errors.New("verify: IntrospectorConfig.MaxEntries is negative")
	}
	if c.UntaggedRate < 0 {
		return errors.New("verify: IntrospectorConfig.UntaggedRate is negative")
	}
	if err := checkFetch(c.Timeout, c.MaxResponseBytes); err != nil {
		return err
	}
	if err := checkCookieName(c.CookieName); err != nil {
		return err
	}
	return checkRealm(c.Realm)
}

// Introspector checks opaque access tokens with the issuer's RFC 7662
// endpoint and caches the answers. The whole answer is cached under
// SHA-256 of the token, and scope and audience are read from that token's
// own answer on every request: a cache keyed or checked otherwise lets one
// token's scope pass for another's (ory/oathkeeper#743, CVE-2021-32701).
type Introspector struct {
	cfg      IntrospectorConfig
	endpoint string
	fetch    *fetcher
	cache    *cache[introAnswer] // nil when both TTLs are 0
	tagKeys  *TagKeys            // nil when the issuer tags nothing
	untagged *rate.Limiter       // with tagKeys

	mu       sync.Mutex
	inflight map[[32]byte]*introCall
}

// introAnswer is a cached answer: claims, or the error that refused them.
type introAnswer struct {
	claims *Claims
	err    error
}

type introCall struct {
	done chan struct{}
	ans  introAnswer
	err  error // not cached: the endpoint failed
}

// NewIntrospector returns an Introspector, discovering the endpoint from
// the issuer's metadata when IntrospectorConfig.Endpoint is empty.
func NewIntrospector(ctx context.Context, cfg IntrospectorConfig) (*Introspector, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &fetcher{client: cfg.HTTPClient, timeout: cfg.Timeout, maxBytes: cfg.MaxResponseBytes, allowHTTP: cfg.InsecureAllowHTTP}
	endpoint, keysEndpoint := cfg.Endpoint, cfg.OpaqueTokenKeysEndpoint
	if endpoint == "" {
		md, err := f.discover(ctx, cfg.Issuer)
		if err != nil {
			return nil, err
		}
		if err := checkEndpoint("introspection_endpoint", md.IntrospectionEndpoint, cfg.InsecureAllowHTTP); err != nil {
			return nil, err
		}
		endpoint = md.IntrospectionEndpoint
		if keysEndpoint == "" {
			keysEndpoint = md.OpaqueTokenKeysEndpoint
		}
	}
	in := &Introspector{cfg: cfg, endpoint: endpoint, fetch: f, inflight: map[[32]byte]*introCall{}}
	if keysEndpoint != "" {
		tk, err := NewTagKeys(ctx, TagKeysConfig{Endpoint: keysEndpoint, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			HTTPClient: cfg.HTTPClient, Timeout: cfg.Timeout, MaxResponseBytes: cfg.MaxResponseBytes,
			InsecureAllowHTTP: cfg.InsecureAllowHTTP, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		in.tagKeys = tk
		in.untagged = rate.NewLimiter(rate.Limit(cfg.UntaggedRate), max(1, int(2*cfg.UntaggedRate)))
	}
	if cfg.CacheTTL > 0 || cfg.NegativeTTL > 0 {
		in.cache = newCache[introAnswer](cfg.MaxEntries)
	}
	return in, nil
}

// Introspect checks raw with the introspection endpoint (RFC 7662 §2), or
// the cache, and returns its claims. Errors wrap ErrInactive, ErrRevoked,
// token's sentinels (ErrIssuer, ErrAudience, ErrExpired, ErrMalformed,
// ErrType), or ErrUnavailable when the endpoint could not answer.
// Concurrent calls for one uncached token share one request.
func (in *Introspector) Introspect(ctx context.Context, raw string) (*Claims, error) {
	// A latch token with a bad checksum, or a bad tag under a key we
	// hold, is refused without a round trip: anyone can compute a
	// checksum, only the issuer's key holders a tag.
	var admit func() bool
	if token.IsOpaque(raw) {
		var kind latch.TokenKind
		var err error
		if in.tagKeys != nil {
			var tag token.Tag
			kind, tag, err = in.tagKeys.Check(raw)
			if tag != token.TagValid {
				admit = in.untagged.Allow
			}
		} else {
			kind, err = token.ParseOpaque(raw)
		}
		if err != nil {
			return nil, err
		}
		if kind != latch.KindAccess {
			return nil, fmt.Errorf("verify: a refresh token is not an access token: %w", token.ErrType)
		}
	} else if len(raw) > token.MaxJWTSize || raw == "" {
		return nil, fmt.Errorf("verify: token of %d bytes: %w", len(raw), token.ErrMalformed)
	}
	key := sha256.Sum256([]byte(raw))
	if in.cache != nil {
		if a, ok := in.cache.Get(&key, in.cfg.Now()); ok {
			return in.answer(ctx, a)
		}
	}
	a, err := in.shared(ctx, &key, raw, admit)
	if err != nil {
		return nil, err
	}
	return in.answer(ctx, a)
}

// errOverBudget: an untagged token would need an introspection that
// IntrospectorConfig.UntaggedRate has no room for.
var errOverBudget = fmt.Errorf("verify: introspection of a token without a checkable tag: over UntaggedRate: %w", ErrUnavailable)

func (in *Introspector) answer(ctx context.Context, a introAnswer) (*Claims, error) {
	if a.err != nil {
		return nil, a.err
	}
	if in.cfg.IsRevoked != nil && in.cfg.IsRevoked(ctx, a.claims.Issuer, a.claims.ID) {
		return nil, fmt.Errorf("verify: jti %q of %s: %w", a.claims.ID, a.claims.Issuer, ErrRevoked)
	}
	return a.claims, nil
}

// shared runs one introspection per token at a time. admit, when set, is
// asked before a new one starts (not when joining one in flight).
func (in *Introspector) shared(ctx context.Context, key *[32]byte, raw string, admit func() bool) (introAnswer, error) {
	in.mu.Lock()
	c, ok := in.inflight[*key]
	if !ok && admit != nil && !admit() {
		in.mu.Unlock()
		return introAnswer{}, errOverBudget
	}
	if !ok {
		c = &introCall{done: make(chan struct{})}
		in.inflight[*key] = c
		in.mu.Unlock()
		go func() {
			var gen uint64
			if in.cache != nil {
				gen = in.cache.Generation()
			}
			c.ans, c.err = in.introspect(raw)
			if c.err == nil && in.cache != nil {
				now := in.cfg.Now()
				if c.ans.err == nil {
					until := now.Add(in.cfg.CacheTTL)
					if exp := time.Unix(c.ans.claims.ExpiresAt, 0); exp.Before(until) {
						until = exp
					}
					in.cache.Put(key, c.ans, until, now, gen)
				} else {
					in.cache.Put(key, c.ans, now.Add(in.cfg.NegativeTTL), now, gen)
				}
			}
			in.mu.Lock()
			delete(in.inflight, *key)
			in.mu.Unlock()
			close(c.done)
		}()
	} else {
		in.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.ans, c.err
	case <-ctx.Done():
		return introAnswer{}, fmt.Errorf("verify: introspection: %w: %w", ErrUnavailable, ctx.Err())
	}
}

// introspectionResponse is RFC 7662 §2.2's answer, as far as it is read.
type introspectionResponse struct {
	Active    bool           `json:"active"`
	Scope     string         `json:"scope"`
	ClientID  string         `json:"client_id"`
	TokenType string         `json:"token_type"`
	Exp       int64          `json:"exp"`
	Iat       int64          `json:"iat"`
	Nbf       int64          `json:"nbf"`
	Sub       string         `json:"sub"`
	Aud       token.Audience `json:"aud"`
	Iss       string         `json:"iss"`
	Jti       string         `json:"jti"`
	// Cnf is the confirmation of a bound token (RFC 9449 §6.2, RFC 7800
	// §3.1), kept as it came: Claims.BoundKey judges it.
	Cnf json.RawMessage `json:"cnf"`
}

// introspect asks the endpoint. A definite answer (active or not, accepted
// or refused) is an introAnswer, cacheable; an endpoint that fails is an
// error wrapping ErrUnavailable, never cached.
func (in *Introspector) introspect(raw string) (introAnswer, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return introAnswer{}, fmt.Errorf("verify: introspection: %w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts first.
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	_, body, err := in.fetch.do(req)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			in.cfg.Logger.Error("verify: the introspection endpoint refuses our client credentials", "endpoint", in.endpoint, "status", se.code)
		}
		return introAnswer{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var r introspectionResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return introAnswer{}, fmt.Errorf("verify: introspection answer is not RFC 7662 JSON: %w: %v", ErrUnavailable, err)
	}
	return in.judge(&r), nil
}

// judge applies this resource server's checks to an answer.
func (in *Introspector) judge(r *introspectionResponse) introAnswer {
	refuse := func(format string, args ...any) introAnswer {
		return introAnswer{err: fmt.Errorf(format, args...)}
	}
	if !r.Active {
		return refuse("verify: introspection: %w", ErrInactive)
	}
	// RFC 7662 §2.2 makes iss optional; latch always sends it, and a token
	// of another issuer must not pass because that issuer's answer was
	// forwarded or mixed up.
	if r.Iss != in.cfg.Issuer {
		return refuse("verify: introspection: iss %q, want %q: %w", r.Iss, in.cfg.Issuer, token.ErrIssuer)
	}
	if !in.cfg.SkipAudienceCheck && !r.Aud.Contains(in.cfg.Audience) {
		return refuse("verify: introspection: aud %q lacks %q: %w", []string(r.Aud), in.cfg.Audience, token.ErrAudience)
	}
	// token_type is the RFC 6749 §7.1 type: Bearer, or DPoP for a bound
	// token (RFC 9449 §5).
	if r.TokenType != "" && !strings.EqualFold(r.TokenType, "Bearer") && !strings.EqualFold(r.TokenType, dpop.Scheme) {
		return refuse("verify: introspection: token_type %q: %w", r.TokenType, token.ErrType)
	}
	now := in.cfg.Now().Unix()
	leeway := int64(in.cfg.Leeway / time.Second)
	if r.Exp == 0 {
		return refuse("verify: introspection: no exp: %w", ErrMissingClaim)
	}
	if now-leeway >= r.Exp {
		return refuse("verify: introspection: exp %d is past: %w", r.Exp, token.ErrExpired)
	}
	if r.Nbf != 0 && now+leeway < r.Nbf {
		return refuse("verify: introspection: nbf %d is ahead: %w", r.Nbf, token.ErrNotYetValid)
	}
	c := &Claims{Claims: token.Claims{
		Issuer: r.Iss, Subject: r.Sub, Audience: r.Aud, ExpiresAt: r.Exp, IssuedAt: r.Iat,
		NotBefore: r.Nbf, ID: r.Jti, ClientID: r.ClientID, Scope: r.Scope,
	}}
	if len(r.Cnf) > 0 && string(r.Cnf) != "null" {
		var cnf any
		if err := json.Unmarshal(r.Cnf, &cnf); err != nil {
			return refuse("verify: introspection: cnf: %w", ErrConfirmation)
		}
		c.Extra = map[string]any{ClaimConfirmation: cnf}
		if _, err := c.BoundKey(); err != nil {
			return refuse("verify: introspection: %w", err)
		}
	}
	if err := requireClaims(&c.Claims); err != nil {
		return introAnswer{err: err}
	}
	return introAnswer{claims: c}
}

// Drop forgets the cached answer for the token whose SHA-256 is tokenHash
// (token.Hash), so the next request asks the endpoint again. It is the hook
// for the revocation feed's opaque entries (latch.Revocation.TokenHash); an
// introspection running while Drop is called is not cached.
func (in *Introspector) Drop(tokenHash []byte) {
	if in.cache == nil || len(tokenHash) != sha256.Size {
		return
	}
	in.cache.Drop((*[32]byte)(tokenHash))
}

// Flush forgets every cached answer, e.g. when the revocation feed lost its
// place and cannot say what it missed.
func (in *Introspector) Flush() {
	if in.cache != nil {
		in.cache.Flush()
	}
}

// Middleware returns next behind bearer-token authentication by
// introspection, with IntrospectorConfig.Realm and CookieName; JWTs are
// refused. See Authenticator.Middleware.
func (in *Introspector) Middleware(next http.Handler) http.Handler {
	a := &Authenticator{Introspector: in, Realm: in.cfg.Realm, CookieName: in.cfg.CookieName}
	return a.Middleware(next)
}
