package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of FeedConfig.
const (
	DefaultMaxStale     = 30 * time.Second
	DefaultFeedMaxBytes = 4 << 20 // 1,000 entries of a few hundred bytes, with room
	minMaxStale         = 100 * time.Millisecond
	feedMaxWait         = 25 * time.Second // the server's cap
	feedRequestGrace    = 10 * time.Second // beyond the wait, for a slow answer
	feedBackoffMin      = 100 * time.Millisecond
	feedBackoffMax      = 5 * time.Second
	feedPurgeInterval   = time.Minute
	feedPurgeGrace      = maxLeeway // see Denylist.purge
)

// FeedConfig configures FollowRevocations.
type FeedConfig struct {
	// Issuer is the issuer URL, as in Config.
	Issuer string
	// Endpoint is the revocation feed. Default Issuer + "/oauth2/revocations".
	Endpoint string
	// ClientID and ClientSecret authenticate this resource server to the
	// feed (client_secret_basic); the client must be confidential.
	ClientID     string
	ClientSecret string

	// MaxStale is how long the denylist keeps answering from its last
	// state after the feed last answered. Past it, IsRevoked reports every
	// token revoked (fail closed): a revocation made meanwhile cannot have
	// reached us, and a revoked token must not pass for longer than the
	// operator allowed. Default 30s; at least 100ms. The long-poll wait is
	// half of it (at most 25s), so a healthy, quiet feed answers well
	// within it.
	MaxStale time.Duration
	// FailOpen keeps answering from the last state however long the feed
	// is down: revoked tokens then pass until they expire. Healthy still
	// reports the outage.
	FailOpen bool

	// OnOpaque, when set, is called with the SHA-256 of each revoked
	// opaque token (token.Hash): wire it to Introspector.Drop so a cached
	// answer does not outlive the revocation.
	OnOpaque func(tokenHash []byte)
	// OnReset, when set, is called when the feed says our cursor is ahead
	// of its log (the server's database was replaced or restored), so
	// entries may have been missed: wire it to Introspector.Flush. The JWT
	// denylist keeps its entries and re-reads the log from the start.
	OnReset func()

	// HTTPClient talks to the feed. Default: a client that follows no
	// redirect; each request is bounded by the wait plus 10s. A caller's
	// client with a Timeout shortens the wait to half of it.
	HTTPClient *http.Client
	// MaxResponseBytes bounds each answer. Default 4 MiB.
	MaxResponseBytes int64
	// InsecureAllowHTTP allows an http endpoint: anyone on the path can
	// then hide revocations. For tests and local development only.
	InsecureAllowHTTP bool

	// Logger receives reconnects and outages. Default: discarded.
	Logger *slog.Logger
	// Now is the clock of staleness and expiry. Default time.Now.
	Now func() time.Time
}

