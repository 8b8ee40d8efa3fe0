// Package gateway is latch's phantom-token gateway: a reverse proxy that
// takes opaque access tokens (lt_at_) from outside and forwards requests
// upstream with a short-lived JWT access token instead, so clients hold a
// token that reveals nothing and can be revoked at once, while the API
// behind checks a signature locally with package verify.
//
// It owns: the bearer-token check at the edge (RFC 6750), with the tag of
// opaque tokens checked locally (verify.TagKeys) so that forged ones cost
// no exchange, and the budget of exchanges of tokens it cannot judge
// (Config.UntaggedRate); the exchange of an opaque token for an RFC 9068
// JWT at the issuer's token endpoint (RFC 8693, one exchange at a time per
// token); a bounded cache of the exchanged JWTs keyed by SHA-256 of the
// opaque token; and the rewriting of the forwarded request: the path
// cleaned under the upstream's (internal/proxypath), the inbound
// Authorization replaced, the hop-by-hop headers, any inbound Forwarded /
// X-Forwarded-*, Cookie and client-address headers dropped, and
// X-Forwarded-For, -Host and -Proto set afresh. Its log lines are counted
// per kind and interval (Config.LogInterval), so a flood cannot flood the
// log.
//
// It does not own the subscription to the issuer's revocation feed
// (verify.FollowRevocations; `latch gateway` wires it): Drop and Flush are
// the hooks the feed calls (latch.Revocation.TokenHash of an opaque entry
// is exactly Drop's argument), Config.IsRevoked is its denylist for outside
// JWTs and Config.Ready its health. Without it, a revoked token gets
// through for at most Config.CacheTTL. It does not own TLS termination,
// rate limiting of requests (only of exchanges) or the upstream's
// authorization decisions.
package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/proxypath"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// Gateway is an http.Handler that forwards authenticated requests to the
// upstream. It is safe for concurrent use.
type Gateway struct {
	cfg      Config
	exchange *exchanger
	verifier *verify.Verifier // nil unless AcceptJWT
	proxy    *httputil.ReverseProxy
	tagKeys  *verify.TagKeys // nil when the issuer tags nothing
	untagged *untaggedBudget
	logs     *tallies
	// externalURL is Config.ExternalURL without a trailing slash.
	externalURL string
}

// jwtKey carries the JWT to forward from ServeHTTP to the proxy's Rewrite.
type jwtKey struct{}

// New validates cfg, discovers the token endpoint (and, with AcceptJWT,
// the issuer's keys) and returns the gateway. It fails when the issuer
// cannot be reached, so a misconfiguration shows at start-up.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	endpoint, keysEndpoint := cfg.TokenEndpoint, cfg.OpaqueTokenKeysEndpoint
	if endpoint == "" {
		var discovered string
		var err error
		if endpoint, discovered, err = discoverEndpoints(ctx, &cfg); err != nil {
			return nil, err
		}
		if keysEndpoint == "" {
			keysEndpoint = discovered
		}
	}
	logs := newTallies(cfg.Logger, cfg.LogInterval, cfg.Now)
	g := &Gateway{cfg: cfg, exchange: newExchanger(&cfg, endpoint, logs), logs: logs,
		untagged:    newUntaggedBudget(cfg.UntaggedRate, cfg.UntaggedPerSourceRate),
		externalURL: strings.TrimRight(cfg.ExternalURL, "/")}
	if keysEndpoint != "" {
		tk, err := verify.NewTagKeys(ctx, verify.TagKeysConfig{Endpoint: keysEndpoint, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			HTTPClient: cfg.HTTPClient, Timeout: cfg.Timeout, MaxResponseBytes: cfg.MaxResponseBytes,
			InsecureAllowHTTP: cfg.InsecureAllowHTTP, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("gateway: fetch the opaque-token tag keys with the gateway's client: %w; check ClientID and ClientSecret (--client-id, LATCH_CLIENT_SECRET) of a confidential client", err)
		}
		g.tagKeys = tk
	}
	if cfg.AcceptJWT {
		v, err := verify.New(ctx, verify.Config{
			Issuer: cfg.Issuer, Audience: cfg.Audience, HTTPClient: cfg.HTTPClient, Timeout: cfg.Timeout,
			InsecureAllowHTTP: cfg.InsecureAllowHTTP, Realm: cfg.Realm, Logger: cfg.Logger, Now: cfg.Now,
			IsRevoked: cfg.IsRevoked,
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: AcceptJWT: %w", err)
		}
		g.verifier = v
	}
	upstream := cfg.Upstream
	g.proxy = &httputil.ReverseProxy{
		// With Rewrite (not Director), ReverseProxy removes the hop-by-hop
		// headers and every inbound Forwarded and X-Forwarded-* before
		// calling it: what the upstream reads there is ours.
		Rewrite: func(pr *httputil.ProxyRequest) {
			// ServeHTTP cleaned the path: it cannot leave upstream's.
			pr.SetURL(upstream)
			pr.SetXForwarded()
			h := pr.Out.Header
			for _, name := range clientHeaders {
				delete(h, name)
			}
			jwt, _ := pr.In.Context().Value(jwtKey{}).(string)
			h["Authorization"] = []string{"Bearer " + jwt}
		},
		Transport:  cfg.Transport,
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return // the client went away
			}
			logs.add(slog.LevelWarn, "gateway: upstream unreachable", "upstream", upstream.Redacted(), "method", r.Method, "err", err)
			http.Error(w, "upstream unreachable", http.StatusBadGateway)
		},
	}
	return g, nil
}

