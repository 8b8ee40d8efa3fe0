// Package redis holds, in Redis, what the latch serve nodes of one
// deployment share besides their store: the revocation fan-out (pub/sub:
// each node's revocation feed learns at once that another node revoked
// something; see server.Fanout) and the login throttle (back-offs per
// account and per address counted across nodes; see throttle.Throttle).
//
// It holds no credential and no durable state: tokens, sessions and the
// revocation log stay in the store (PostgreSQL), and losing Redis loses
// only speed and the sharing of the throttle's counts, which the server
// then keeps per node. It does not cache introspection, hold tokens or
// rate-limit introspection across nodes. The BFF keeps its sessions in
// Redis with its own store (BFFStore).
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key and channel name this package uses.
const DefaultPrefix = "latch:"

// pingTimeout bounds the start-up check that Redis answers.
const pingTimeout = 5 * time.Second

// Config configures a Client.
type Config struct {
	// URL is redis://[user:password@]host:port[/db], rediss:// for TLS, or
	// unix:///path/to/socket. Required.
	URL string
	// Prefix starts every key and channel name (DefaultPrefix when
	// empty); tests use one of their own.
	Prefix string
	// HealthCheck is how long the revocation subscription may stay silent
	// before it is pinged; a ping unanswered as long again means the
	// connection is dead, and it is replaced. Default 15s.
	HealthCheck time.Duration
	// Logger receives the subscription's losses and recoveries.
	Logger *slog.Logger
}

// Client is a connection pool to one Redis, from which the fan-out and
// the throttles are made. It is safe for concurrent use.
type Client struct {
	rdb    *goredis.Client
	addr   string
	prefix string
	health time.Duration
	log    *slog.Logger
}

// ParseURL checks a Redis URL and returns the go-redis options for it.
// Its errors never repeat the URL, which may hold a password.
func ParseURL(raw string) (*goredis.Options, error) {
	const want = "expected redis://[user:password@]host:port[/db] (rediss:// for TLS)"
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "redis" && scheme != "rediss" && scheme != "unix") {
		return nil, fmt.Errorf("redis: the URL must start with redis://, rediss:// or unix://; %s", want)
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text holds the whole URL
		}
		return nil, fmt.Errorf("redis: bad URL: %v; %s", err, want)
	}
	// A context's deadline bounds each call (the server gives the
	// throttle and the publisher short ones); go-redis otherwise waits
	// for its own ReadTimeout.
	opt.ContextTimeoutEnabled = true
	// Fail fast when Redis is down: the server then counts logins in its
	// memory and relies on polling for revocations, and a login should
	// not wait out go-redis's default of 4 tries of 5 dials 100 ms apart.
	// One retry still hides a pooled connection that a restart of Redis
	// closed.
	opt.DialerRetries = 1
	if opt.MaxRetries == 0 { // not set in the URL (max_retries)
		opt.MaxRetries = 1
	}
	return opt, nil
}

// Open connects to the Redis at cfg.URL and checks that it answers a PING.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	opt, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.HealthCheck <= 0 {
		cfg.HealthCheck = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rdb := goredis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis: cannot reach %s: %w; start Redis there or correct the URL", opt.Addr, err)
	}
	return &Client{rdb: rdb, addr: opt.Addr, prefix: cfg.Prefix, health: cfg.HealthCheck, log: cfg.Logger}, nil
}

// Close closes the connections. Subscriptions end with their context.
func (c *Client) Close() error { return c.rdb.Close() }

// Addr is the host:port of the Redis server, for messages (never the URL).
func (c *Client) Addr() string { return c.addr }

// issuerTag names a deployment in channel names without spelling out its
// issuer URL, so several deployments can share one Redis.
func issuerTag(issuer string) string {
	h := sha256.Sum256([]byte(issuer))
	return hex.EncodeToString(h[:])
}

// SetDriverLogger sends go-redis's own log lines to log at debug level.
// go-redis has one logger per process and writes a line per failed
// connection attempt to stderr; during an outage that would be a line per
// login. latch reports an outage once, itself (the subscriber, the
// throttle's fallback, the publisher), so the driver's lines are detail.
// Call it once, from main.
func SetDriverLogger(log *slog.Logger) {
	goredis.SetLogger(driverLogger{log})
}

type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	d.log.DebugContext(ctx, "redis driver: "+fmt.Sprintf(format, v...))
}