func (c FeedConfig) withDefaults() FeedConfig {
	if c.Endpoint == "" && c.Issuer != "" {
		c.Endpoint = c.Issuer + "/oauth2/revocations"
	}
	if c.MaxStale == 0 {
		c.MaxStale = DefaultMaxStale
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultFeedMaxBytes
	}
	if c.HTTPClient == nil {
		// No overall Timeout: a long-poll waits by design; each request
		// gets its own deadline instead.
		c.HTTPClient = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
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
func (c FeedConfig) Validate() error {
	if err := checkIssuer(c.Issuer, c.InsecureAllowHTTP); err != nil {
		return err
	}
	if err := checkEndpoint("FeedConfig.Endpoint", c.Endpoint, c.InsecureAllowHTTP); err != nil {
		return err
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("verify: FeedConfig.ClientID and ClientSecret are required: the revocation feed serves confidential clients only")
	}
	if c.MaxStale < minMaxStale {
		return fmt.Errorf("verify: FeedConfig.MaxStale %v is below %v; it is how long a feed outage is tolerated (default 30s)", c.MaxStale, minMaxStale)
	}
	if c.MaxResponseBytes < 0 {
		return errors.New("verify: FeedConfig.MaxResponseBytes is negative")
	}
	return nil
}

// Denylist is the (iss, jti) denylist of security invariant 4, held in memory
// and kept current by following the issuer's revocation feed
// (GET /oauth2/revocations). Plug IsRevoked into Config.IsRevoked (and
// IntrospectorConfig.IsRevoked). It is safe for concurrent use.
//
// It follows the feed by long-polling rather than server-sent events,
// though the server offers both: the follower chooses the wait, so it
// knows when a healthy feed must have answered, and a silent network
// failure is bounded by that wait, not by a heartbeat interval the server
// picks; each answer is one bounded JSON body read by the package's
// fetcher; and it works through proxies that buffer streams. The cost, one
// request per batch of revocations, is small at revocation rates.
type Denylist struct {
	cfg   FeedConfig
	url   *url.URL
	fetch *fetcher
	wait  time.Duration

	start    time.Time
	lastSync atomic.Int64 // cfg.Now() - start, in ns, at the last answer of the feed
	closed   atomic.Bool

	mu        sync.RWMutex
	jwts      map[denyKey]int64 // exp, Unix seconds
	cursor    int64
	lastPurge time.Time

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type denyKey struct{ iss, jti string }

// FollowRevocations reads the revocation feed to its end, then follows it
// in the background until Close. It returns only once that first sync has
// completed, so a service never starts with an empty denylist without
// knowing it; a feed that refuses or fails the first sync is an error.
func FollowRevocations(ctx context.Context, cfg FeedConfig) (*Denylist, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("verify: FeedConfig.Endpoint %q: %w", cfg.Endpoint, err)
	}
	wait := min(feedMaxWait, cfg.MaxStale/2)
	if t := cfg.HTTPClient.Timeout; t > 0 {
		wait = min(wait, t/2)
	}
	d := &Denylist{
		cfg: cfg, url: u, wait: wait,
		fetch: &fetcher{client: cfg.HTTPClient, timeout: wait + feedRequestGrace, maxBytes: cfg.MaxResponseBytes, allowHTTP: cfg.InsecureAllowHTTP},
		start: cfg.Now(), jwts: map[denyKey]int64{}, lastPurge: cfg.Now(),
		done: make(chan struct{}),
	}
	for {
		before := d.Cursor()
		n, reset, err := d.poll(ctx, 0)
		if err != nil {
			return nil, fmt.Errorf("verify: first sync of the revocation feed: %w", err)
		}
		if n == 0 && !reset && d.Cursor() == before {
			break
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.run(runCtx)
	return d, nil
}

// IsRevoked reports whether the JWT (iss, jti) is revoked, or, when the
// feed has not answered for FeedConfig.MaxStale and FailOpen is false,
// true for every token. It has the signature of Config.IsRevoked.
func (d *Denylist) IsRevoked(_ context.Context, iss, jti string) bool {
	if !d.cfg.FailOpen && d.stale() {
		return true
	}
	d.mu.RLock()
	_, ok := d.jwts[denyKey{iss, jti}]
	d.mu.RUnlock()
	return ok
}

// Healthy reports whether the feed answered within FeedConfig.MaxStale and
// Close has not been called: a readiness probe should report it.
func (d *Denylist) Healthy() bool { return !d.closed.Load() && !d.stale() }

// Len returns the number of denylisted JWTs held.
func (d *Denylist) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jwts)
}

// Cursor returns the sequence number the feed is followed from.
func (d *Denylist) Cursor() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cursor
}

// Close stops following the feed and waits for the follower to end. The
// denylist then no longer learns of revocations: unless FailOpen, it fails
// closed MaxStale after the last answer. Close it when the service stops.
func (d *Denylist) Close() {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		if d.cancel != nil {
			d.cancel()
			<-d.done
		}
	})
}

func (d *Denylist) stale() bool {
	return d.cfg.Now().Sub(d.start)-time.Duration(d.lastSync.Load()) > d.cfg.MaxStale
}

