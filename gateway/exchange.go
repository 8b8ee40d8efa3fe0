package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/oauth"
)

// RFC 8693 identifiers the gateway sends and expects.
const (
	grantTokenExchange   = latch.GrantTokenExchange
	tokenTypeAccessToken = oauth.TokenTypeAccessToken
	tokenTypeJWT         = oauth.TokenTypeJWT
)

// errUnavailable: the issuer did not give a definite answer; not cached.
var errUnavailable = errors.New("gateway: token exchange unavailable")

// exchanger turns opaque tokens into JWTs at the token endpoint, one
// exchange at a time per token, and caches the answers.
type exchanger struct {
	cfg      *Config
	endpoint string
	cache    *cache
	logs     *tallies

	mu       sync.Mutex
	inflight map[[32]byte]*call
}

// answer is a definite answer of the token endpoint: a JWT and when it
// expires, or the refusal of an inactive token.
type answer struct {
	jwt     string
	jkt     string // the JWT's cnf.jkt: the token is bound to this DPoP key
	exp     time.Time
	refusal errRefused // set when the token is refused
}

type call struct {
	done chan struct{}
	ans  answer
	err  error
}

func newExchanger(cfg *Config, endpoint string, logs *tallies) *exchanger {
	e := &exchanger{cfg: cfg, endpoint: endpoint, logs: logs, inflight: map[[32]byte]*call{}}
	max := cfg.CacheEntries
	if cfg.DisableCache {
		max = 0
	}
	e.cache = newCache(max)
	return e
}

// errOverBudget: an untagged token would need an exchange the budget
// of Config.UntaggedRate has no room for; 503, not cached.
var errOverBudget = fmt.Errorf("%w: over the budget of untagged exchanges", errUnavailable)

// get returns the JWT for raw (whose SHA-256 is key), or an errRefused, or
// an error wrapping errUnavailable. admit, when set, is asked before a new
// exchange starts (not for a cache hit or one joining an exchange in
// flight); false answers errOverBudget.
func (e *exchanger) get(ctx context.Context, key *[32]byte, raw string, admit func() bool) (answer, error) {
	if a, ok := e.cache.Get(key, e.cfg.Now()); ok {
		return a.result()
	}
	e.mu.Lock()
	c, ok := e.inflight[*key]
	if !ok {
		// Look again under the lock: an exchange for this token may have
		// finished between the first look and here. run caches its answer
		// before it leaves inflight, so a miss now means no answer yet.
		if a, ok := e.cache.Get(key, e.cfg.Now()); ok {
			e.mu.Unlock()
			return a.result()
		}
		if admit != nil && !admit() {
			e.mu.Unlock()
			return answer{}, errOverBudget
		}
		c = &call{done: make(chan struct{})}
		e.inflight[*key] = c
		e.mu.Unlock()
		// The exchange runs on its own, not on the first caller's context:
		// one impatient client must not fail the others waiting for it.
		go e.run(c, key, raw)
	} else {
		e.mu.Unlock()
	}
	select {
	case <-c.done:
		if c.err != nil {
			return answer{}, c.err
		}
		return c.ans.result()
	case <-ctx.Done():
		return answer{}, fmt.Errorf("%w: %w", errUnavailable, ctx.Err())
	}
}

func (a answer) result() (answer, error) {
	if a.refusal != "" {
		return answer{}, a.refusal
	}
	return a, nil
}

func (e *exchanger) run(c *call, key *[32]byte, raw string) {
	gen := e.cache.Generation()
	c.ans, c.err = e.exchange(raw)
	if c.err == nil {
		now := e.cfg.Now()
		if c.ans.refusal == "" {
			// The earlier of CacheTTL and the JWT's exp minus the margin:
			// the upstream never gets a JWT about to expire.
			until := now.Add(e.cfg.CacheTTL)
			if last := c.ans.exp.Add(-e.cfg.ExpiryMargin); last.Before(until) {
				until = last
			}
			e.cache.Put(key, c.ans, until, now, gen)
		} else if e.cfg.NegativeTTL > 0 {
			e.cache.Put(key, c.ans, now.Add(e.cfg.NegativeTTL), now, gen)
		}
	}
	e.mu.Lock()
	delete(e.inflight, *key)
	e.mu.Unlock()
	close(c.done)
}

// tokenResponse is RFC 6749 §5.1 with RFC 8693 §2.2.1's issued_token_type,
// or the error of RFC 6749 §5.2.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Error           string `json:"error"`
}

