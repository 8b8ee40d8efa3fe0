package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkIDTokenSign measures what signing one ID token costs with each
// key latch can keep for it, the figure behind DefaultRSABits: a 3072-bit
// key would sign every login several times slower than 2048.
func BenchmarkIDTokenSign(b *testing.B) {
	digest := sha256.Sum256([]byte("header.payload of an ID token"))
	for _, k := range []struct {
		name string
		gen  func() (crypto.Signer, error)
	}{
		{"ES256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
		{"RS256-2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
		{"RS256-3072", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) }},
	} {
		key, err := k.gen()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
