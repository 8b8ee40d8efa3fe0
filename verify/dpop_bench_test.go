package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/internal/cputime"
)

// swapCache is a MemoryReplayCache the benchmark replaces when it has used
// up its pre-made proofs, so every proof is seen once.
type swapCache struct {
	p atomic.Pointer[dpop.MemoryReplayCache]
}

func (s *swapCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	return s.p.Load().Seen(ctx, key, until)
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkDPoPRequest is a whole DPoP request through the middleware
// (ES256 token, ES256 proof, a new proof each time) and the bare signature
// check of the same token, interleaved in one loop so that both see the
// same machine load; it reports each one's ns and their ratio (x-raw).
// dpop-cold verifies the token's signature on every request
// (DisableCache): two signatures, and the target is x-raw <= 2.1.
// x-raw-cpu is the same ratio in the CPU time of the benchmark's thread,
// which a loaded machine disturbs less (GC work on other threads is not in
// it, for either side).
// dpop-cached is the usual case, the token from the cache and the proof
// checked. bearer-cold is the same token, unbound, without DPoP.
func BenchmarkDPoPRequest(b *testing.B) {
	const n = 1 << 12
	var cache swapCache
	for _, tc := range []struct {
		name    string
		disable bool
		scheme  string
	}{{"dpop-cold", true, "DPoP"}, {"dpop-cached", false, "DPoP"}, {"bearer-cold", true, "Bearer"}} {
		s := newDPoPSetup(b, func(c *Config, d *dpop.Config) {
			c.DisableCache = tc.disable
			d.Replay = &cache
		})
		h := s.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		tok := s.tok
		if tc.scheme == "Bearer" {
			tok = s.boundToken(b, "")
		}
		proofs := make([]string, n)
		if tc.scheme == "DPoP" {
			for i := range proofs {
				proofs[i] = s.proof(b, "GET", resourceURL, tok)
			}
		}
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := enc.DecodeString(tok[dot+1:])
		pub := s.k.priv.Public().(*ecdsa.PublicKey)
		sr, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])

		b.Run(tc.name, func(b *testing.B) {
			cache.p.Store(dpop.NewMemoryReplayCache(n, s.c.Now))
			r := dpopRequest(tok)
			r.Header.Set("Authorization", tc.scheme+" "+tok)
			w := &discardWriter{h: http.Header{}}
			var reqNs, rawNs, reqCPU, rawCPU time.Duration
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if i == n {
					cache.p.Store(dpop.NewMemoryReplayCache(n, s.c.Now))
					i = 0
				}
				if tc.scheme == "DPoP" {
					r.Header["Dpop"] = []string{proofs[i]}
				}
				i++
				clear(w.h)
				c0, t0 := cputime.Thread(), time.Now()
				h.ServeHTTP(w, r)
				c1, t1 := cputime.Thread(), time.Now()
				hh := sha256.Sum256(input)
				ok := ecdsa.Verify(pub, hh[:], sr, ss)
				c2, t2 := cputime.Thread(), time.Now()
				reqNs += t1.Sub(t0)
				rawNs += t2.Sub(t1)
				reqCPU += c1 - c0
				rawCPU += c2 - c1
				if w.h.Get("WWW-Authenticate") != "" || !ok {
					b.Fatal(w.h.Get("WWW-Authenticate"), ok)
				}
			}
			b.ReportMetric(float64(reqNs.Nanoseconds())/float64(b.N), "ns/request")
			b.ReportMetric(float64(rawNs.Nanoseconds())/float64(b.N), "ns/raw")
			b.ReportMetric(float64(reqNs)/float64(rawNs), "x-raw")
			if rawCPU > 0 {
				b.ReportMetric(float64(reqCPU)/float64(rawCPU), "x-raw-cpu")
			}
		})
	}
}
