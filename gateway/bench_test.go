package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/internal/hopbench"
)

// The target: on a cache hit, the gateway adds at most 100 µs (p50)
// over a plain reverse proxy. Each benchmark below has two arms, the
// baseline (httputil.ReverseProxy with the same Rewrite and buffer pool,
// minus the token work) and the gateway, over the same transport to the same upstream:
//
//   - memory: the upstream is an in-process RoundTripper, so the numbers
//     are the proxies' own CPU cost and the difference is the gateway's
//     overhead alone;
//   - loopback: a real httptest upstream over TCP, as in a deployment with
//     the API on the same host; the network noise is in both arms.
//
// Each reports ns/op and its p50 and p99 per request. Run:
//
//	go test ./gateway/ -run '^$' -bench . -benchtime 20000x -count 5

// benchJWT is what the fake issuer hands out; the gateway never parses it.
const benchJWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl"

// fakeIssuer answers discovery and token exchange with benchJWT.
func fakeIssuer(b *testing.B) string {
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": base, "token_endpoint": base + "/oauth2/token"})
		case "/oauth2/token":
			json.NewEncoder(w).Encode(map[string]any{"access_token": benchJWT, "token_type": "Bearer", "expires_in": 300,
				"issued_token_type": "urn:ietf:params:oauth:token-type:jwt"})
		default:
			http.NotFound(w, r)
		}
	}))
	b.Cleanup(srv.Close)
	base = srv.URL
	return base
}

// benchPool gives the baseline the buffer pool the gateway has, so the
// difference between the arms is the token work alone.
type benchPool struct{}

var benchBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (benchPool) Get() []byte  { return *benchBuffers.Get().(*[]byte) }
func (benchPool) Put(b []byte) { benchBuffers.Put(&b) }

// memoryUpstream answers 200 "ok" without a network.
type memoryUpstream struct{}

func (memoryUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
}

func BenchmarkGateway_CacheHit(b *testing.B) {
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	b.Cleanup(loop.Close)
	issuer := fakeIssuer(b)
	opaque := freshOpaque(b)

	for _, tr := range []struct {
		name      string
		upstream  string
		transport func() http.RoundTripper
	}{
		{"memory", "http://upstream.internal", func() http.RoundTripper { return memoryUpstream{} }},
		{"loopback", loop.URL, func() http.RoundTripper {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = 64
			return t
		}},
	} {
		up, _ := url.Parse(tr.upstream)
		direct := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(up)
				pr.SetXForwarded()
			},
			Transport:  tr.transport(),
			BufferPool: benchPool{},
		}
		gw, err := gateway.New(context.Background(), gateway.Config{Issuer: issuer, ClientID: "gw", ClientSecret: "s",
			Upstream: up, Transport: tr.transport(), InsecureAllowHTTP: true, CacheTTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("transport="+tr.name+"/proxy=direct", func(b *testing.B) { benchProxy(b, direct, opaque) })
		b.Run("transport="+tr.name+"/proxy=gateway", func(b *testing.B) { benchProxy(b, gw, opaque) })
	}
}

// benchProxy sends GET /v1/things with the opaque token through h, one
// request at a time, and reports the p50 and p99 of the request latency.
func benchProxy(b *testing.B, h http.Handler, opaque string) {
	serve := func() {
		r := httptest.NewRequest(http.MethodGet, "/v1/things?x=1", nil)
		r.Header.Set("Authorization", "Bearer "+opaque)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	serve() // warm: the gateway's cache, the transport's connection
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		serve()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// proxyPair returns the two arms the interleaved benchmarks compare, in
// front of one loopback upstream that answers "ok": a plain ReverseProxy
// and the gateway (its cache keeping exchanged tokens for an hour), each
// with its own transport.
func proxyPair(b *testing.B) (*httputil.ReverseProxy, *gateway.Gateway) {
	b.Helper()
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	b.Cleanup(loop.Close)
	up, _ := url.Parse(loop.URL)
	transport := func() http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		return t
	}
	direct := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
		},
		Transport:  transport(),
		BufferPool: benchPool{},
	}
	gw, err := gateway.New(context.Background(), gateway.Config{Issuer: fakeIssuer(b), ClientID: "gw", ClientSecret: "s",
		Upstream: up, Transport: transport(), InsecureAllowHTTP: true, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return direct, gw
}

// BenchmarkGateway_Interleaved measures the gateway on a cache hit and a
// plain ReverseProxy to the same loopback upstream in one loop, request
// for request, so that the machine's load weighs on both alike: the
// sequential benchmark above compares runs seconds apart on a shared
// machine. added-p50-ns is the gateway's p50 minus the plain proxy's.
func BenchmarkGateway_Interleaved(b *testing.B) {
	direct, gw := proxyPair(b)
	opaque := freshOpaque(b)
	serve := func(h http.Handler) time.Duration {
		r := httptest.NewRequest(http.MethodGet, "/v1/things?x=1", nil)
		r.Header.Set("Authorization", "Bearer "+opaque)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return d
	}
	serve(direct)
	serve(gw)
	lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always finds the
		// upstream's connection just used.
		if i%2 == 0 {
			lat[0] = append(lat[0], serve(direct))
			lat[1] = append(lat[1], serve(gw))
		} else {
			lat[1] = append(lat[1], serve(gw))
			lat[0] = append(lat[0], serve(direct))
		}
	}
	b.StopTimer()
	var p50, mean [2]float64
	for k := range lat {
		var sum time.Duration
		for _, d := range lat[k] {
			sum += d
		}
		mean[k] = float64(sum.Nanoseconds()) / float64(len(lat[k]))
		slices.Sort(lat[k])
		p50[k] = float64(lat[k][len(lat[k])/2].Nanoseconds())
	}
	b.ReportMetric(p50[0], "direct-p50-ns")
	b.ReportMetric(p50[1], "gateway-p50-ns")
	b.ReportMetric(p50[1]-p50[0], "added-p50-ns")
	b.ReportMetric(mean[0]/mean[1], "throughput-ratio")
}

// BenchmarkGateway_Concurrent16 is the throughput comparison under load:
// 16 clients, each on its own keep-alive connection, send GET requests
// over loopback to the gateway (cache hit) and to a plain ReverseProxy,
// both in front of one upstream, in alternating rounds of 250 requests
// (internal/hopbench). b.N is the number of requests per arm.
// throughput-ratio is the gateway's req/s over the plain proxy's.
//
//	go test ./gateway/ -run '^$' -bench Concurrent16 -benchtime 40000x -count 3
func BenchmarkGateway_Concurrent16(b *testing.B) {
	direct, gw := proxyPair(b)
	directSrv := httptest.NewServer(direct)
	b.Cleanup(directSrv.Close)
	gwSrv := httptest.NewServer(gw)
	b.Cleanup(gwSrv.Close)
	opaque := freshOpaque(b)
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+opaque) }
	b.ResetTimer()
	res := hopbench.Run(b, 16, b.N, 250, [2]hopbench.Arm{
		{Name: "plain proxy", URL: directSrv.URL + "/v1/things?x=1", Prepare: bearer},
		{Name: "gateway", URL: gwSrv.URL + "/v1/things?x=1", Prepare: bearer},
	})
	b.StopTimer()
	hopbench.Report(b, res)
}
