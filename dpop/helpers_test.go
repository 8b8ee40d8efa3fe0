package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// epoch is the tests' fixed clock.
var epoch = time.Unix(1_800_000_000, 0)

const (
	testURL   = "https://api.example.com/v1/items"
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
)

func fixedClock() time.Time { return epoch }

func mustChecker(tb testing.TB, cfg Config) *Checker {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedClock
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustProver(tb testing.TB, key crypto.Signer) *Prover {
	tb.Helper()
	p, err := NewProver(key)
	if err != nil {
		tb.Fatal(err)
	}
	return p.WithClock(fixedClock)
}

func mustProof(tb testing.TB, p *Prover, method, url, tok, nonce string) string {
	tb.Helper()
	s, err := p.Proof(method, url, tok, nonce)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// forge signs any header and claims with key under alg: the proofs a
// well-behaved Prover never makes.
func forge(tb testing.TB, key crypto.Signer, alg latch.Algorithm, header, claims any) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sig, err := token.SignSignature(alg, key, []byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// publicJWK is key's public JWK as a map, to be altered by a test.
func publicJWK(tb testing.TB, key crypto.Signer) map[string]any {
	tb.Helper()
	p := mustProver(tb, key)
	hb, err := b64.DecodeString(p.header[:len(p.header)-1])
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		JWK map[string]any `json:"jwk"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		tb.Fatal(err)
	}
	return h.JWK
}

// goodClaims are the claims of a valid proof for GET testURL with testToken.
func goodClaims() map[string]any {
	return map[string]any{
		"jti": "id-1", "htm": "GET", "htu": testURL, "iat": epoch.Unix(), "ath": TokenHash(testToken),
	}
}

func goodHeader(tb testing.TB, key crypto.Signer) map[string]any {
	return map[string]any{"typ": Type, "alg": "ES256", "jwk": publicJWK(tb, key)}
}

func getRequest() Request {
	return Request{Method: "GET", URL: testURL, AccessToken: testToken}
}

func wantErr(tb testing.TB, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("error %v, want %v", err, want)
	}
}

func check(c *Checker, proof string, req Request) error {
	_, err := c.Check(context.Background(), proof, req)
	return err
}

func newRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newEdKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
