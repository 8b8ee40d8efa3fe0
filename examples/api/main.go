// Command api is a small JSON API protected by latch's verify package: the
// smallest resource server there is. GET /hello answers who called, from the
// claims of the JWT access token that verify checked locally; it needs the
// scope "read".
//
// It accepts JWT access tokens only: behind `latch gateway`, clients holding
// opaque tokens reach it too, since the gateway forwards a JWT in their
// stead; an opaque token sent to it directly is refused.
//
// With --client-id (and the client's secret in LATCH_CLIENT_SECRET) it
// follows the issuer's revocation feed, so a JWT revoked at the issuer is
// refused here as soon as the feed delivers it (a long-poll the issuer
// answers when it revokes), not at the token's exp; if the feed stays
// unreachable for --feed-max-stale, every token is refused (fail closed).
// With --decryption-key it also accepts the encrypted access tokens of
// clients registered with `latch client create --encrypt-to`. With --dpop
// it also accepts DPoP-bound access tokens (RFC 9449), each request with a
// proof signed by the key the token is bound to; a bound token sent as a
// plain Bearer token is refused either way.
//
//	go run ./examples/api --issuer http://127.0.0.1:8080 --audience api --insecure-allow-http
//	LATCH_CLIENT_SECRET=... go run ./examples/api --issuer http://127.0.0.1:8080 --audience api \
//	    --insecure-allow-http --client-id api
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, log); err != nil {
		log.Error("api", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "latch issuer URL")
	audience := fs.String("audience", "api", "this API's identifier, which tokens must carry in aud")
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on; port 0 picks a free port (logged)")
	insecure := fs.Bool("insecure-allow-http", false, "allow an http issuer (local development only)")
	clientID := fs.String("client-id", "", "this API's confidential client at the issuer: follow its revocation feed (secret in LATCH_CLIENT_SECRET)")
	maxStale := fs.Duration("feed-max-stale", verify.DefaultMaxStale, "with --client-id: refuse every token once the revocation feed has been unreachable this long")
	decryptionKey := fs.String("decryption-key", "", "a file with this API's private EC JWK, to accept access tokens encrypted to it")
	requireEncryption := fs.Bool("require-encryption", false, "with --decryption-key: refuse access tokens that are not encrypted")
	dpopOn := fs.Bool("dpop", false, "accept DPoP-bound access tokens (Authorization: DPoP and a DPoP proof, RFC 9449)")
	externalURL := fs.String("external-url", "", "with --dpop: the URL clients call this API at (the proofs' htu), when a proxy stands in front; default from the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := verify.Config{Issuer: *issuer, Audience: *audience, InsecureAllowHTTP: *insecure, Logger: log, RequireEncryption: *requireEncryption}
	if *dpopOn {
		// One checker, so one replay cache sees every proof; defaults:
		// ES256, EdDSA, PS256 and RS256, proofs valid 60s.
		checker, err := dpop.New(dpop.Config{})
		if err != nil {
			return err
		}
		cfg.DPoP, cfg.ExternalURL = checker, *externalURL
	} else if *externalURL != "" {
		return errors.New("--external-url is for --dpop")
	}
	if *decryptionKey != "" {
		k, err := readPrivateJWK(*decryptionKey)
		if err != nil {
			return err
		}
		cfg.DecryptionKeys = []jose.JSONWebKey{k}
	}
	if *clientID != "" {
		secret := getenv("LATCH_CLIENT_SECRET")
		if secret == "" {
			return errors.New("--client-id needs the client's secret in LATCH_CLIENT_SECRET")
		}
		// FollowRevocations returns after a first full read of the feed:
		// the API never serves with a denylist it has not filled.
		deny, err := verify.FollowRevocations(ctx, verify.FeedConfig{
			Issuer: *issuer, ClientID: *clientID, ClientSecret: secret, MaxStale: *maxStale,
			InsecureAllowHTTP: *insecure, Logger: log,
		})
		if err != nil {
			return err
		}
		defer deny.Close()
		cfg.IsRevoked = deny.IsRevoked
		log.Info("following the revocation feed", "client_id", *clientID, "denylisted", deny.Len())
	}
	v, err := verify.New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: newHandler(v), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "issuer", *issuer, "audience", *audience, "dpop", *dpopOn)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler is the API: every route behind v's bearer-token check.
func newHandler(v *verify.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /hello", v.Middleware(verify.RequireScope("read")(http.HandlerFunc(hello))))
	return mux
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.ClaimsFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject, "client_id": c.ClientID, "scope": c.Scope})
}

// readPrivateJWK reads this API's private decryption key, a JWK file.
func readPrivateJWK(path string) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	b, err := os.ReadFile(path)
	if err != nil {
		return k, fmt.Errorf("--decryption-key: %w", err)
	}
	if err := k.UnmarshalJSON(b); err != nil {
		return k, fmt.Errorf("--decryption-key %s: not a JWK: %w", path, err)
	}
	if k.IsPublic() {
		return k, fmt.Errorf("--decryption-key %s is a public key; the API needs its private key (the issuer gets the public one)", path)
	}
	return k, nil
}
