package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

// BenchmarkVerify_Cold compares, on the same token, a cache miss of
// Verifier.Verify (SHA-256 of the token, cache lookup, token.Verify with
// the cached JWKS key, required claims, cache insert) with the bare crypto
// call on the precomputed signing input. verify/raw is the cost of
// everything that is not the signature check; the target is <= 1.10.
func BenchmarkVerify_Cold(b *testing.B) {
	for _, alg := range []latch.Algorithm{latch.ES256, latch.EdDSA} {
		k := newKey(b, "k-"+string(alg), alg)
		is := newIssuer(b, k)
		c := newClock()
		cfg := is.config(c)
		v := mustNew(b, cfg)
		tok := mustSign(b, k, "at+jwt", claimsAt(is, c))
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := enc.DecodeString(tok[dot+1:])
		ctx := context.Background()

		b.Run(string(alg)+"/verify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.cache.Flush() // every iteration is a miss
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/raw", func(b *testing.B) {
			var ok func() bool
			switch pub := k.priv.Public().(type) {
			case *ecdsa.PublicKey:
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				ok = func() bool {
					h := sha256.Sum256(input)
					return ecdsa.Verify(pub, h[:], r, s)
				}
			case ed25519.PublicKey:
				ok = func() bool { return ed25519.Verify(pub, input, sig) }
			}
			b.ReportAllocs()
			for b.Loop() {
				if !ok() {
					b.Fatal("raw verify failed")
				}
			}
		})
	}
}

// BenchmarkVerify_CacheHit is the hot path for a token seen before: SHA-256
// of the token, a read-locked map lookup, the exp check and the denylist
// hook. Target: <= 2 µs, <= 5 allocs.
func BenchmarkVerify_CacheHit(b *testing.B) {
	k := newKey(b, "k1", latch.ES256)
	is := newIssuer(b, k)
	c := newClock()
	cfg := is.config(c)
	cfg.IsRevoked = func(context.Context, string, string) bool { return false }
	v := mustNew(b, cfg)
	tok := mustSign(b, k, "at+jwt", claimsAt(is, c))
	ctx := context.Background()
	must(v.Verify(ctx, tok))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify_CacheHitParallel is the cache hit under contention (one
// RWMutex for the whole cache).
func BenchmarkVerify_CacheHitParallel(b *testing.B) {
	k := newKey(b, "k1", latch.ES256)
	is := newIssuer(b, k)
	c := newClock()
	v := mustNew(b, is.config(c))
	tok := mustSign(b, k, "at+jwt", claimsAt(is, c))
	must(v.Verify(context.Background(), tok))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMiddleware is a whole request through Middleware and
// RequireScope to an empty handler, token cached.
func BenchmarkMiddleware(b *testing.B) {
	k := newKey(b, "k1", latch.ES256)
	is := newIssuer(b, k)
	c := newClock()
	v := mustNew(b, is.config(c))
	tok := mustSign(b, k, "at+jwt", claimsAt(is, c))
	h := v.Middleware(RequireScope("read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatal(w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkVerify_ColdEncrypted compares cache misses of one access token
// sent plain (a JWS) and encrypted to this resource server (a JWE,
// ECDH-ES+A256KW/A256GCM on P-256, as latch issues for a client registered
// with --encrypt-to): the difference is the decryption, one ECDH, an AES
// key unwrap and AES-GCM. A cache hit costs the same for both.
func BenchmarkVerify_ColdEncrypted(b *testing.B) {
	s := newEncSetup(b)
	v := mustNew(b, s.config())
	jws, _ := s.token(b)
	jwe := s.enc.seal(b, jws)
	ctx := context.Background()
	for _, tc := range []struct{ name, tok string }{{"jws", jws}, {"jwe", jwe}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.cache.Flush()
				if _, err := v.Verify(ctx, tc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