// clientHeaders are dropped from forwarded requests, in canonical form.
// Cookie: the outside's cookies are credentials for other services, and
// the upstream is to see only the JWT. The rest name the client's address
// for the CDNs and proxies that set them: from outside they are whatever
// the client wrote, and the upstream reads the address from
// X-Forwarded-For, which the gateway sets.
// Dpop: the proof was for the gateway (its ath is the opaque token's) and
// is spent here.
var clientHeaders = []string{"Cookie", "Dpop", "X-Real-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Fastly-Client-Ip"}

// ServeHTTP checks the request's path and bearer token and forwards the
// request upstream with the JWT that stands for the token, or answers as
// RFC 6750 §3 asks: 400 invalid_request for a malformed request (a path
// that proxypath.Clean refuses included), 401 (with invalid_token when a
// token was sent) for a missing or refused token, 503 when the issuer
// cannot say.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The path first: a request that could climb out of the upstream's
	// base path costs no exchange.
	escaped, decoded, err := proxypath.Clean(r.URL.EscapedPath())
	if err != nil {
		g.challenge(w, http.StatusBadRequest, "invalid_request", "the request path is not accepted")
		return
	}
	raw, proof, isDPoP, err := g.credentials(r)
	var ed errDPoP
	switch {
	case errors.As(err, &ed):
		g.dpopChallenge(w, ed)
		return
	case err != nil:
		g.challenge(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case raw == "":
		g.challenge(w, http.StatusUnauthorized, "", "")
		return
	}
	if g.cfg.Ready != nil && !g.cfg.Ready() {
		// The revocation feed is down: a cached exchange, or an outside
		// JWT, may stand for a token revoked meanwhile.
		unavailable(w, "revocation feed unavailable, retry later")
		return
	}
	var jwt, jkt string
	switch {
	case strings.HasPrefix(raw, token.PrefixAccess):
		jwt, jkt, err = g.exchanged(r, raw)
	case strings.HasPrefix(raw, token.PrefixRefresh):
		err = errRefused("a refresh token is not an access token")
	case g.verifier != nil:
		jwt, jkt, err = g.outsideJWT(r.Context(), raw)
	default:
		err = errRefused("only opaque access tokens are accepted here")
	}
	if err == nil {
		// RFC 9449 §7: on every request, cached exchanges included.
		err = g.checkBinding(r, raw, proof, isDPoP, jkt)
	}
	if err != nil {
		var refused errRefused
		switch {
		case errors.As(err, &ed):
			g.dpopChallenge(w, ed)
			return
		case errors.As(err, &refused):
			g.challenge(w, http.StatusUnauthorized, "invalid_token", string(refused))
			return
		}
		// The issuer (or the replay cache) could not answer: the token
		// may be fine.
		unavailable(w, "token check unavailable, retry later")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), jwtKey{}, jwt))
	r.URL = proxypath.Set(r.URL, escaped, decoded)
	g.proxy.ServeHTTP(w, r)
}

