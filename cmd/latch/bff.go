package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/sqlite"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/bff"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/verify"
)

type bffFlags struct {
	issuer           string
	clientID         string
	clientSecret     string
	clientSecretFlag bool // --client-secret was given on the command line
	clientSecretFile string
	upstream         string
	listen           string
	redirectURL      string
	postLogoutURL    string
	static           string
	spaUpstream      string
	dataDir          string
	redisURL         string
	keyFile          string
	scopes           scopeList
	audience         string
	apiPrefix        string
	sessionIdle      time.Duration
	sessionMaxAge    time.Duration
	refreshSkew      time.Duration
	revocationFeed   bool
	feedMaxStale     time.Duration
	feedFailOpen     bool
	dev              bool
	insecureHTTP     bool
	logLevel         string
	logFormat        string
	shutdownTimeout  time.Duration
}

func newBFFCmd(e *env) *cobra.Command {
	var g bffFlags
	cmd := &cobra.Command{
		Use:   "bff",
		Short: "run the Backend-for-Frontend: a single-page app's browser holds only a __Host- cookie, never a token",
		Long: `Run the Backend-for-Frontend (BFF) for a single-page app (OWASP's
recommended pattern: the browser never touches a token).

The BFF serves the app (--static DIR) and, on the same origin:

  GET  /bff/login?return_to=/path   starts the authorization code flow (PKCE)
  GET  /bff/callback                completes it and sets the session cookie
  GET  /bff/user                    the user's non-secret claims (JSON)
  POST /bff/logout                  revokes the refresh family, ends the session
  *    /api/...                     forwarded to --upstream with the user's
                                    access token (refreshed before it expires)

Access, refresh and ID tokens stay in the BFF's store (SQLite in --data-dir,
or Redis with --redis-url), sealed with AES-256-GCM under the key in
--key-file. The browser gets one cookie, __Host-latch_bff (Secure, HttpOnly,
SameSite=Strict, Path=/). State-changing requests (POST, PUT, PATCH, DELETE)
must carry X-Latch-CSRF: 1 and come from the app's own origin, or get 403.

Register the BFF as a confidential client first, first party (the operator's
own app: no consent page), with the scopes it will request (its --scope) and
the API's audience:

  latch client create --id app --name "My app" --first-party \
    --grant authorization_code,refresh_token \
    --redirect-uri https://app.example.com/bff/callback \
    --scope "openid profile email read" --audience api

Pass its secret in LATCH_BFF_CLIENT_SECRET or --client-secret-file, not on
the command line, where other users of the machine can read it. See
docs/bff.md.`,
		Example: `  # local development against latch serve --dev and examples/api:
  latch client create --id spa --first-party --grant authorization_code,refresh_token \
    --redirect-uri http://127.0.0.1:8082/bff/callback --scope "openid profile read" --audience api
  LATCH_BFF_CLIENT_SECRET=... latch bff --dev --issuer http://127.0.0.1:8080 --client-id spa \
    --scope "openid profile read" --upstream http://127.0.0.1:9000 --static examples/spa`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBFF(cmd.Context(), e, &g) },
	}
	f := cmd.Flags()
	f.String("config", "", "YAML config file (env LATCH_CONFIG); flags override env, env overrides the file")
	f.StringVar(&g.issuer, "issuer", "", "issuer URL of the latch server (required)")
	f.StringVar(&g.clientID, "client-id", "", "the BFF's client id (required)")
	f.StringVar(&g.clientSecret, "client-secret", "", "the BFF's client secret; prefer LATCH_BFF_CLIENT_SECRET or --client-secret-file")
	f.StringVar(&g.clientSecretFile, "client-secret-file", "", "file holding the BFF's client secret (mode 0600)")
	f.StringVar(&g.upstream, "upstream", "", "URL of the API that /api/* is forwarded to (required), e.g. http://127.0.0.1:9000")
	f.StringVar(&g.listen, "listen", "127.0.0.1:8082", "address to listen on; port 0 picks a free port (the chosen address is logged)")
	f.StringVar(&g.redirectURL, "redirect-url", "", "the BFF's callback URL as registered, https://APP/bff/callback (default with --dev: http://LISTEN/bff/callback)")
	f.StringVar(&g.postLogoutURL, "post-logout-redirect-url", "", "post_logout_redirect_uri of the end_session_url that /bff/logout returns")
	f.StringVar(&g.static, "static", "", "directory of the single-page app's files, served at /")
	f.StringVar(&g.spaUpstream, "spa-upstream", "", "URL of the app's dev server to front at / instead of --static")
	f.StringVar(&g.dataDir, "data-dir", "./.latch", "directory of the BFF's SQLite database (bff.db) and default key file (bff.key)")
	f.StringVar(&g.redisURL, "redis-url", "", "keep sessions in Redis (redis://host:port/db) instead of SQLite, for several BFF nodes")
	f.StringVar(&g.keyFile, "key-file", "", "file holding the base64 AES-256 key that seals tokens at rest (mode 0600); default DATA_DIR/bff.key, generated when absent (with SQLite only: Redis nodes must share one key)")
	f.Var(&g.scopes, "scope", scopeFlagHelp("scopes to request at login")+`; openid is always added; default "openid profile"; include the scopes the API needs, e.g. --scope "openid profile read"`)
	f.StringVar(&g.audience, "audience", "", "resource (RFC 8707) of the access tokens: the upstream API's identifier; default the client's first audience")
	f.StringVar(&g.apiPrefix, "api-prefix", bff.DefaultAPIPrefix, "path prefix forwarded to --upstream, stripped on the way")
	f.DurationVar(&g.sessionIdle, "session-idle", bff.DefaultSessionIdle, "a session unused this long ends")
	f.DurationVar(&g.sessionMaxAge, "session-max-age", bff.DefaultSessionMaxAge, "every session ends this long after login")
	f.DurationVar(&g.refreshSkew, "refresh-skew", bff.DefaultRefreshSkew, "refresh an access token that expires within this")
	f.BoolVar(&g.revocationFeed, "revocation-feed", true, "follow the issuer's revocation feed, so a session revoked at the server (log out everywhere) answers 401 session_revoked at once; =false: only when its access token expires")
	f.DurationVar(&g.feedMaxStale, "feed-max-stale", verify.DefaultMaxStale, "how long the revocation feed may be unreachable before API calls answer 503 (at least 100ms)")
	f.BoolVar(&g.feedFailOpen, "feed-fail-open", false, "weaker: keep forwarding when the revocation feed has been down longer than --feed-max-stale")
	f.BoolVar(&g.dev, "dev", false, "local development: allow http on loopback, default --redirect-url from --listen")
	f.BoolVar(&g.insecureHTTP, "insecure-allow-http", false, "allow an http issuer and upstream (the client secret and tokens travel in the clear)")
	f.StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&g.logFormat, "log-format", "text", "text or json")
	f.DurationVar(&g.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may finish on SIGTERM")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		g.clientSecretFlag = cmd.Flags().Changed("client-secret")
		return applyConfig(cmd, e)
	}
	return cmd
}

