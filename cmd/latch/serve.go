package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/throttle"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

type serveFlags struct {
	common
	keys              keysFlags
	password          passwordFlags
	login             loginFlags
	oidc              oidcFlags
	listen            string
	issuer            string
	dev               bool
	devListenAll      bool
	insecureHTTP      bool
	accessTokenTTL    time.Duration
	grants            grantFlags
	introspectionRate float64
	tokenCacheSize    int
	redisURL          string
	logLevel          string
	logFormat         string
	shutdownTimeout   time.Duration
	testClockOffset   time.Duration
}

func newServeCmd(e *env) *cobra.Command {
	var s serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the authorization server",
		Long: `Run the authorization server.

With --dev it needs nothing else: the SQLite database, a key-encryption key and
a first signing key are created under --data-dir, the issuer is derived from
the listen address, and a client "dev" is registered with its secret printed once.
Without --dev, --issuer (https) and a key-encryption key (LATCH_KEK or --kek-file)
are required.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), e, &s) },
	}
	addCommon(cmd, e, &s.common, false)
	addKeysFlags(cmd, &s.keys)
	addPasswordFlags(cmd, &s.password)
	addLoginFlags(cmd, &s.login)
	f := cmd.Flags()
	addOIDCFlags(f, &s.oidc)
	f.StringVar(&s.listen, "listen", "127.0.0.1:8080", "address to listen on; port 0 picks a free port (the chosen address is logged)")
	f.StringVar(&s.issuer, "issuer", "", "issuer URL (https); required without --dev, where it is http://LISTEN_ADDRESS")
	f.BoolVar(&s.dev, "dev", false, "local development setup: generate what is missing, allow an http issuer")
	f.BoolVar(&s.devListenAll, "insecure-dev-listen-all", false,
		"let --dev listen on a non-loopback --listen such as :8080, for a container whose port is published on the host's loopback (-p 127.0.0.1:8080:8080); the dev client's secret and http then reach whatever can reach that address. The issuer stays http://127.0.0.1:PORT unless --issuer")
	f.BoolVar(&s.insecureHTTP, "insecure-allow-http", false, "allow an http issuer outside --dev (behind a TLS-terminating proxy you trust)")
	f.DurationVar(&s.accessTokenTTL, "access-token-ttl", server.DefaultAccessTokenTTL, "access-token lifetime for clients that do not set one")
	addGrantFlags(f, &s.grants)
	f.Float64Var(&s.introspectionRate, "introspection-rate", server.DefaultIntrospectionRate, "introspection requests per second allowed per client (burst: twice that)")
	f.IntVar(&s.tokenCacheSize, "token-cache-size", server.DefaultTokenCacheSize, "opaque access tokens kept in memory for introspection and token exchange, and as many verified JWTs; a revocation by another process (CLI, other node) takes effect within 100 ms (another node's at once with --redis-url); 0 disables")
	f.StringVar(&s.redisURL, "redis-url", "",
		"Redis URL (redis://[user:pass@]host:port/db, rediss:// for TLS) shared by every server node: revocation fan-out and the login throttle (docs/operations.md); or set LATCH_REDIS_URL")
	f.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&s.logFormat, "log-format", "text", "text or json")
	f.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may finish on SIGTERM")
	addTestClockFlag(f, &s.testClockOffset)
	return cmd
}

func newLogger(e *env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	default:
		return nil, usagef("--log-format %q: use text or json", format)
	}
}

// serve starts the server. Its checks come in the order a user can fix
// them: the flags and configuration first, then the files they name (the
// key-encryption key, the data directory), then the port, then the store;
// nothing is bound or created before the configuration is known good.
func serve(ctx context.Context, e *env, s *serveFlags) error {
	log, err := newLogger(e, s.logLevel, s.logFormat)
	if err != nil {
		return err
	}
	if !s.dev && s.issuer == "" {
		return usagef("--issuer is required without --dev (e.g. --issuer https://auth.example.com)")
	}
	if err := checkListen(s.listen); err != nil {
		return err
	}
	if err := checkDevListen(s); err != nil {
		return err
	}
	if s.introspectionRate <= 0 {
		return usagef("--introspection-rate must be positive (requests per second per client), got %v", s.introspectionRate)
	}
	if s.tokenCacheSize < 0 {
		return usagef("--token-cache-size must be 0 (off) or a number of entries, got %d", s.tokenCacheSize)
	}
	if err := s.login.check(); err != nil {
		return err
	}
	if s.redisURL != "" {
		if _, err := redis.ParseURL(s.redisURL); err != nil {
			return usagef("--redis-url: %v", err)
		}
	}
	keyCfg, err := s.keys.config()
	if err != nil {
		return err
	}
	// The issuer of --dev is known once the port is: until then, the one
	// of the listen address stands in for it.
	cfg := s.serverConfig(cmp.Or(s.issuer, devIssuer(s.listen)), log)
	if err := cfg.ValidateSettings(); err != nil {
		return usageError{err}
	}
	mode := database
	if s.dev {
		mode = directory
	}
	if err := s.common.checkDataDir(mode); err != nil {
		return err
	}
	blocklist, err := s.password.loadBlocklist()
	if err != nil {
		return err
	}
	if blocklist != nil {
		log.Info("breached-password list loaded", "entries", blocklist.Len())
	}
	sealer, err := loadSealer(e, &s.common, s.dev)
	if err != nil {
		return err
	}

	ln, err := listen(s.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	issuer := cmp.Or(s.issuer, devIssuer(addr))
	if s.dev && !isLoopbackAddr(addr) {
		log.Warn("--insecure-dev-listen-all: the --dev server, its http issuer and the dev client's secret are reachable on "+addr+", not only on loopback; publish the port on the host's loopback only", "addr", addr)
	}
	cfg = s.serverConfig(issuer, log)
	if s.databaseURL == "" {
		if mode == directory {
			if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
				return fmt.Errorf("create data directory: %w", err)
			}
		}
		release, err := lockDataDir(s.dataDir, serveRecord{Issuer: issuer, Addr: addr, PID: os.Getpid(), StartedAt: time.Now().UTC()})
		if err != nil {
			return err
		}
		defer release()
	}

	var rc *redis.Client
	if s.redisURL != "" {
		redis.SetDriverLogger(log)
		if rc, err = redis.Open(ctx, redis.Config{URL: s.redisURL, Logger: log}); err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		defer rc.Close()
	}
	sc := s.common
	if sc.databaseURL != "" {
		sc.databaseURL = withNodeName(sc.databaseURL, issuer)
	}
	db, err := openStore(ctx, &sc, mode)
	if err != nil {
		return err
	}
	defer db.Close()
	km, err := keys.NewManager(db, sealer, keyCfg)
	if err != nil {
		return err
	}
	// EnsureKey ends with a Reload: no separate load first.
	if err := km.EnsureKey(ctx); err != nil {
		return err
	}
	cfg.Store, cfg.Keys, cfg.PasswordBlocklist = db, km, blocklist
	// Every node shares the KEK, so every node tags opaque tokens alike and
	// a restart keeps the tags of the tokens already out valid.
	tagKey, err := token.NewTagKey(sealer.DeriveKey("opaque-token tag key v1"))
	if err != nil {
		return err
	}
	cfg.OpaqueTagKeys = []*token.TagKey{tagKey}
	if rc != nil {
		cfg.Fanout = rc.Fanout(issuer)
		cfg.SharedLoginThrottle = func(scope string, t throttle.Config) throttle.Throttle {
			return rc.Throttle(issuer, scope, t)
		}
		log.Info("shared state in Redis: revocation fan-out and login throttle", "redis", rc.Addr())
	}
	srv, err := server.New(cfg)
	if err != nil {
		return usageError{err}
	}
	if s.dev {
		if err := ensureDevClient(ctx, e, db, issuer); err != nil {
			return err
		}
	}

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    server.HTTPServerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(runCtx)

	log.Info("latch listening", "addr", addr, "issuer", issuer, "data_dir", s.dataDir, "dev", s.dev)
	return runHTTP(ctx, log, hs, ln, s.shutdownTimeout)
}

// serverConfig is the server's configuration for issuer, without its
// store and keys.
func (s *serveFlags) serverConfig(issuer string, log *slog.Logger) server.Config {
	cfg := server.Config{
		Issuer: issuer, InsecureAllowHTTP: s.insecureHTTP || (s.dev && isLoopbackURL(issuer)),
		AccessTokenTTL: s.accessTokenTTL, MaxAccessTokenTTL: s.keys.maxTokenTTL,
		RefreshTokenTTL: s.grants.refreshTTL, RefreshFamilyMaxAge: s.grants.familyMaxAge, RefreshGrace: s.grants.serverGrace(),
		AuthCodeTTL: s.grants.codeTTL, IDTokenTTL: s.grants.idTokenTTL,
		// A burst below 1 would read as "unset" and take the default.
		IntrospectionRate: rate.Limit(s.introspectionRate), IntrospectionBurst: max(1, int(2*s.introspectionRate)),
		PasswordParams: s.password.params(), MinPasswordLen: s.password.minLen,
		TokenCacheSize: cmp.Or(s.tokenCacheSize, -1), // 0 on the command line is off
		Logger:         log,
		Now:            testClock(s.testClockOffset),
	}
	s.login.apply(&cfg)
	s.oidc.apply(&cfg)
	return cfg
}

// listen binds addr, saying what to do when it is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is already in use (by another latch?): stop what listens there, or choose another address with --listen (port 0 picks a free one)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// checkDevListen keeps --dev on loopback: it allows http and prints an
// admin-capable client's secret, both fine on a developer's machine and
// wrong anywhere else. In a container, loopback is the container's own and
// unreachable from the host: --insecure-dev-listen-all opens the other
// addresses, under a name that says what it costs.
func checkDevListen(s *serveFlags) error {
	switch {
	case s.devListenAll && !s.dev:
		return usagef("--insecure-dev-listen-all is for --dev only; without --dev, --listen takes any address")
	case s.dev && !s.devListenAll && !isLoopbackAddr(s.listen):
		return usagef("--dev listens on loopback only (got --listen %s): elsewhere run without --dev, with --issuer and a key-encryption key (docs/operations.md); in a container whose port the host publishes on its own loopback, add --insecure-dev-listen-all", s.listen)
	}
	return nil
}

// devIssuer is the issuer --dev derives from the address it listens on:
// http://ADDR, or http://127.0.0.1:PORT on every interface (a container's
// :8080, published on the host's loopback), since 0.0.0.0 names no host a
// browser or client can reach.
func devIssuer(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// checkListen refuses a listen address that is not host:port, before
// anything judges its host.
func checkListen(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef("--listen %q is not a host:port address (e.g. 127.0.0.1:8080, or :8080 for every interface): %v", addr, err)
	}
	return nil
}

// runHTTP serves hs on ln until ctx ends (SIGINT, SIGTERM), then lets
// in-flight requests finish for at most timeout.
func runHTTP(ctx context.Context, log *slog.Logger, hs *http.Server, ln net.Listener, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureDevClient registers the client "dev" on the first --dev start and
// prints its secret, which is not stored and so cannot be shown again.
func ensureDevClient(ctx context.Context, e *env, store latch.ClientStore, issuer string) error {
	const id = "dev"
	_, err := store.Client(ctx, id)
	if err == nil {
		fmt.Fprintf(e.stdout, "latch dev server at %s\n  dev client: %s (its secret was printed on the first start; `latch client rotate-secret dev` makes a new one)\n", issuer, id)
		return nil
	}
	if !errors.Is(err, latch.ErrNotFound) {
		return err
	}
	v, err := (&registry.Clients{Store: store}).Create(ctx, registry.ClientSpec{
		ID: id, Name: "development client (created by --dev)",
		GrantTypes: []string{latch.GrantClientCredentials},
		Scope:      "read write " + latch.ScopeAdmin + " " + latch.ScopeIntrospect,
		// dev-api is the default audience; the admin API needs its own,
		// requested explicitly (docs/admin.md). With latch:introspect and
		// api, dev is also the resource server of the tour's API: it may
		// introspect the tokens other clients get for api.
		Audiences: []string{"dev-api", "api", latch.AudienceAdmin},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "latch dev server at %s\n  client_id:     %s\n  client_secret: %s\n  (the secret is shown only now; it is not stored)\n", issuer, v.ID, v.Secret)
	return nil
}

// isLoopbackAddr reports whether a listen address binds loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

// isLoopbackURL reports whether a URL names a loopback host.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// grantFlags set the lifetimes of the user grants (server.Config).
type grantFlags struct {
	refreshTTL, familyMaxAge, grace, codeTTL, idTokenTTL time.Duration
}

// serverGrace maps --refresh-grace 0 ("none") to server.Config's
// negative value, since a zero Config field means the default.
func (g *grantFlags) serverGrace() time.Duration {
	if g.grace == 0 {
		return -1
	}
	return g.grace
}

func addGrantFlags(f *pflag.FlagSet, g *grantFlags) {
	f.DurationVar(&g.refreshTTL, "refresh-token-ttl", server.DefaultRefreshTokenTTL, "refresh-token idle lifetime for clients that do not set one")
	f.DurationVar(&g.familyMaxAge, "refresh-family-max-age", server.DefaultRefreshFamilyMaxAge, "absolute lifetime of a grant: no refresh extends it")
	f.DurationVar(&g.grace, "refresh-grace", server.DefaultRefreshGrace,
		"how long a rotated refresh token may be used again (a retry, a second tab) before its reuse revokes the family; 0 for none, at most 1m")
	f.DurationVar(&g.codeTTL, "auth-code-ttl", server.DefaultAuthCodeTTL, "authorization code lifetime (at most 10m)")
	f.DurationVar(&g.idTokenTTL, "id-token-ttl", server.DefaultIDTokenTTL, "ID token lifetime")
}
