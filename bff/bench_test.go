package bff

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/latch-auth/latch/internal/hopbench"
)

// The proxy benchmarks measure what the BFF adds to an /api/* call whose
// session is valid and whose access token needs no refresh: the cookie,
// the session store read, the opening of the sealed session, the denylist
// check and the header rewriting. BenchmarkProxy_Direct is the baseline:
// the same request through a plain httputil.ReverseProxy to the same kind
// of upstream. Both run in-process (the handler is called directly) and
// forward over loopback TCP to an httptest server; the difference of the
// two is the BFF's own cost. BENCHMARKS.md has the numbers.

// okUpstream answers every request 200 "ok". It counts the requests that
// arrive without a bearer token, so that the BFF benchmark can show that
// what it measured really went through the session path.
type okUpstream struct {
	srv      *httptest.Server
	noBearer atomic.Int64
	proofs   atomic.Int64 // requests with a DPoP proof
	requests atomic.Int64
}

func newOKUpstream(tb testing.TB) *okUpstream {
	u := &okUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		if len(r.Header.Get("Authorization")) <= len("Bearer ") {
			u.noBearer.Add(1)
		}
		if r.Header.Get("DPoP") != "" {
			u.proofs.Add(1)
		}
		io.WriteString(w, "ok")
	}))
	tb.Cleanup(u.srv.Close)
	return u
}

// benchProxy serves GET /api/x with cookie (if any) to h, serially and in
// parallel, and fails on any answer but 200 "ok".
func benchProxy(b *testing.B, h http.Handler, cookie *http.Cookie) {
	serve := func() (int, string) {
		r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/api/x", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	// One call before timing: the answer must be the upstream's, not an
	// error of the BFF (login_required, upstream_unreachable, ...).
	if code, body := serve(); code != http.StatusOK || body != "ok" {
		b.Fatalf("GET /api/x: %d %q, want 200 \"ok\"", code, body)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if code, body := serve(); code != http.StatusOK {
				b.Fatalf("GET /api/x: %d %q", code, body)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var failed atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if code, _ := serve(); code != http.StatusOK {
					failed.Add(1)
				}
			}
		})
		b.StopTimer()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d answers were not 200", n)
		}
	})
}

// BenchmarkProxy_SessionHit: GET /api/x through the BFF with the session
// cookie of a real login (the authorization server in-process, over
// loopback, as in e2e_test.go), done once before the timed loops. The
// access token the server issued lives 10 minutes and the RefreshSkew is
// one minute, so no timed request refreshes; the benchmark fails if one
// reaches the token endpoint. The store is SQLite, and Redis too when
// LATCH_TEST_REDIS is set. With dpop=on the session's tokens are bound to
// the BFF's key and every request carries a fresh ES256 proof.
func BenchmarkProxy_SessionHit(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "dpop=off", true: "dpop=on"}[on]
		b.Run("store=sqlite/"+name, func(b *testing.B) { benchSessionHit(b, newSQLiteStore(b), on) })
		b.Run("store=redis/"+name, func(b *testing.B) { benchSessionHit(b, newRedisStore(b), on) })
	}
}

func benchSessionHit(b *testing.B, store Store, withDPoP bool) {
	e := newE2E(b, e2eOptions{store: store, dpop: withDPoP})
	a := e.newAgent()
	a.login("alice", alicePassword)
	cookie := a.sessionCookie()
	if cookie == nil {
		b.Fatal("no session cookie after login")
	}

	// A second BFF on the same store and key, so that it opens the
	// session of that login, but forwarding to the "ok" upstream instead
	// of e2e's API (whose token verification is not the BFF's cost). It
	// keeps e2e's revocation denylist (IsRevoked, Ready).
	up := newOKUpstream(b)
	cfg := e.b.cfg
	cfg.Upstream, _ = url.Parse(up.srv.URL)
	cfg.Transport = nil // a clone of http.DefaultTransport, as the baseline's
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	bff, err := New(e.ctx, cfg)
	if err != nil {
		b.Fatalf("bff.New: %v", err)
	}

	benchProxy(b, bff.Handler(), cookie)

	if n := e.counter.refreshes.Load(); n != 0 {
		b.Fatalf("%d refreshes during the benchmark; it must measure the session hit only", n)
	}
	if n := up.noBearer.Load(); n != 0 {
		b.Fatalf("%d of %d requests reached the upstream without a bearer token", n, up.requests.Load())
	}
	if want := map[bool]int64{false: 0, true: up.requests.Load()}[withDPoP]; up.proofs.Load() != want {
		b.Fatalf("%d of %d requests carried a DPoP proof, want %d", up.proofs.Load(), up.requests.Load(), want)
	}
}

// BenchmarkProxy_Direct is the baseline: the same request through a plain
// httputil.ReverseProxy, no session, no token.
func BenchmarkProxy_Direct(b *testing.B) {
	up := newOKUpstream(b)
	target, _ := url.Parse(up.srv.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	benchProxy(b, proxy, nil)
	if n := up.noBearer.Load(); n != up.requests.Load() {
		b.Fatalf("the direct proxy forwarded a bearer token (%d of %d without)", n, up.requests.Load())
	}
}

// BenchmarkProxy_Interleaved compares the BFF on a session hit (SQLite
// store) with a plain ReverseProxy to the same upstream under the same
// load: c clients, each on its own keep-alive connection over loopback,
// alternating rounds between the two (internal/hopbench). b.N is the
// number of requests per arm. added-p50-µs is what the BFF adds at the
// median; throughput-ratio is its req/s over the plain proxy's.
//
//	go test ./bff/ -run '^$' -bench Interleaved -benchtime 20000x -count 3
func BenchmarkProxy_Interleaved(b *testing.B) {
	e := newE2E(b, e2eOptions{store: newSQLiteStore(b)})
	a := e.newAgent()
	a.login("alice", alicePassword)
	cookie := a.sessionCookie()
	if cookie == nil {
		b.Fatal("no session cookie after login")
	}
	up := newOKUpstream(b)
	target, _ := url.Parse(up.srv.URL)
	cfg := e.b.cfg
	cfg.Upstream = target
	cfg.Transport = nil
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	bff, err := New(e.ctx, cfg)
	if err != nil {
		b.Fatalf("bff.New: %v", err)
	}
	direct := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	bffSrv := httptest.NewServer(bff.Handler())
	b.Cleanup(bffSrv.Close)
	directSrv := httptest.NewServer(direct)
	b.Cleanup(directSrv.Close)
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	var bffSent int64
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprint("c=", c), func(b *testing.B) {
			res := hopbench.Run(b, c, b.N, 250, [2]hopbench.Arm{
				{Name: "plain proxy", URL: directSrv.URL + "/api/x"},
				{Name: "bff", URL: bffSrv.URL + "/api/x", Prepare: withCookie},
			})
			b.StopTimer()
			hopbench.Report(b, res)
			bffSent += int64(res.Sent[1])
		})
	}
	if n := e.counter.refreshes.Load(); n != 0 {
		b.Fatalf("%d refreshes during the benchmark; it must measure the session hit only", n)
	}
	// The plain proxy forwards no token; every request through the BFF
	// must have arrived with one.
	if n := up.requests.Load() - up.noBearer.Load(); n != bffSent {
		b.Fatalf("%d requests reached the upstream with a bearer token, want the BFF's %d", n, bffSent)
	}
}
