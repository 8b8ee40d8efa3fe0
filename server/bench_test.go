package server_test

// In-process benchmarks of the hot endpoints: the handler returned by
// server.New on a real SQLite store in a temporary directory, driven through
// httptest without a network. They measure the server's own cost per
// request (form parsing, client authentication, the store lookup or the
// signature, JSON encoding), not the HTTP stack's; tools/loadgen measures
// the whole thing against a running `latch serve`.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/cputime"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/server"
)

// benchEnv is a server on a fresh SQLite store with one JWT client and one
// opaque-token client.
type benchEnv struct {
	srv                  *server.Server
	h                    http.Handler
	jwtAuth, opaqueAuth  string // Authorization header values (client_secret_basic)
	jwtClient, opqClient string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	db := latchtest.Store(b)
	m := latchtest.Keys(b, db, nil)
	srv, err := server.New(server.Config{
		Issuer: "http://127.0.0.1", InsecureAllowHTTP: true, Store: db, Keys: m,
		// The default limit (2000/s, burst 4000) would answer 429 after a
		// few thousand iterations: the limiter is not what is measured.
		IntrospectionRate: rate.Inf,
	})
	if err != nil {
		b.Fatal(err)
	}
	clients := &registry.Clients{Store: db}
	e := &benchEnv{srv: srv, h: srv.Handler()}
	for _, c := range []struct {
		id, format string
		auth       *string
	}{
		{"bench-jwt", string(latch.FormatJWT), &e.jwtAuth},
		{"bench-opaque", string(latch.FormatOpaque), &e.opaqueAuth},
	} {
		v, err := clients.Create(ctx, registry.ClientSpec{
			ID: c.id, GrantTypes: []string{latch.GrantClientCredentials},
			// latch:introspect: bench-jwt is also the resource server of
			// api that introspects bench-opaque's tokens.
			Scope: "read write " + latch.ScopeIntrospect, Audiences: []string{"api"}, AccessTokenFormat: c.format,
		})
		if err != nil {
			b.Fatal(err)
		}
		*c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(v.ID)+":"+url.QueryEscape(v.Secret)))
	}
	e.jwtClient, e.opqClient = "bench-jwt", "bench-opaque"
	return e
}

// post runs one request through the handler and returns the recorder.
func (e *benchEnv) post(path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// issue gets an access token for the client behind auth.
func (e *benchEnv) issue(b *testing.B, auth string) string {
	b.Helper()
	w := e.post("/oauth2/token", auth, "grant_type=client_credentials&scope=read")
	if w.Code != http.StatusOK {
		b.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.AccessToken == "" {
		b.Fatalf("token response %s: %v", w.Body, err)
	}
	return resp.AccessToken
}

func benchIntrospect(b *testing.B, opaque bool) {
	e := newBenchEnv(b)
	issuer := e.jwtAuth
	if opaque {
		issuer = e.opaqueAuth
	}
	tok := e.issue(b, issuer)
	if opaque != strings.HasPrefix(tok, "lt_at_") {
		b.Fatalf("issued %q, want opaque=%v", tok, opaque)
	}
	body := url.Values{"token": {tok}}.Encode()
	// The resource server asking is the JWT client, for both formats.
	if w := e.post("/oauth2/introspect", e.jwtAuth, body); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
		b.Fatalf("introspect: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := e.post("/oauth2/introspect", e.jwtAuth, body); w.Code != http.StatusOK {
			b.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkIntrospect_Opaque: RFC 7662 introspection of an opaque access
// token: client authentication (a SQLite read and a SHA-256), the token
// lookup (a SQLite read) and the JSON answer.
func BenchmarkIntrospect_Opaque(b *testing.B) { benchIntrospect(b, true) }

// BenchmarkIntrospect_Opaque_TokenCache is BenchmarkIntrospect_Opaque with
// the server's background loop running, so the revocation feed keeps the
// token cache usable and the token comes from memory.
func BenchmarkIntrospect_Opaque_TokenCache(b *testing.B) {
	e := newBenchEnv(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	body := url.Values{"token": {e.issue(b, e.opaqueAuth)}}.Encode()
	hits := func() string {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		for line := range strings.Lines(w.Body.String()) {
			if strings.HasPrefix(line, `latch_token_cache_lookups_total{result="hit"}`) {
				return line
			}
		}
		return ""
	}
	// Wait for the feed's first read of the log, after which the token
	// is cached at its next introspection.
	for start := hits(); hits() == start; {
		e.post("/oauth2/introspect", e.jwtAuth, body)
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := e.post("/oauth2/introspect", e.jwtAuth, body); w.Code != http.StatusOK {
			b.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkIntrospect_JWT: introspection of an ES256 JWT access token:
// client authentication, one signature verification and a denylist read.
func BenchmarkIntrospect_JWT(b *testing.B) { benchIntrospect(b, false) }

// BenchmarkIntrospect_Opaque_Parallel is BenchmarkIntrospect_Opaque from
// GOMAXPROCS goroutines, to show contention (reader pool, limiter mutex).
func BenchmarkIntrospect_Opaque_Parallel(b *testing.B) {
	e := newBenchEnv(b)
	body := url.Values{"token": {e.issue(b, e.opaqueAuth)}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := e.post("/oauth2/introspect", e.jwtAuth, body); w.Code != http.StatusOK {
				b.Errorf("introspect: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}

func benchToken(b *testing.B, opaque bool) {
	e := newBenchEnv(b)
	auth := e.jwtAuth
	if opaque {
		auth = e.opaqueAuth
	}
	if tok := e.issue(b, auth); opaque != strings.HasPrefix(tok, "lt_at_") {
		b.Fatalf("issued %q, want opaque=%v", tok, opaque)
	}
	const body = "grant_type=client_credentials&scope=read"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := e.post("/oauth2/token", auth, body); w.Code != http.StatusOK {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkToken_ClientCredentials_JWT: a client_credentials grant issuing
// an ES256 JWT: client authentication and one signature, no write.
func BenchmarkToken_ClientCredentials_JWT(b *testing.B) { benchToken(b, false) }

// BenchmarkToken_ClientCredentials_Opaque: a client_credentials grant
// issuing an opaque token: client authentication and one durable SQLite
// write (synchronous=FULL, so one fsync per token).
func BenchmarkToken_ClientCredentials_Opaque(b *testing.B) { benchToken(b, true) }

// BenchmarkToken_ClientCredentials_Opaque_C16 is the opaque grant from 16
// goroutines (the load test's -c 16): the writes meet in the group
// committer, so this is the in-process view of the HTTP row and the one to
// profile (-cpuprofile) for where issuance's time goes.
func BenchmarkToken_ClientCredentials_Opaque_C16(b *testing.B) {
	e := newBenchEnv(b)
	const body = "grant_type=client_credentials&scope=read"
	b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := e.post("/oauth2/token", e.opaqueAuth, body); w.Code != http.StatusOK {
				b.Errorf("token: %d %s", w.Code, w.Body)
				return
			}
		}
	})
	reportProcessCPU(b, cpu0)
}

// reportProcessCPU reports the process's CPU time since cpu0
// (cputime.Process) per operation, as cpu-µs/op: the committer's and the
// syncer's goroutines included, which a write's wall time does not show.
// Over HTTP the load generator has the other core, so this CPU per request
// is what bounds a CPU-bound row of the load test.
func reportProcessCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}
