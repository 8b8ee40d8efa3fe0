package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch/internal/cputime"
)

// BenchmarkCheck runs, interleaved in one loop on ES256 proofs so that all
// three see the same machine load: Checker.Check in full (parse, checked
// header from the cache, signature, claims, htu, ath, replay cache), the
// bare signature check of the same proof, and go-jose parsing and verifying
// the proof and computing its thumbprint, without any claim check (the
// reason this package parses on the standard library). It reports each
// one's CPU time (the benchmark thread's) and check/raw and go-jose/raw.
func BenchmarkCheck(b *testing.B) {
	key := newECKey(b)
	p := mustProver(b, key)
	const n = 1 << 12
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = mustProof(b, p, "GET", testURL, testToken, "")
	}
	proof := proofs[0]
	dot := strings.LastIndexByte(proof, '.')
	sig, _ := b64.DecodeString(proof[dot+1:])
	input := []byte(proof[:dot])
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	ctx := context.Background()
	c := mustChecker(b, Config{Replay: NewMemoryReplayCache(n, fixedClock)})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var checkT, rawT, joseT time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == n { // every proof once: a fresh cache
			c.cfg.Replay = NewMemoryReplayCache(n, fixedClock)
			i = 0
		}
		t0 := cputime.Thread()
		if _, err := c.Check(ctx, proofs[i], getRequest()); err != nil {
			b.Fatal(err)
		}
		t1 := cputime.Thread()
		h := sha256.Sum256(input)
		if !ecdsa.Verify(&key.PublicKey, h[:], r, s) {
			b.Fatal("raw verify failed")
		}
		t2 := cputime.Thread()
		jws, err := jose.ParseSigned(proofs[i], []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			b.Fatal(err)
		}
		jwk := jws.Signatures[0].Header.JSONWebKey
		if jwk == nil || !jwk.IsPublic() {
			b.Fatal("no public jwk")
		}
		if _, err := jws.Verify(jwk); err != nil {
			b.Fatal(err)
		}
		if _, err := jwk.Thumbprint(crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		t3 := cputime.Thread()
		checkT += t1 - t0
		rawT += t2 - t1
		joseT += t3 - t2
		i++
	}
	if rawT > 0 {
		b.ReportMetric(float64(checkT.Nanoseconds())/float64(b.N), "cpu-ns/check")
		b.ReportMetric(float64(rawT.Nanoseconds())/float64(b.N), "cpu-ns/raw")
		b.ReportMetric(float64(joseT.Nanoseconds())/float64(b.N), "cpu-ns/go-jose")
		b.ReportMetric(float64(checkT)/float64(rawT), "check/raw")
		b.ReportMetric(float64(joseT)/float64(rawT), "go-jose/raw")
	}
}