// unavailable answers 503: the token may be fine, but cannot be checked now.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "5")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// bufferPool lends the 32 KiB buffers ReverseProxy copies bodies through,
// which it would otherwise allocate for every request.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// errRefused is a token refused for good; its text is the
// error_description of the 401, so it holds only qtext.
type errRefused string

func (e errRefused) Error() string { return "gateway: " + string(e) }

// exchanged returns the JWT standing for the opaque token raw of r: from
// the cache, or exchanged at the token endpoint.
//
// A mistyped string is refused by its checksum, and a forged one by its
// tag, without a round trip to the issuer. A token whose tag the gateway
// cannot check (untagged, or under a key it does not hold yet) may be
// forged as cheaply as a checksum, so its exchanges spend the separate,
// per-address budget of Config.UntaggedRate, and a flood of them never
// delays a tagged token.
func (g *Gateway) exchanged(r *http.Request, raw string) (jwt, jkt string, err error) {
	var kind latch.TokenKind
	tag := token.Untagged
	if g.tagKeys != nil {
		kind, tag, err = g.tagKeys.Check(raw)
	} else {
		kind, err = token.ParseOpaque(raw)
	}
	if errors.Is(err, token.ErrForgedTag) {
		g.logs.add(slog.LevelWarn, "gateway: refused opaque tokens with a forged tag")
		return "", "", errRefused("the token is malformed")
	}
	if err != nil || kind != latch.KindAccess {
		return "", "", errRefused("the token is malformed")
	}
	key := sha256.Sum256([]byte(raw))
	var admit func() bool
	if tag != token.TagValid {
		admit = func() bool {
			if g.untagged.allow(r) {
				return true
			}
			g.logs.add(slog.LevelWarn, "gateway: untagged opaque tokens over their exchange budget answered 503; raise UntaggedRate if they are legitimate")
			return false
		}
	}
	a, err := g.exchange.get(r.Context(), &key, raw, admit)
	if err != nil {
		return "", "", err
	}
	return a.jwt, a.jkt, nil
}

// outsideJWT verifies a JWT that came from outside (AcceptJWT).
func (g *Gateway) outsideJWT(ctx context.Context, raw string) (jwt, jkt string, err error) {
	c, err := g.verifier.Verify(ctx, raw)
	if err != nil {
		return "", "", errRefused("the token is invalid")
	}
	if jkt, err = c.BoundKey(); err != nil {
		return "", "", errRefused("the token is bound in a way the gateway cannot check")
	}
	// A JWT minted for this gateway by token exchange names it as the
	// actor; it exists for the inside only, and coming back from outside
	// means the upstream leaked it.
	if act, ok := c.Extra["act"].(map[string]any); ok && act["sub"] == g.cfg.ClientID {
		return "", "", errRefused("an internal token is not accepted from outside")
	}
	return raw, jkt, nil
}

// Drop forgets the JWT cached for the opaque token whose SHA-256 is
// tokenHash (token.Hash; latch.Revocation.TokenHash), so the next request
// with it is exchanged afresh, and refused if it was revoked. An exchange
// running while Drop is called is not cached. It is the revocation feed's
// hook.
func (g *Gateway) Drop(tokenHash []byte) {
	if len(tokenHash) == sha256.Size {
		g.exchange.cache.Drop((*[32]byte)(tokenHash))
	}
}

// Flush forgets every cached JWT, e.g. when the revocation feed lost its
// place and cannot say what it missed.
func (g *Gateway) Flush() { g.exchange.cache.Flush() }

// challenge answers with WWW-Authenticate (RFC 6750 §3) and, when there is
// an error code, a JSON body with the same error and description. code and
// desc are constants of this package, never request input.
func (g *Gateway) challenge(w http.ResponseWriter, status int, code, desc string) {
	v := `Bearer realm="` + g.cfg.Realm + `"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
	}
	h := w.Header()
	h.Set("WWW-Authenticate", v)
	h.Set("Cache-Control", "no-store")
	if code == "" {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`+"\n", code, desc)
}