// exchange asks the token endpoint for a JWT standing for raw (RFC 8693
// §2.1). invalid_grant (the token is not active) and invalid_target (it is
// not for an audience of this gateway) are definite refusals; anything else
// is the issuer or this gateway's registration failing, logged, and an
// error wrapping errUnavailable.
func (e *exchanger) exchange(raw string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {raw},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeJWT},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts first.
	req.SetBasicAuth(url.QueryEscape(e.cfg.ClientID), url.QueryEscape(e.cfg.ClientSecret))
	start := e.cfg.Now()
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		e.logs.add(slog.LevelError, "gateway: token endpoint unreachable", "endpoint", e.endpoint, "err", err)
		return answer{}, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, e.cfg.MaxResponseBytes+1))
	if err != nil || int64(len(body)) > e.cfg.MaxResponseBytes {
		e.logs.add(slog.LevelError, "gateway: token endpoint answer unreadable or too large", "endpoint", e.endpoint, "status", resp.StatusCode, "err", err)
		return answer{}, fmt.Errorf("%w: token endpoint answer unreadable", errUnavailable)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil:
		if tr.AccessToken == "" || tr.IssuedTokenType != tokenTypeJWT || !(strings.EqualFold(tr.TokenType, "Bearer") || strings.EqualFold(tr.TokenType, dpop.Scheme)) || tr.ExpiresIn <= 0 {
			e.logs.add(slog.LevelError, "gateway: token endpoint answered an exchange with something else than a JWT bearer token",
				"endpoint", e.endpoint, "issued_token_type", tr.IssuedTokenType, "token_type", tr.TokenType, "expires_in", tr.ExpiresIn)
			return answer{}, fmt.Errorf("%w: unexpected exchange answer", errUnavailable)
		}
		jkt, err := boundKey(tr.AccessToken)
		if errors.Is(err, errBoundUnchecked) {
			return answer{refusal: "the token is bound in a way the gateway cannot check"}, nil
		}
		if err != nil {
			e.logs.add(slog.LevelError, "gateway: token endpoint answered an exchange with a JWT whose claims cannot be read", "endpoint", e.endpoint, "err", err)
			return answer{}, fmt.Errorf("%w: unreadable exchanged JWT", errUnavailable)
		}
		// expires_in counts from when the issuer answered; counting from
		// before the request errs on the early side.
		return answer{jwt: tr.AccessToken, jkt: jkt, exp: start.Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
	case resp.StatusCode == http.StatusBadRequest && tr.Error == "invalid_grant":
		return answer{refusal: "the token is not active"}, nil
	case resp.StatusCode == http.StatusBadRequest && tr.Error == "invalid_target":
		return answer{refusal: "the token is not for this API"}, nil
	case resp.StatusCode == http.StatusUnauthorized || tr.Error == "unauthorized_client" || tr.Error == "invalid_client":
		e.logs.add(slog.LevelError, "gateway: the token endpoint refuses this gateway's client; check --client-id, --client-secret and that the client is registered for the token-exchange grant",
			"endpoint", e.endpoint, "client_id", e.cfg.ClientID, "status", resp.StatusCode, "error", tr.Error)
	default:
		e.logs.add(slog.LevelError, "gateway: token exchange failed", "endpoint", e.endpoint, "status", resp.StatusCode, "error", tr.Error)
	}
	return answer{}, fmt.Errorf("%w: token endpoint status %d %s", errUnavailable, resp.StatusCode, tr.Error)
}

// discoverEndpoints reads the token_endpoint and latch's
// opaque_token_keys_endpoint (possibly "") of the issuer's RFC 8414
// metadata, whose issuer must be exactly cfg.Issuer (§3.3).
func discoverEndpoints(ctx context.Context, cfg *Config) (token, keys string, err error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		return "", "", fmt.Errorf("gateway: issuer %q: %w", cfg.Issuer, err)
	}
	// RFC 8414 §3.1: the well-known suffix goes between host and path.
	where := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/")
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return "", "", fmt.Errorf("gateway: discover %s: %w", cfg.Issuer, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("gateway: discover %s: %w", cfg.Issuer, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, cfg.MaxResponseBytes+1))
	if err != nil || int64(len(body)) > cfg.MaxResponseBytes || resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("gateway: discover %s: GET %s: status %d, %d bytes, %v", cfg.Issuer, where, resp.StatusCode, len(body), err)
	}
	var md struct {
		Issuer                  string `json:"issuer"`
		TokenEndpoint           string `json:"token_endpoint"`
		OpaqueTokenKeysEndpoint string `json:"opaque_token_keys_endpoint"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", "", fmt.Errorf("gateway: metadata at %s: %w", where, err)
	}
	if md.Issuer != cfg.Issuer {
		return "", "", fmt.Errorf("gateway: metadata at %s names issuer %q, want exactly %q (RFC 8414 §3.3)", where, md.Issuer, cfg.Issuer)
	}
	if err := checkURL("token_endpoint", md.TokenEndpoint, cfg.InsecureAllowHTTP, false); err != nil {
		return "", "", err
	}
	if md.OpaqueTokenKeysEndpoint != "" {
		if err := checkURL("opaque_token_keys_endpoint", md.OpaqueTokenKeysEndpoint, cfg.InsecureAllowHTTP, false); err != nil {
			return "", "", err
		}
	}
	return md.TokenEndpoint, md.OpaqueTokenKeysEndpoint, nil
}