// run follows the feed until ctx ends, reconnecting with exponential
// back-off and full jitter (at most feedBackoffMax) from the last cursor.
func (d *Denylist) run(ctx context.Context) {
	defer close(d.done)
	failures := 0
	failingClosed := false
	for {
		_, _, err := d.poll(ctx, d.wait)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failures > 0 {
				d.cfg.Logger.Info("verify: revocation feed reconnected", "endpoint", d.url.Redacted(), "failures", failures, "cursor", d.Cursor())
			}
			if failingClosed {
				d.cfg.Logger.Info("verify: revocation feed is back; tokens are accepted again")
			}
			failures, failingClosed = 0, false
			continue
		}
		failures++
		if failures == 1 || failures%30 == 0 {
			d.cfg.Logger.Warn("verify: revocation feed unreachable; retrying", "endpoint", d.url.Redacted(), "failures", failures, "err", err)
		}
		if !d.cfg.FailOpen && !failingClosed && d.stale() {
			failingClosed = true
			d.cfg.Logger.Error("verify: revocation feed down for longer than MaxStale; every token is refused until it is back",
				"endpoint", d.url.Redacted(), "max_stale", d.cfg.MaxStale)
		}
		delay := min(feedBackoffMax, feedBackoffMin<<min(failures-1, 16))
		delay = delay/2 + rand.N(delay/2+1) // jitter: followers of a restarted server do not return in step
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// feedAnswer is the long-poll answer of GET /oauth2/revocations.
type feedAnswer struct {
	Entries []feedEntry `json:"entries"`
	Next    *int64      `json:"next"`
	Reset   bool        `json:"reset"`
}

// feedEntry is one entry. Kinds this package does not know (session and
// family revocations are to come) are skipped.
type feedEntry struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	Issuer    string `json:"iss"`
	JTI       string `json:"jti"`
	TokenHash string `json:"token_hash"`
	Exp       int64  `json:"exp"`
}

// poll asks the feed once for the entries after the cursor, waiting up to
// wait for one, and applies the answer. It returns how many entries it
// applied and whether the feed reset the cursor.
func (d *Denylist) poll(ctx context.Context, wait time.Duration) (int, bool, error) {
	cursor := d.Cursor()
	u := *d.url
	q := u.Query()
	q.Set("after", strconv.FormatInt(cursor, 10))
	q.Set("wait", wait.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, false, fmt.Errorf("verify: revocation feed: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts first.
	req.SetBasicAuth(url.QueryEscape(d.cfg.ClientID), url.QueryEscape(d.cfg.ClientSecret))
	_, body, err := d.fetch.do(req)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			return 0, false, fmt.Errorf("%w (the feed refuses client %q: check ClientID and ClientSecret, and that the client is confidential)", err, d.cfg.ClientID)
		}
		return 0, false, err
	}
	var a feedAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, false, fmt.Errorf("verify: revocation feed answer is not JSON: %w", err)
	}
	if a.Next == nil || *a.Next < 0 {
		return 0, false, errors.New("verify: revocation feed answer has no next cursor")
	}
	// A cursor that goes back without a reset is a log we did not follow
	// (another database behind the same URL): treat it as a reset.
	reset := a.Reset || *a.Next < cursor

	var opaque [][]byte
	now := d.cfg.Now()
	d.mu.Lock()
	for _, e := range a.Entries {
		switch e.Kind {
		case "jwt":
			if e.Issuer == "" || e.JTI == "" {
				continue
			}
			exp := e.Exp
			if exp == 0 {
				exp = 1<<63 - 1
			}
			d.jwts[denyKey{e.Issuer, e.JTI}] = exp
		case "opaque":
			h, err := base64.RawURLEncoding.DecodeString(e.TokenHash)
			if err != nil || len(h) != 32 {
				continue
			}
			opaque = append(opaque, h)
		}
	}
	d.cursor = *a.Next
	if now.Sub(d.lastPurge) >= feedPurgeInterval {
		d.purgeLocked(now)
	}
	d.mu.Unlock()

	if reset {
		d.cfg.Logger.Warn("verify: revocation feed reset our cursor (its log was replaced); re-reading it from the start", "cursor", cursor)
		if d.cfg.OnReset != nil {
			d.cfg.OnReset()
		}
	}
	if d.cfg.OnOpaque != nil {
		for _, h := range opaque {
			d.cfg.OnOpaque(h)
		}
	}
	d.lastSync.Store(int64(d.cfg.Now().Sub(d.start)))
	return len(a.Entries), reset, nil
}

// purgeLocked forgets entries whose token has expired. The server's exp
// already includes its leeway; feedPurgeGrace more covers a verifier
// configured with a larger Leeway (at most maxLeeway), which would accept
// the token a little longer.
func (d *Denylist) purgeLocked(now time.Time) {
	cut := now.Add(-feedPurgeGrace).Unix()
	for k, exp := range d.jwts {
		if exp < cut {
			delete(d.jwts, k)
		}
	}
	d.lastPurge = now
}
