package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

func BenchmarkSign(b *testing.B) {
	for _, alg := range latch.Algorithms {
		b.Run(string(alg), func(b *testing.B) {
			s := keysFor(b)[alg].signer
			c := testClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign("at+jwt", c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify compares, on the same token:
//   - latch:  Verify, everything included (parsing, policy, claims);
//   - raw:    the bare crypto call on the precomputed signing input (hash of
//     the signing input included, as any verifier must compute it);
//   - gojose: jose.ParseSigned + Verify + json.Unmarshal into Claims, the
//     library we would otherwise use.
//
// latch/raw is the cost of everything that is not the signature check.
func BenchmarkVerify(b *testing.B) {
	ks := testKeySet(b)
	opts := testOptions()
	for _, alg := range []latch.Algorithm{latch.ES256, latch.EdDSA, latch.RS256} {
		k := keysFor(b)[alg]
		tok := mustSign(b, k.signer, "at+jwt", testClaims())
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := b64.DecodeString(tok[dot+1:])
		pub := k.priv.Public()

		b.Run(string(alg)+"/latch", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(context.Background(), tok, ks, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/raw", func(b *testing.B) {
			var ok func() bool
			switch alg {
			case latch.ES256:
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				ok = func() bool {
					h := sha256.Sum256(input)
					return ecdsa.Verify(pub.(*ecdsa.PublicKey), h[:], r, s)
				}
			case latch.EdDSA:
				ok = func() bool { return ed25519.Verify(pub.(ed25519.PublicKey), input, sig) }
			case latch.RS256:
				ok = func() bool {
					h := sha256.Sum256(input)
					return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, h[:], sig) == nil
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if !ok() {
					b.Fatal("raw verify failed")
				}
			}
		})
		b.Run(string(alg)+"/gojose", func(b *testing.B) {
			algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
			b.ReportAllocs()
			for b.Loop() {
				jws, err := jose.ParseSigned(tok, algs)
				if err != nil {
					b.Fatal(err)
				}
				payload, err := jws.Verify(pub)
				if err != nil {
					b.Fatal(err)
				}
				var c Claims
				if err := json.Unmarshal(payload, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewOpaque(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewOpaque(latch.KindAccess, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOpaque(b *testing.B) {
	tok, _ := NewOpaque(latch.KindAccess, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseOpaque(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	tok, _ := NewOpaque(latch.KindAccess, nil)
	b.ReportAllocs()
	for b.Loop() {
		Hash(tok)
	}
}

func BenchmarkClaimsUnmarshal(b *testing.B) {
	data := []byte(mustJSON(b, testClaims()))
	b.ReportAllocs()
	for b.Loop() {
		var c Claims
		if _, err := c.parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
