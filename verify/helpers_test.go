package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/token"
)

type clock = latchtest.Clock

const testAudience = "https://api.example"

var enc = base64.RawURLEncoding

// testKey is a signing key made by token.NewSigner, with its JWK.
type testKey struct {
	kid    string
	alg    latch.Algorithm
	priv   crypto.Signer
	signer *token.Signer
}

func newKey(tb testing.TB, kid string, alg latch.Algorithm) *testKey {
	tb.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case latch.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case latch.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case latch.RS256, latch.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(kid, alg, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return &testKey{kid: kid, alg: alg, priv: priv, signer: s}
}

// jwk returns the public JWK of k with alg and use sig, as latch publishes.
func (k *testKey) jwk() map[string]any {
	m := pubJWK(k.priv.Public())
	m["kid"], m["alg"], m["use"] = k.kid, string(k.alg), "sig"
	return m
}

func pubJWK(pub crypto.PublicKey) map[string]any {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		b, _ := p.Bytes()
		return map[string]any{"kty": "EC", "crv": "P-256", "x": enc.EncodeToString(b[1:33]), "y": enc.EncodeToString(b[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": enc.EncodeToString(p)}
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": enc.EncodeToString(p.N.Bytes()), "e": enc.EncodeToString(big.NewInt(int64(p.E)).Bytes())}
	}
	panic("unknown key type")
}

func newClock() *clock { return latchtest.NewClock(time.Now().Truncate(time.Second)) }

// issuer is a real HTTP authorization server stand-in: RFC 8414 and OIDC
// metadata and a JWKS, with every request counted by path.
type issuer struct {
	srv *httptest.Server
	URL string // the issuer identifier

	mu           sync.Mutex
	jwks         []any  // the published keys (JWK objects)
	mdIssuer     string // issuer written in the metadata; URL by default
	cacheControl string
	down         bool
	no8414       bool
	jwksDelay    time.Duration

	jwksFetches atomic.Int64
	hits        sync.Map // path -> *atomic.Int64
}

func newIssuer(tb testing.TB, keys ...*testKey) *issuer {
	tb.Helper()
	is := &issuer{cacheControl: "public, max-age=300"}
	is.srv = httptest.NewServer(http.HandlerFunc(is.serve))
	tb.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	for _, k := range keys {
		is.publish(k.jwk())
	}
	return is
}

func (is *issuer) publish(jwks ...any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwks = append(is.jwks, jwks...)
}

func (is *issuer) setKeys(keys ...*testKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwks = nil
	for _, k := range keys {
		is.jwks = append(is.jwks, k.jwk())
	}
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

// count returns how many requests path has had.
func (is *issuer) count(path string) int64 {
	if n, ok := is.hits.Load(path); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// countPrefix returns how many requests paths under prefix have had.
func (is *issuer) countPrefix(prefix string) int64 {
	var total int64
	is.hits.Range(func(k, v any) bool {
		if strings.HasPrefix(k.(string), prefix) {
			total += v.(*atomic.Int64).Load()
		}
		return true
	})
	return total
}

func (is *issuer) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := is.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	is.mu.Lock()
	down, no8414, delay := is.down, is.no8414, is.jwksDelay
	mdIssuer := is.mdIssuer
	if mdIssuer == "" {
		mdIssuer = is.URL
	}
	keys := append([]any{}, is.jwks...)
	cc := is.cacheControl
	is.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	md := map[string]any{"issuer": mdIssuer, "jwks_uri": is.srv.URL + "/jwks.json", "introspection_endpoint": is.srv.URL + "/introspect"}
	switch {
	case r.URL.Path == "/.well-known/oauth-authorization-server"+strings.TrimPrefix(is.URL, is.srv.URL) && !no8414:
		json.NewEncoder(w).Encode(md)
	case r.URL.Path == strings.TrimPrefix(is.URL, is.srv.URL)+"/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(md)
	case r.URL.Path == "/jwks.json":
		is.jwksFetches.Add(1)
		time.Sleep(delay)
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	default:
		http.NotFound(w, r)
	}
}

// config returns a Config for is, with a test clock.
func (is *issuer) config(c *clock) Config {
	return Config{
		Issuer:            is.URL,
		Audience:          testAudience,
		Algorithms:        []latch.Algorithm{latch.ES256, latch.EdDSA},
		InsecureAllowHTTP: true,
		Now:               c.Now,
	}
}

func mustNew(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	v, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

// claimsAt returns valid access-token claims for is at the clock's time.
func claimsAt(is *issuer, c *clock) *token.Claims {
	now := c.Now().Unix()
	return &token.Claims{
		Issuer: is.URL, Subject: "user-1", Audience: token.Audience{testAudience},
		ExpiresAt: now + 600, IssuedAt: now, NotBefore: now,
		ID: "jti-" + must(token.NewID(nil)), ClientID: "client-1", Scope: "read write",
	}
}

func mustSign(tb testing.TB, k *testKey, typ string, c *token.Claims) string {
	tb.Helper()
	s, err := k.signer.Sign(typ, c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// signRaw signs header and payload JSON with k as they are, for forgeries.
func signRaw(tb testing.TB, k *testKey, header, payload string) string {
	tb.Helper()
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	var sig []byte
	var err error
	switch k.alg {
	case latch.ES256:
		h := sha256Sum([]byte(input))
		r, s, e := ecdsa.Sign(rand.Reader, k.priv.(*ecdsa.PrivateKey), h[:])
		err = e
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case latch.EdDSA:
		sig = ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(input))
	default:
		tb.Fatalf("signRaw: %s", k.alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustJSON(v any) string { return string(must(json.Marshal(v))) }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// weakRSAJWK is an RS256 JWK with a 1024-bit modulus (RFC 7518 §3.3 asks
// for 2048).
func weakRSAJWK(tb testing.TB, kid string) map[string]any {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	m := pubJWK(&k.PublicKey)
	m["kid"], m["alg"], m["use"] = kid, "RS256", "sig"
	return m
}
