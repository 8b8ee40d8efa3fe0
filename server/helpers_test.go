package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/sqlite"
)

type clock = latchtest.Clock
type lockedBuffer = latchtest.LockedBuffer

const testIssuer = "https://auth.test"

// env is a server on a real SQLite store with a fixed clock.
type env struct {
	t       testing.TB
	srv     *server.Server
	h       http.Handler
	db      *sqlite.DB
	keys    *keys.Manager
	clock   *clock
	logs    *lockedBuffer
	clients *registry.Clients
}

type creds struct{ ID, Secret string }

func newEnv(t testing.TB, mutate ...func(*server.Config)) *env {
	t.Helper()
	db := latchtest.Store(t)
	clk := latchtest.NewClock(time.Now().Truncate(time.Second))
	km := latchtest.Keys(t, db, clk.Now)
	logs := &lockedBuffer{}
	cfg := server.Config{Issuer: testIssuer, Store: db, Keys: km, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, h: srv.Handler(), db: db, keys: km, clock: clk, logs: logs,
		clients: &registry.Clients{Store: db, Now: clk.Now}}
}

func (e *env) client(spec registry.ClientSpec) creds {
	e.t.Helper()
	v, err := e.clients.Create(context.Background(), spec)
	if err != nil {
		e.t.Fatalf("create client: %v", err)
	}
	return creds{v.ID, v.Secret}
}

func (e *env) jwtClient() creds {
	return e.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api", "other-api"}})
}

// resourceServer is the client of a resource server for the audiences
// of jwtClient and opaqueClient: registered for latch:introspect, it may
// introspect their tokens (the introspection policy).
func (e *env) resourceServer() creds {
	return e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{"api", "other-api"}})
}

// registrationClaim is the claim that ties a JWT access token to c's
// registration, for tests that sign tokens themselves.
func (e *env) registrationClaim(c creds) map[string]any {
	e.t.Helper()
	cl, err := e.db.Client(context.Background(), c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return map[string]any{authority.ClaimRegistration: cl.RegistrationID}
}

func (e *env) opaqueClient() creds {
	return e.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api"}, AccessTokenFormat: "opaque"})
}

// do sends a form POST with client_secret_basic (when c.ID is set).
func (e *env) do(path string, c creds, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ID != "" {
		r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) get(path string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) token(c creds, form url.Values) string {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	w := e.do("/oauth2/token", c, form)
	if w.Code != 200 {
		e.t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(e.t, w.Body.Bytes(), &tr)
	return tr.AccessToken
}

// introspect returns the raw body of the introspection answer.
func (e *env) introspect(c creds, tok string) string {
	e.t.Helper()
	w := e.do("/oauth2/introspect", c, url.Values{"token": {tok}})
	if w.Code != 200 {
		e.t.Fatalf("introspect: %d %s", w.Code, w.Body)
	}
	return strings.TrimSpace(w.Body.String())
}

func mustJSON(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

func readAll(tb testing.TB, r io.Reader) string {
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

const inactive = `{"active":false}`