// bffSecret finds the client secret: --client-secret on the command line,
// else --client-secret-file (from any source), else LATCH_BFF_CLIENT_SECRET,
// else LATCH_CLIENT_SECRET or client_secret in the config file.
func bffSecret(e *env, g *bffFlags) (string, error) {
	switch {
	case g.clientSecretFlag:
		return g.clientSecret, nil
	case g.clientSecretFile != "":
		b, err := readSecretFile(g.clientSecretFile)
		if err != nil {
			return "", fmt.Errorf("--client-secret-file: %w", err)
		}
		return b, nil
	case e.getenv("LATCH_BFF_CLIENT_SECRET") != "":
		return e.getenv("LATCH_BFF_CLIENT_SECRET"), nil
	}
	return g.clientSecret, nil
}

// readSecretFile reads a secret from a file that only its owner may read.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s is accessible by group or others (mode %04o); run `chmod 600 %s`", path, perm, path)
	}
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	s := strings.TrimSpace(string(b[:n]))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func runBFF(ctx context.Context, e *env, g *bffFlags) error {
	log, err := newLogger(e, g.logLevel, g.logFormat)
	if err != nil {
		return err
	}
	secret, err := bffSecret(e, g)
	if err != nil {
		return err
	}
	switch {
	case g.issuer == "":
		return usagef("--issuer is required (the latch server's issuer URL)")
	case g.clientID == "":
		return usagef("--client-id is required: register the BFF with `latch client create --grant authorization_code,refresh_token --redirect-uri https://APP/bff/callback`")
	case secret == "":
		return usagef("the BFF's client secret is required: set LATCH_BFF_CLIENT_SECRET or --client-secret-file")
	case g.upstream == "":
		return usagef("--upstream is required (the URL of the API behind /api)")
	case g.static != "" && g.spaUpstream != "":
		return usagef("--static and --spa-upstream are exclusive: the app is served from files or from a dev server")
	case g.revocationFeed && g.feedMaxStale < 100*time.Millisecond:
		return usagef("--feed-max-stale %v is below 100ms", g.feedMaxStale)
	case checkListen(g.listen) != nil:
		return checkListen(g.listen)
	case g.dev && !isLoopbackAddr(g.listen):
		return usagef("--dev listens on loopback only (got --listen %s)", g.listen)
	}
	insecure := g.insecureHTTP || g.dev
	redirect := g.redirectURL
	if redirect == "" {
		if !g.dev {
			return usagef("--redirect-url is required without --dev: the BFF's callback, https://APP/bff/callback, as registered for the client")
		}
		// Known once listening: port 0 is resolved below.
	}
	up, err := url.Parse(g.upstream)
	if err != nil {
		return usagef("--upstream %q: %v", g.upstream, err)
	}

	var spa http.Handler
	switch {
	case g.static != "":
		fi, err := os.Stat(g.static)
		if err != nil || !fi.IsDir() {
			return usagef("--static %q is not a directory", g.static)
		}
		if spa, err = bff.StaticFiles(g.static); err != nil {
			return usagef("--static %q: %v", g.static, err)
		}
	case g.spaUpstream != "":
		su, err := url.Parse(g.spaUpstream)
		if err != nil || (su.Scheme != "http" && su.Scheme != "https") || su.Host == "" {
			return usagef("--spa-upstream %q must be an http(s) URL", g.spaUpstream)
		}
		spa = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(su)
			pr.Out.Header.Del("Cookie") // the dev server needs no session
		}}
	}

	key, err := loadBFFKey(e, g)
	if err != nil {
		return err
	}
	var store bff.Store
	if g.redisURL != "" {
		store, err = redis.OpenBFF(ctx, g.redisURL)
	} else {
		store, err = sqlite.OpenBFF(ctx, filepath.Join(g.dataDir, "bff.db"))
	}
	if err != nil {
		return err
	}
	defer store.Close()

	ln, err := listen(g.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if redirect == "" {
		redirect = "http://" + addr + "/bff/callback"
	}

	cfg := bff.Config{
		Issuer: g.issuer, ClientID: g.clientID, ClientSecret: secret,
		RedirectURL: redirect, PostLogoutRedirectURL: g.postLogoutURL,
		Upstream: up, APIPrefix: g.apiPrefix, SPA: spa,
		Scopes: g.scopes.scopes, Audience: g.audience,
		SessionIdle: g.sessionIdle, SessionMaxAge: g.sessionMaxAge, RefreshSkew: g.refreshSkew,
		Store: store, Key: key, InsecureAllowHTTP: insecure, Logger: log,
	}
	// deny is set before the server starts; the hooks run only while it
	// serves.
	var deny *verify.Denylist
	if g.revocationFeed {
		cfg.IsRevoked = func(ctx context.Context, iss, jti string) bool { return deny.IsRevoked(ctx, iss, jti) }
		if !g.feedFailOpen {
			cfg.Ready = func() bool { return deny.Healthy() }
		}
	}
	b, err := bff.New(ctx, cfg)
	if err != nil {
		return err
	}
	if g.revocationFeed {
		deny, err = verify.FollowRevocations(ctx, verify.FeedConfig{
			Issuer: g.issuer, ClientID: g.clientID, ClientSecret: secret,
			MaxStale: g.feedMaxStale, FailOpen: g.feedFailOpen,
			InsecureAllowHTTP: insecure, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("cannot follow the revocation feed: %w. The BFF reads it with its own client: check --client-id and its secret and that %s is reachable, or run with --revocation-feed=false (a session revoked at the server then works until its access token expires)", err, g.issuer)
		}
		defer deny.Close()
	} else {
		log.Warn("--revocation-feed=false: a session revoked at the server keeps working until its access token expires")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go b.Run(runCtx)

	hs := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    server.HTTPServerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	storeName := "sqlite:" + filepath.Join(g.dataDir, "bff.db")
	if g.redisURL != "" {
		storeName = "redis"
	}
	log.Info("latch bff listening", "addr", addr, "issuer", g.issuer, "client_id", g.clientID,
		"redirect_url", redirect, "upstream", up.Redacted(), "api_prefix", g.apiPrefix,
		"store", storeName, "static", g.static, "revocation_feed", g.revocationFeed)
	return runHTTP(ctx, log, hs, ln, g.shutdownTimeout)
}

// loadBFFKey reads the sealing key from --key-file (default
// DATA_DIR/bff.key), generating it there when absent and the store is
// SQLite. With Redis every node must share one key, so none is generated.
func loadBFFKey(e *env, g *bffFlags) ([]byte, error) {
	path := g.keyFile
	if path == "" {
		path = filepath.Join(g.dataDir, "bff.key")
	}
	k, err := keys.LoadKEKFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	if g.redisURL != "" {
		return nil, fmt.Errorf("--key-file %s does not exist: with --redis-url every BFF node must use the same key; create it once with `latch keys new-kek --out %s` and give it to each node", path, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	k, err = keys.GenerateKEKFile(path, rand.Reader)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "latch bff: generated the session key %s; keep it: without it every session ends\n", path)
	return k, nil
}
