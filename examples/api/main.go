// Command api is a small JSON API protected by latch's verify package: the
// smallest resource server there is. GET /hello answers who called, from the
// claims of the JWT access token that verify checked locally; it needs the
// scope "read".
//
// It accepts JWT access tokens only: behind `latch gateway`, clients holding
// opaque tokens reach it too, since the gateway forwards a JWT in their
// stead; an opaque token sent to it directly is refused.
//
//	go run ./examples/api --issuer http://127.0.0.1:8080 --audience api --insecure-allow-http
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

	"github.com/latch-auth/latch/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], log); err != nil {
		log.Error("api", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "latch issuer URL")
	audience := fs.String("audience", "api", "this API's identifier, which tokens must carry in aud")
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on; port 0 picks a free port (logged)")
	insecure := fs.Bool("insecure-allow-http", false, "allow an http issuer (local development only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := verify.New(ctx, verify.Config{Issuer: *issuer, Audience: *audience, InsecureAllowHTTP: *insecure, Logger: log})
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
	log.Info("listening", "addr", ln.Addr().String(), "issuer", *issuer, "audience", *audience)
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
