package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkCheck compares, on ES256 proofs, Checker.Check (parse, jwk,
// thumbprint, signature, claims, htu normalization, ath, replay cache)
// with the bare signature check of the same proof (check/raw is the cost of
// everything else), and with go-jose parsing and verifying the same proof
// and computing its thumbprint, without any of the claim checks (the
// reason this package parses on the standard library).
func BenchmarkCheck(b *testing.B) {
	key := newECKey(b)
	p := mustProver(b, key)
	const n = 1 << 12
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = mustProof(b, p, "GET", testURL, testToken, "")
	}
	ctx := context.Background()
	b.Run("check", func(b *testing.B) {
		c := mustChecker(b, Config{Replay: NewMemoryReplayCache(n, fixedClock)})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == n { // every proof once: a fresh cache
				b.StopTimer()
				c = mustChecker(b, Config{Replay: NewMemoryReplayCache(n, fixedClock)})
				i = 0
				b.StartTimer()
			}
			if _, err := c.Check(ctx, proofs[i], getRequest()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	proof := proofs[0]
	dot := strings.LastIndexByte(proof, '.')
	sig, _ := b64.DecodeString(proof[dot+1:])
	input := []byte(proof[:dot])
	b.Run("raw", func(b *testing.B) {
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		b.ReportAllocs()
		for b.Loop() {
			h := sha256.Sum256(input)
			if !ecdsa.Verify(&key.PublicKey, h[:], r, s) {
				b.Fatal("raw verify failed")
			}
		}
	})
	b.Run("go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
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
		}
	})
}
