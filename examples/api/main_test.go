package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// fakeIssuer publishes metadata and a JWKS with one ES256 key and returns
// its URL and a signer for that key. The end-to-end test in cmd/latch runs
// the API against the real server.
func fakeIssuer(t *testing.T) (string, *token.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	x, y := key.X.FillBytes(make([]byte, 32)), key.Y.FillBytes(make([]byte, 32))
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": base, "jwks_uri": base + "/jwks"})
		case "/jwks":
			json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y), "kid": "k1", "alg": "ES256", "use": "sig",
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	base = srv.URL
	signer, err := token.NewSigner("k1", latch.ES256, key)
	if err != nil {
		t.Fatal(err)
	}
	return base, signer
}

func TestHello_AnswersTheCallerWithScopeRead(t *testing.T) {
	iss, signer := fakeIssuer(t)
	v, err := verify.New(context.Background(), verify.Config{Issuer: iss, Audience: "api", InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(v)
	now := time.Now().Unix()
	mint := func(scope string) string {
		tok, err := signer.Sign("at+jwt", &token.Claims{Issuer: iss, Subject: "alice", Audience: token.Audience{"api"},
			ExpiresAt: now + 60, IssuedAt: now, ID: "j-" + scope, ClientID: "app", Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/hello", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := get("Bearer " + mint("read"))
	var got map[string]string
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got["sub"] != "alice" || got["client_id"] != "app" || got["scope"] != "read" {
		t.Fatalf("GET /hello with scope read: %d %s", w.Code, w.Body)
	}
	if w := get("Bearer " + mint("write")); w.Code != 403 {
		t.Fatalf("without scope read: %d", w.Code)
	}
	if w := get(""); w.Code != 401 {
		t.Fatalf("without a token: %d", w.Code)
	}
	if w := get("Bearer lt_at_notajwt"); w.Code != 401 {
		t.Fatalf("an opaque token: %d", w.Code)
	}
}

// lockedBuffer collects the API's log while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startIssuer runs the real authorization server in process, on a SQLite
// store, with its background loop (the revocation feed's broadcaster).
func startIssuer(t *testing.T) (*httptest.Server, *registry.Clients) {
	t.Helper()
	db := latchtest.Store(t)
	var h atomic.Pointer[http.Handler]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	srv, err := server.New(server.Config{Issuer: ts.URL, InsecureAllowHTTP: true, Store: db, Keys: latchtest.Keys(t, db, nil)})
	if err != nil {
		t.Fatal(err)
	}
	handler := srv.Handler()
	h.Store(&handler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ts, &registry.Clients{Store: db}
}

// startAPI runs the API's run with args on a free port and returns its
// base URL once it listens; it is stopped at cleanup.
func startAPI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append(args, "--listen", "127.0.0.1:0"), func(k string) string { return env[k] },
			slog.New(slog.NewJSONHandler(logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				return "http://" + rec.Addr
			}
		}
		select {
		case err := <-errc:
			errc <- err // for the cleanup
			t.Fatalf("run ended before listening: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not listen within 30s:\n%s", logs)
		}
	}
}

// TestRun_FollowsRevocationFeed_RevokedJWTRefused: with --client-id the
// API follows the real issuer's revocation feed, so a JWT revoked at the
// issuer is refused by the API long before its exp. (Without the flag the
// same test fails at its deadline: the token is valid for 10 minutes.)
func TestRun_FollowsRevocationFeed_RevokedJWTRefused(t *testing.T) {
	ts, clients := startIssuer(t)
	ctx := context.Background()
	rs, err := clients.Create(ctx, registry.ClientSpec{ID: "api-rs"}) // the API's own confidential client
	if err != nil {
		t.Fatal(err)
	}
	app, err := clients.Create(ctx, registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	api := startAPI(t, map[string]string{"LATCH_CLIENT_SECRET": rs.Secret},
		"--issuer", ts.URL, "--audience", "api", "--insecure-allow-http", "--client-id", rs.ID)

	post := func(path string, form url.Values) []byte {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(app.ID), url.QueryEscape(app.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}), &tr); err != nil {
		t.Fatal(err)
	}
	hello := func() int {
		req, _ := http.NewRequest(http.MethodGet, api+"/hello", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := hello(); code != 200 {
		t.Fatalf("GET /hello with a fresh token: %d", code)
	}
	post("/oauth2/revoke", url.Values{"token": {tr.AccessToken}})
	// The feed delivers the revocation within moments; the deadline only
	// guards against a hang.
	for deadline := time.Now().Add(20 * time.Second); hello() != http.StatusUnauthorized; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a revoked JWT was still accepted 20s after its revocation")
		}
	}
}

func TestRun_ClientIDWithoutSecret_IsAnError(t *testing.T) {
	err := run(context.Background(), []string{"--client-id", "api", "--listen", "127.0.0.1:0"}, func(string) string { return "" },
		slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "LATCH_CLIENT_SECRET") {
		t.Fatalf("run: %v", err)
	}
}
