package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/verify"
)

type gatewayFlags struct {
	issuer            string
	upstream          string
	listen            string
	clientID          string
	clientSecret      string
	acceptJWT         bool
	audience          string
	cacheTTL          time.Duration
	cacheEntries      int
	untaggedRate      float64
	untaggedPerSource float64
	insecureHTTP      bool
	revocationFeed    bool
	feedMaxStale      time.Duration
	feedFailOpen      bool
	logLevel          string
	logFormat         string
	shutdownTimeout   time.Duration
	dpop              bool
	externalURL       string
	redisURL          string
}

func newGatewayCmd(e *env) *cobra.Command {
	var g gatewayFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "run the phantom-token gateway: opaque tokens outside, short-lived JWTs to the upstream",
		Long: `Run the phantom-token gateway, a reverse proxy in front of an API.

Clients send an opaque access token (lt_at_...). The gateway exchanges it at
the issuer (RFC 8693 token exchange) for a JWT access token of at most 5
minutes, caches that for --cache-ttl, and forwards the request to --upstream
with Authorization: Bearer <jwt>, which the API checks locally with verify.
JWTs from outside are refused unless --accept-jwt.

The gateway follows the issuer's revocation feed (GET /oauth2/revocations)
with the same client credentials: a revoked token leaves the cache (and, with
--accept-jwt, joins the denylist of outside JWTs) within milliseconds of the
revocation. If the feed has been silent for longer than --feed-max-stale, the
gateway answers 503 rather than forward tokens that may have been revoked
meanwhile (--feed-fail-open weakens that). Start-up fails if the first read of
the feed fails. --revocation-feed=false turns it off: a revoked token then
gets through for up to --cache-ttl, and a revoked outside JWT until its exp.

The gateway authenticates as a client registered for token exchange and for
the API's audience:

  latch client create --id gateway --audience api \
    --grant urn:ietf:params:oauth:grant-type:token-exchange

Pass its secret in LATCH_CLIENT_SECRET (or the config file) rather than on the
command line, where other users of the machine can read it.`,
		Example: `  # local development against latch serve --dev and examples/api:
  LATCH_CLIENT_SECRET=... latch gateway --issuer http://127.0.0.1:8080 --insecure-allow-http \
    --client-id gateway --upstream http://127.0.0.1:9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGateway(cmd.Context(), e, &g) },
	}
	f := cmd.Flags()
	f.String("config", "", "YAML config file (env LATCH_CONFIG); flags override env, env overrides the file")
	f.StringVar(&g.issuer, "issuer", "", "issuer URL of the latch server (required)")
	f.StringVar(&g.upstream, "upstream", "", "URL of the API to forward to (required), e.g. http://127.0.0.1:9000")
	f.StringVar(&g.listen, "listen", "127.0.0.1:8081", "address to listen on; port 0 picks a free port (the chosen address is logged)")
	f.StringVar(&g.clientID, "client-id", "", "the gateway's client id (required)")
	f.StringVar(&g.clientSecret, "client-secret", "", "the gateway's client secret (required); prefer LATCH_CLIENT_SECRET")
	f.BoolVar(&g.acceptJWT, "accept-jwt", false, "also accept JWT access tokens from outside, verified locally and forwarded as they are (needs --audience)")
	f.StringVar(&g.audience, "audience", "", "the upstream's audience, which outside JWTs must carry (with --accept-jwt)")
	f.DurationVar(&g.cacheTTL, "cache-ttl", gateway.DefaultCacheTTL, "longest reuse of an exchanged JWT (the revocation feed ends it at once); without the feed, the longest a revoked token still gets through; 0 exchanges on every request")
	f.IntVar(&g.cacheEntries, "cache-entries", gateway.DefaultCacheEntries, "bound on the cache of exchanged JWTs")
	f.Float64Var(&g.untaggedRate, "untagged-rate", gateway.DefaultUntaggedRate, "exchanges per second, in all, of opaque tokens without a tag the gateway can check (older or forged tokens; 503 beyond)")
	f.Float64Var(&g.untaggedPerSource, "untagged-per-source-rate", gateway.DefaultUntaggedPerSourceRate, "the same, per client address (the TCP peer)")
	f.BoolVar(&g.revocationFeed, "revocation-feed", true, "follow the issuer's revocation feed so a revoked token is refused at once; =false is weaker: a revoked token then gets through for up to --cache-ttl (an outside JWT until its exp)")
	f.DurationVar(&g.feedMaxStale, "feed-max-stale", verify.DefaultMaxStale, "how long the revocation feed may be unreachable before the gateway answers 503 (at least 100ms)")
	f.BoolVar(&g.feedFailOpen, "feed-fail-open", false, "weaker: keep serving when the revocation feed has been down longer than --feed-max-stale; tokens revoked meanwhile get through for up to --cache-ttl (outside JWTs until their exp)")
	f.BoolVar(&g.dpop, "dpop", false, "accept DPoP-bound tokens (RFC 9449): Authorization: DPoP <token> with a proof in the DPoP header, checked here against the request, the token and the key it is bound to; the upstream gets a JWT that keeps cnf.jkt and trusts this check (a bound token sent as Bearer is refused with or without --dpop)")
	f.StringVar(&g.externalURL, "external-url", "", "with --dpop: the scheme, host and path prefix clients call the gateway at (the proofs' htu), when a load balancer in front terminates TLS or changes the host; default from the request")
	f.StringVar(&g.redisURL, "redis-url", "", "with --dpop: Redis shared by every gateway node, so a proof used at one node is refused at the others (RFC 9449 §11.1); default: each node remembers the proofs it saw, in memory")
	f.BoolVar(&g.insecureHTTP, "insecure-allow-http", false, "allow an http issuer (local development only: the client secret and tokens travel in the clear)")
	f.StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&g.logFormat, "log-format", "text", "text or json")
	f.DurationVar(&g.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may finish on SIGTERM")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return applyConfig(cmd, e) }
	return cmd
}

func runGateway(ctx context.Context, e *env, g *gatewayFlags) error {
	log, err := newLogger(e, g.logLevel, g.logFormat)
	if err != nil {
		return err
	}
	switch {
	case g.issuer == "":
		return usagef("--issuer is required (the latch server's issuer URL)")
	case g.upstream == "":
		return usagef("--upstream is required (the URL of the API behind the gateway)")
	case g.clientID == "":
		return usagef("--client-id is required: register the gateway with `latch client create --grant urn:ietf:params:oauth:grant-type:token-exchange --audience API`")
	case g.clientSecret == "":
		return usagef("the gateway's client secret is required: set LATCH_CLIENT_SECRET (or --client-secret)")
	case !g.dpop && (g.externalURL != "" || g.redisURL != ""):
		return usagef("--external-url and --redis-url are settings of --dpop: add --dpop, or drop them")
	case g.revocationFeed && g.feedMaxStale < 100*time.Millisecond:
		return usagef("--feed-max-stale %v is below 100ms; it is how long a revocation feed outage is tolerated before the gateway answers 503 (default %v)", g.feedMaxStale, verify.DefaultMaxStale)
	}
	up, err := url.Parse(g.upstream)
	if err != nil {
		return usagef("--upstream %q: %v", g.upstream, err)
	}
	cfg := gateway.Config{
		Issuer: g.issuer, ClientID: g.clientID, ClientSecret: g.clientSecret, Upstream: up,
		AcceptJWT: g.acceptJWT, Audience: g.audience, CacheTTL: g.cacheTTL, CacheEntries: g.cacheEntries,
		UntaggedRate: g.untaggedRate, UntaggedPerSourceRate: g.untaggedPerSource,
		InsecureAllowHTTP: g.insecureHTTP, Logger: log,
	}
	if g.cacheTTL == 0 {
		cfg.DisableCache = true
	}
	if g.dpop {
		dc := dpop.Config{}
		if g.redisURL != "" {
			if _, err := redis.ParseURL(g.redisURL); err != nil {
				return usagef("--redis-url: %v", err)
			}
			rc, err := redis.Open(ctx, redis.Config{URL: g.redisURL, Logger: log})
			if err != nil {
				return fmt.Errorf("--redis-url: %w", err)
			}
			defer rc.Close()
			// One scope per issuer and per gateway client: the proofs sent to
			// this gateway, not those the issuer's token endpoint saw.
			dc.Replay = rc.DPoPReplayCache("gw:"+g.issuer+" "+g.clientID, time.Now)
		}
		if cfg.DPoP, err = dpop.New(dc); err != nil {
			return err
		}
		cfg.ExternalURL = g.externalURL
	}
	// deny is set before the server starts, and the hooks run only while
	// it serves.
	var deny *verify.Denylist
	if g.revocationFeed {
		cfg.IsRevoked = func(ctx context.Context, iss, jti string) bool { return deny.IsRevoked(ctx, iss, jti) }
		if !g.feedFailOpen {
			cfg.Ready = func() bool { return deny.Healthy() }
		}
	}
	gw, err := gateway.New(ctx, cfg)
	if err != nil {
		return err
	}
	if g.revocationFeed {
		deny, err = verify.FollowRevocations(ctx, verify.FeedConfig{
			Issuer: g.issuer, ClientID: g.clientID, ClientSecret: g.clientSecret,
			MaxStale: g.feedMaxStale, FailOpen: g.feedFailOpen,
			OnOpaque: gw.Drop, OnReset: gw.Flush,
			InsecureAllowHTTP: g.insecureHTTP, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("cannot follow the revocation feed: %w. The gateway reads it with its own client: check --client-id and LATCH_CLIENT_SECRET (a confidential client) and that %s is reachable, or run with --revocation-feed=false to rely on --cache-ttl alone (a revoked token then gets through for up to %v)",
				err, g.issuer, g.cacheTTL)
		}
		defer deny.Close()
		if g.feedFailOpen {
			log.Warn("--feed-fail-open: when the revocation feed is down for longer than --feed-max-stale, revoked tokens get through until the cache entry or the outside JWT expires", "feed_max_stale", g.feedMaxStale)
		}
	} else {
		log.Warn("--revocation-feed=false: a revoked token gets through for up to --cache-ttl, a revoked outside JWT until its exp", "cache_ttl", g.cacheTTL)
	}

	ln, err := listen(g.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	hs := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No ReadTimeout or WriteTimeout: they would cut off the upstream's
		// long uploads and streamed answers; ReadHeaderTimeout bounds slow
		// clients before any work is done for them.
		MaxHeaderBytes: server.HTTPServerMaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	log.Info("latch gateway listening", "addr", addr, "issuer", g.issuer, "upstream", up.Redacted(),
		"client_id", g.clientID, "accept_jwt", g.acceptJWT, "cache_ttl", g.cacheTTL,
		"revocation_feed", g.revocationFeed, "feed_max_stale", g.feedMaxStale, "feed_fail_open", g.feedFailOpen,
		"dpop", g.dpop, "dpop_replay_shared", g.redisURL != "")
	return runHTTP(ctx, log, hs, ln, g.shutdownTimeout)
}
