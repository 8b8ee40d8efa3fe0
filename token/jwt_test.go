package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

const (
	testIssuer   = "https://issuer.example"
	testAudience = "https://api.example"
)

var testNow = time.Unix(1_800_000_000, 0)

// testKey is a key pair with its kid and algorithm.
type testKey struct {
	kid    string
	alg    latch.Algorithm
	priv   crypto.Signer
	signer *Signer
}

var (
	testKeysOnce sync.Once
	testKeysAll  map[latch.Algorithm]*testKey
)

// keysFor returns one key per algorithm, generated once per test binary
// (RSA generation is slow).
func keysFor(tb testing.TB) map[latch.Algorithm]*testKey {
	tb.Helper()
	testKeysOnce.Do(func() {
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rs, _ := rsa.GenerateKey(rand.Reader, 2048)
		ps, _ := rsa.GenerateKey(rand.Reader, 2048)
		testKeysAll = map[latch.Algorithm]*testKey{
			latch.ES256: {kid: "es", alg: latch.ES256, priv: ec},
			latch.EdDSA: {kid: "ed", alg: latch.EdDSA, priv: ed},
			latch.RS256: {kid: "rs", alg: latch.RS256, priv: rs},
			latch.PS256: {kid: "ps", alg: latch.PS256, priv: ps},
		}
		for _, k := range testKeysAll {
			s, err := NewSigner(k.kid, k.alg, k.priv)
			if err != nil {
				panic(err)
			}
			k.signer = s
		}
	})
	return testKeysAll
}

// keyEntry is one key of a staticKeys.
type keyEntry struct {
	pub crypto.PublicKey
	alg latch.Algorithm
}

// staticKeys is a KeySet of fixed keys.
type staticKeys map[string]keyEntry

func (k staticKeys) Key(_ context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	e, ok := k[kid]
	if !ok {
		return nil, "", fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	return e.pub, e.alg, nil
}

func testKeySet(tb testing.TB) staticKeys {
	ks := staticKeys{}
	for _, k := range keysFor(tb) {
		ks[k.kid] = keyEntry{k.priv.Public(), k.alg}
	}
	return ks
}

func testOptions() VerifyOptions {
	return VerifyOptions{
		Issuer:     testIssuer,
		Audience:   testAudience,
		Type:       "at+jwt",
		Algorithms: []latch.Algorithm{latch.ES256, latch.EdDSA, latch.RS256, latch.PS256},
		Leeway:     30 * time.Second,
		Now:        func() time.Time { return testNow },
	}
}

func testClaims() *Claims {
	return &Claims{
		Issuer:    testIssuer,
		Subject:   "user-1",
		Audience:  Audience{testAudience},
		ExpiresAt: testNow.Unix() + 600,
		IssuedAt:  testNow.Unix(),
		NotBefore: testNow.Unix(),
		ID:        "jti-1",
		ClientID:  "client-1",
		Scope:     "read write",
	}
}

func mustSign(tb testing.TB, s *Signer, typ string, claims any) string {
	tb.Helper()
	tok, err := s.Sign(typ, claims)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// signRaw signs an arbitrary header and payload (JSON text) with k, so a test
// can build a correctly signed token that our Signer would never produce.
// stdAlphabet returns a valid token rewritten in the standard base64
// alphabet. It signs until the token has a '-' or '_' to rewrite: a random
// signature has neither about one time in sixteen, and then the "forgery"
// would be the genuine token.
func stdAlphabet(tb testing.TB, k *testKey) string {
	tb.Helper()
	for range 1000 {
		tok := mustSign(tb, k.signer, "at+jwt", testClaims())
		if strings.ContainsAny(tok, "-_") {
			return strings.NewReplacer("-", "+", "_", "/").Replace(tok)
		}
	}
	tb.Fatal("no token with '-' or '_' in 1000 signatures")
	return ""
}

func signRaw(tb testing.TB, k *testKey, header, payload string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	sig, err := k.signer.sign([]byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestSignVerify_RoundTrip_AllAlgorithms(t *testing.T) {
	ks := testKeySet(t)
	for _, alg := range latch.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := keysFor(t)[alg]
			want := testClaims()
			want.Extra = map[string]any{"nonce": "n-0S6", "auth_time": float64(1_799_999_000), "roles": []any{"a", "b"}}
			tok := mustSign(t, k.signer, "at+jwt", want)
			got, err := Verify(context.Background(), tok, ks, testOptions())
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Verify = %+v, want %+v", got, want)
			}
			hdr, _ := b64.DecodeString(tok[:strings.IndexByte(tok, '.')])
			if wantHdr := `{"alg":"` + string(alg) + `","kid":"` + k.kid + `","typ":"at+jwt"}`; string(hdr) != wantHdr {
				t.Errorf("header = %s, want %s", hdr, wantHdr)
			}
			if k.signer.KeyID() != k.kid || k.signer.Algorithm() != alg {
				t.Errorf("signer reports %q %q", k.signer.KeyID(), k.signer.Algorithm())
			}
		})
	}
}

func TestSign_ES256Signature_IsRawRS64Bytes(t *testing.T) {
	tok := mustSign(t, keysFor(t)[latch.ES256].signer, "at+jwt", testClaims())
	sig, err := b64.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature is %d bytes (%v), want 64", len(sig), err)
	}
}

func TestSign_TokensVerifyWithGoJose(t *testing.T) {
	for _, alg := range latch.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := keysFor(t)[alg]
			want := testClaims()
			tok := mustSign(t, k.signer, "at+jwt", want)
			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose ParseSigned: %v", err)
			}
			if h := jws.Signatures[0].Protected; h.KeyID != k.kid || h.Algorithm != string(alg) || h.ExtraHeaders["typ"] != "at+jwt" {
				t.Errorf("go-jose header = %+v", h)
			}
			payload, err := jws.Verify(k.priv.Public())
			if err != nil {
				t.Fatalf("go-jose Verify: %v", err)
			}
			var got Claims
			if err := json.Unmarshal(payload, &got); err != nil || !reflect.DeepEqual(&got, want) {
				t.Fatalf("claims = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestVerify_GoJoseTokens_Verify(t *testing.T) {
	ks := testKeySet(t)
	for _, alg := range latch.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := keysFor(t)[alg]
			opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.kid)
			sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k.priv}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := sig.Sign([]byte(mustJSON(t, testClaims())))
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := obj.CompactSerialize()
			got, err := Verify(context.Background(), tok, ks, testOptions())
			if err != nil || !reflect.DeepEqual(got, testClaims()) {
				t.Fatalf("Verify(go-jose token) = %+v, %v", got, err)
			}
		})
	}
}

func TestNewSigner_KeyMustFitAlgorithm(t *testing.T) {
	keys := keysFor(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		kid  string
		alg  latch.Algorithm
		key  crypto.Signer
	}{
		{"ES256 with Ed25519", "k", latch.ES256, keys[latch.EdDSA].priv},
		{"ES256 with P-384", "k", latch.ES256, p384},
		{"EdDSA with ECDSA", "k", latch.EdDSA, keys[latch.ES256].priv},
		{"RS256 with ECDSA", "k", latch.RS256, keys[latch.ES256].priv},
		{"RS256 with 1024-bit RSA", "k", latch.RS256, small},
		{"PS256 with 1024-bit RSA", "k", latch.PS256, small},
		{"HS256", "k", "HS256", keys[latch.RS256].priv},
		{"none", "k", "none", keys[latch.RS256].priv},
		{"empty kid", "", latch.RS256, keys[latch.RS256].priv},
		{"nil key", "k", latch.RS256, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSigner(tc.kid, tc.alg, tc.key); err == nil {
				t.Fatal("NewSigner succeeded")
			}
		})
	}
}

func TestSign_RefusesEmptyTypAndNonObjects(t *testing.T) {
	s := keysFor(t)[latch.ES256].signer
	if _, err := s.Sign("", testClaims()); err == nil {
		t.Error("Sign with empty typ succeeded")
	}
	for _, claims := range []any{"a string", 42, []string{"x"}, nil, map[string]any{"bad": func() {}}} {
		if _, err := s.Sign("at+jwt", claims); err == nil {
			t.Errorf("Sign(%T) succeeded", claims)
		}
	}
	c := testClaims()
	c.Extra = map[string]any{"sub": "admin"}
	if _, err := s.Sign("at+jwt", c); err == nil {
		t.Error("Sign with Extra[\"sub\"] succeeded")
	}
	// Anything that marshals to an object works, and verifies.
	tok := mustSign(t, s, "at+jwt", map[string]any{"iss": testIssuer, "aud": testAudience, "exp": testNow.Unix() + 1, "iat": testNow.Unix(), "jti": "j"})
	if _, err := Verify(context.Background(), tok, testKeySet(t), testOptions()); err != nil {
		t.Errorf("Verify(map claims) = %v", err)
	}
}

// TestVerify_ECDSAHighS_VerifiesWithSameJTI shows why the denylist keys on
// (iss, jti) and never on token bytes (security invariant 4): from one ES256
// token anyone can make a second, different string (s -> n-s) that verifies
// and carries the same jti.
func TestVerify_ECDSAHighS_VerifiesWithSameJTI(t *testing.T) {
	ks := testKeySet(t)
	tok := mustSign(t, keysFor(t)[latch.ES256].signer, "at+jwt", testClaims())
	dot := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[dot+1:])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	twin := make([]byte, 64)
	copy(twin, sig[:32])
	s.FillBytes(twin[32:])
	twinTok := tok[:dot+1] + b64.EncodeToString(twin)
	if twinTok == tok {
		t.Fatal("twin equals original")
	}
	a, err := Verify(context.Background(), tok, ks, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Verify(context.Background(), twinTok, ks, testOptions())
	if err != nil {
		t.Fatalf("high-s twin refused: %v", err)
	}
	if a.ID != b.ID || a.Issuer != b.Issuer {
		t.Fatalf("twin has (iss, jti) = (%q, %q), original (%q, %q)", b.Issuer, b.ID, a.Issuer, a.ID)
	}
}

func hs256(key []byte, header, payload string) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

func unsigned(header, payload, sig string) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + sig
}

// TestVerify_ForgedTokens_AreRefused covers security invariants 1-3 and 10:
// each forgery is refused with its sentinel.
func TestVerify_ForgedTokens_AreRefused(t *testing.T) {
	keys := keysFor(t)
	es, ed, rs := keys[latch.ES256], keys[latch.EdDSA], keys[latch.RS256]
	claims := mustJSON(t, testClaims())
	good := mustSign(t, es.signer, "at+jwt", testClaims())
	parts := strings.Split(good, ".")

	esPub := es.priv.Public().(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(esPub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rsDER, _ := x509.MarshalPKIXPublicKey(rs.priv.Public())
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsDER})

	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	atk := &testKey{kid: "es", alg: latch.ES256, priv: attacker}
	atk.signer, _ = NewSigner("es", latch.ES256, attacker)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: attacker.Public(), KeyID: "es", Algorithm: "ES256"})

	withClaims := func(f func(c *Claims)) string {
		c := testClaims()
		f(c)
		return mustSign(t, es.signer, "at+jwt", c)
	}
	hdr := func(extra string) string { return `{"alg":"ES256","kid":"es","typ":"at+jwt"` + extra + `}` }
	mutate := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	for _, tc := range []struct {
		name string
		tok  string
		want error
	}{
		{"alg none", unsigned(`{"alg":"none","kid":"es","typ":"at+jwt"}`, claims, ""), ErrAlgorithm},
		{"alg None", unsigned(`{"alg":"None","kid":"es","typ":"at+jwt"}`, claims, ""), ErrAlgorithm},
		{"alg NONE", unsigned(`{"alg":"NONE","kid":"es","typ":"at+jwt"}`, claims, ""), ErrAlgorithm},
		{"alg nOnE", unsigned(`{"alg":"nOnE","kid":"es","typ":"at+jwt"}`, claims, ""), ErrAlgorithm},
		{"alg none with a signature", unsigned(`{"alg":"none","kid":"es","typ":"at+jwt"}`, claims, parts[2]), ErrAlgorithm},
		{"alg es256 lower case", signRaw(t, es, `{"alg":"es256","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"no alg", signRaw(t, es, `{"kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"HS256 keyed with PEM public key", hs256(pemKey, `{"alg":"HS256","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"HS256 keyed with DER public key", hs256(der, `{"alg":"HS256","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"HS256 keyed with RSA PEM", hs256(rsPEM, `{"alg":"HS256","kid":"rs","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"HS512", hs256(der, `{"alg":"HS512","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"ES384", signRaw(t, es, `{"alg":"ES384","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"embedded jwk of attacker", signRaw(t, atk, hdr(`,"jwk":`+string(jwk)), claims), ErrHeader},
		{"embedded jwk, signed by the real key", signRaw(t, es, hdr(`,"jwk":`+string(jwk)), claims), ErrHeader},
		{"jku", signRaw(t, es, hdr(`,"jku":"https://attacker.example/jwks"`), claims), ErrHeader},
		{"x5u", signRaw(t, es, hdr(`,"x5u":"https://attacker.example/cert"`), claims), ErrHeader},
		{"x5c", signRaw(t, es, hdr(`,"x5c":["MIIB"]`), claims), ErrHeader},
		{"x5t", signRaw(t, es, hdr(`,"x5t":"abc"`), claims), ErrHeader},
		{"x5t#S256", signRaw(t, es, hdr(`,"x5t#S256":"abc"`), claims), ErrHeader},
		{"crit", signRaw(t, es, hdr(`,"crit":["exp"],"exp":1`), claims), ErrHeader},
		{"crit empty", signRaw(t, es, hdr(`,"crit":[]`), claims), ErrHeader},
		{"b64 false", signRaw(t, es, hdr(`,"b64":false,"crit":["b64"]`), claims), ErrHeader},
		{"unknown header parameter", signRaw(t, es, hdr(`,"cty":"JWT"`), claims), ErrHeader},
		{"escaped jwk name", signRaw(t, es, hdr(`,"\u006awk":`+string(jwk)), claims), ErrHeader},
		{"no kid", signRaw(t, es, `{"alg":"ES256","typ":"at+jwt"}`, claims), ErrHeader},
		{"kid not a string", signRaw(t, es, `{"alg":"ES256","kid":1,"typ":"at+jwt"}`, claims), ErrHeader},
		{"unknown kid", signRaw(t, es, `{"alg":"ES256","kid":"nope","typ":"at+jwt"}`, claims), ErrUnknownKey},
		{"stripped signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:40], ErrSignature},
		{"altered signature", parts[0] + "." + parts[1] + "." + mutate(parts[2], 10), ErrSignature},
		{"altered payload", parts[0] + "." + mutate(parts[1], 20) + "." + parts[2], ErrSignature},
		{"altered header", b64.EncodeToString([]byte(`{"alg":"ES256","kid":"es","typ":"AT+JWT"}`)) + "." + parts[1] + "." + parts[2], ErrSignature},
		{"signed by another key under our kid", signRaw(t, atk, hdr(""), claims), ErrSignature},
		{"alg swapped to EdDSA, key pinned to ES256", signRaw(t, ed, `{"alg":"EdDSA","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"alg swapped to RS256, key pinned to ES256", signRaw(t, rs, `{"alg":"RS256","kid":"es","typ":"at+jwt"}`, claims), ErrAlgorithm},
		{"typ JWT", mustSign(t, es.signer, "JWT", testClaims()), ErrType},
		{"typ of an ID token", mustSign(t, es.signer, "id_token+jwt", testClaims()), ErrType},
		{"typ of a refresh token", mustSign(t, es.signer, "rt+jwt", testClaims()), ErrType},
		{"typ missing", signRaw(t, es, `{"alg":"ES256","kid":"es"}`, claims), ErrType},
		{"typ not a string", signRaw(t, es, `{"alg":"ES256","kid":"es","typ":["at+jwt"]}`, claims), ErrHeader},
		{"expired", withClaims(func(c *Claims) { c.ExpiresAt = testNow.Unix() - 31 }), ErrExpired},
		{"expired at leeway edge", withClaims(func(c *Claims) { c.ExpiresAt = testNow.Unix() - 30 }), ErrExpired},
		{"nbf in the future", withClaims(func(c *Claims) { c.NotBefore = testNow.Unix() + 31 }), ErrNotYetValid},
		{"nbf at MaxInt64", withClaims(func(c *Claims) { c.NotBefore = 1<<63 - 1 }), ErrNotYetValid},
		{"iat in the future", withClaims(func(c *Claims) { c.IssuedAt = testNow.Unix() + 31 }), ErrIssuedInFuture},
		{"wrong iss", withClaims(func(c *Claims) { c.Issuer = "https://evil.example" }), ErrIssuer},
		{"iss with trailing slash", withClaims(func(c *Claims) { c.Issuer = testIssuer + "/" }), ErrIssuer},
		{"wrong aud", withClaims(func(c *Claims) { c.Audience = Audience{"https://other.example"} }), ErrAudience},
		{"no aud", withClaims(func(c *Claims) { c.Audience = nil }), ErrAudience},
		{"no exp", signRaw(t, es, hdr(""), `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","iat":1800000000}`), ErrMalformed},
		{"exp null", signRaw(t, es, hdr(""), `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","iat":1800000000,"exp":null}`), ErrMalformed},
		{"no iat", signRaw(t, es, hdr(""), `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":1800000600}`), ErrMalformed},
		{"exp a string", signRaw(t, es, hdr(""), `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","iat":1800000000,"exp":"1800000600"}`), ErrMalformed},
		{"duplicate claim", signRaw(t, es, hdr(""), `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","iat":1800000000,"exp":1800000600,"exp":1900000000}`), ErrMalformed},
		{"claims an array", signRaw(t, es, hdr(""), `[`+claims+`]`), ErrMalformed},
		{"claims a string", signRaw(t, es, hdr(""), `"`+testIssuer+`"`), ErrMalformed},
		{"claims null", signRaw(t, es, hdr(""), `null`), ErrMalformed},
		{"claims not JSON", signRaw(t, es, hdr(""), `{"iss":`), ErrMalformed},
		{"oversized", signRaw(t, es, hdr(""), `{"pad":"`+strings.Repeat("x", MaxJWTSize)+`"}`), ErrMalformed},
		{"empty", "", ErrMalformed},
		{"2 segments", parts[0] + "." + parts[1], ErrMalformed},
		{"4 segments", good + "." + parts[2], ErrMalformed},
		{"5 segments (JWE shape)", parts[0] + ".." + parts[1] + ".." + parts[2], ErrMalformed},
		{"padding in header", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"padding in signature", good + "=", ErrSignature},
		{"standard base64 alphabet", stdAlphabet(t, es), ErrMalformed},
		{"non-canonical base64 in payload", parts[0] + "." + nonCanonical(t, parts[1]) + "." + parts[2], ErrMalformed},
		{"non-canonical base64 in signature", parts[0] + "." + parts[1] + "." + nonCanonical(t, parts[2]), ErrMalformed},
		{"whitespace in token", parts[0] + ". " + parts[1] + "." + parts[2], ErrMalformed},
		{"duplicate alg", signRaw(t, es, `{"alg":"ES256","alg":"none","kid":"es","typ":"at+jwt"}`, claims), ErrMalformed},
		{"duplicate kid", signRaw(t, es, `{"alg":"ES256","kid":"es","kid":"ed","typ":"at+jwt"}`, claims), ErrMalformed},
		{"duplicate alg, escaped", signRaw(t, es, `{"alg":"ES256","\u0061lg":"ES256","kid":"es","typ":"at+jwt"}`, claims), ErrMalformed},
		{"header an array", signRaw(t, es, `["ES256"]`, claims), ErrMalformed},
		{"header not JSON", signRaw(t, es, `{"alg":"ES256",`, claims), ErrMalformed},
		{"header with trailing data", signRaw(t, es, hdr("")+`{}`, claims), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Verify(context.Background(), tc.tok, testKeySet(t), testOptions())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.want)
			}
			if c != nil {
				t.Fatalf("Verify returned claims with an error")
			}
		})
	}
}

// nonCanonical re-encodes seg with a non-zero unused bit in its last
// character; seg must have unused bits (its length is not a multiple of 4).
func nonCanonical(t *testing.T, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		t.Fatalf("segment of length %d has no unused bits", len(seg))
	}
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	alt := seg[:len(seg)-1] + string(alphabet[i^1])
	if a, err := base64URLLax(alt); err != nil || string(a) != string(must(base64URLLax(seg))) {
		t.Fatalf("%q is not an alternative encoding of %q", alt, seg)
	}
	return alt
}

func TestVerify_Accepts(t *testing.T) {
	keys := keysFor(t)
	es := keys[latch.ES256]
	claims := mustJSON(t, testClaims())
	for _, tc := range []struct {
		name string
		tok  string
		opts func(o *VerifyOptions)
	}{
		{"typ with application/ prefix", mustSign(t, es.signer, "application/at+jwt", testClaims()), nil},
		{"typ in upper case", mustSign(t, es.signer, "AT+JWT", testClaims()), nil},
		{"option typ with application/ prefix", mustSign(t, es.signer, "at+jwt", testClaims()), func(o *VerifyOptions) { o.Type = "Application/At+JWT" }},
		{"no typ check", mustSign(t, es.signer, "JWT", testClaims()), func(o *VerifyOptions) { o.Type = "" }},
		{"aud array", signRaw(t, es, `{"alg":"ES256","kid":"es","typ":"at+jwt"}`, strings.Replace(claims, `"aud":"`+testAudience+`"`, `"aud":["x","`+testAudience+`"]`, 1)), nil},
		{"whitespace in header JSON", signRaw(t, es, "{ \"alg\" : \"ES256\",\n\t\"kid\":\"es\" , \"typ\":\"at+jwt\" }", claims), nil},
		{"escaped kid", signRaw(t, es, `{"alg":"ES256","kid":"\u0065s","typ":"at+jwt"}`, claims), nil},
		{"expired within leeway", mustSign(t, es.signer, "at+jwt", func() *Claims { c := testClaims(); c.ExpiresAt = testNow.Unix() - 29; return c }()), nil},
		{"nbf within leeway", mustSign(t, es.signer, "at+jwt", func() *Claims { c := testClaims(); c.NotBefore = testNow.Unix() + 30; return c }()), nil},
		{"iat within leeway", mustSign(t, es.signer, "at+jwt", func() *Claims { c := testClaims(); c.IssuedAt = testNow.Unix() + 30; return c }()), nil},
		{"wrong iss, check skipped", mustSign(t, es.signer, "at+jwt", func() *Claims { c := testClaims(); c.Issuer = "x"; return c }()), func(o *VerifyOptions) { o.Issuer, o.SkipIssuerCheck = "", true }},
		{"wrong aud, check skipped", mustSign(t, es.signer, "at+jwt", func() *Claims { c := testClaims(); c.Audience = nil; return c }()), func(o *VerifyOptions) { o.Audience, o.SkipAudienceCheck = "", true }},
		{"fractional exp", signRaw(t, es, `{"alg":"ES256","kid":"es","typ":"at+jwt"}`, strings.Replace(claims, `"exp":1800000600`, `"exp":1800000600.75`, 1)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			if _, err := Verify(context.Background(), tc.tok, testKeySet(t), opts); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerify_BadOptions_AreConfigErrors(t *testing.T) {
	tok := mustSign(t, keysFor(t)[latch.ES256].signer, "at+jwt", testClaims())
	sentinels := []error{ErrMalformed, ErrUnknownKey, ErrAlgorithm, ErrHeader, ErrSignature, ErrType, ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrIssuer, ErrAudience}
	for _, tc := range []struct {
		name string
		f    func(o *VerifyOptions)
	}{
		{"no algorithms", func(o *VerifyOptions) { o.Algorithms = nil }},
		{"HS256 allowed", func(o *VerifyOptions) { o.Algorithms = append(o.Algorithms, "HS256") }},
		{"none allowed", func(o *VerifyOptions) { o.Algorithms = []latch.Algorithm{"none"} }},
		{"no issuer", func(o *VerifyOptions) { o.Issuer = "" }},
		{"no audience", func(o *VerifyOptions) { o.Audience = "" }},
		{"negative leeway", func(o *VerifyOptions) { o.Leeway = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			tc.f(&opts)
			_, err := Verify(context.Background(), tok, testKeySet(t), opts)
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					t.Fatalf("config error %v wraps %v", err, s)
				}
			}
		})
	}
}

func TestVerify_KeyThatDoesNotFitAlgorithm_IsRefused(t *testing.T) {
	keys := keysFor(t)
	tok := mustSign(t, keys[latch.ES256].signer, "at+jwt", testClaims())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, tc := range []struct {
		name string
		ks   staticKeys
		tok  string
	}{
		{"ES256 pinned on an RSA key", staticKeys{"es": {keys[latch.RS256].priv.Public(), latch.ES256}}, tok},
		{"ES256 pinned on a P-384 key", staticKeys{"es": {p384.Public(), latch.ES256}}, tok},
		{"ES256 pinned on a nil key", staticKeys{"es": {(*ecdsa.PublicKey)(nil), latch.ES256}}, tok},
		{"EdDSA pinned on a short key", staticKeys{"ed": {ed25519.PublicKey{1, 2, 3}, latch.EdDSA}}, mustSign(t, keys[latch.EdDSA].signer, "at+jwt", testClaims())},
		{"RS256 pinned on a 1024-bit key", staticKeys{"rs": {small.Public(), latch.RS256}}, mustSign(t, keys[latch.RS256].signer, "at+jwt", testClaims())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(context.Background(), tc.tok, tc.ks, testOptions()); !errors.Is(err, ErrAlgorithm) {
				t.Fatalf("Verify = %v, want ErrAlgorithm", err)
			}
		})
	}
}

func TestVerify_KeySetError_IsPassedOn(t *testing.T) {
	tok := mustSign(t, keysFor(t)[latch.ES256].signer, "at+jwt", testClaims())
	boom := errors.New("jwks unavailable")
	_, err := Verify(context.Background(), tok, keySetFunc(func(context.Context, string) (crypto.PublicKey, latch.Algorithm, error) {
		return nil, "", boom
	}), testOptions())
	if !errors.Is(err, boom) {
		t.Fatalf("Verify = %v, want %v", err, boom)
	}
}

type keySetFunc func(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error)

func (f keySetFunc) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	return f(ctx, kid)
}

func TestVerify_NoOutboundFetch_KeySetCalledOnlyWithKid(t *testing.T) {
	// The only way Verify reaches the outside world is KeySet.Key, with the
	// kid; a jku/x5u token never gets that far.
	es := keysFor(t)[latch.ES256]
	called := 0
	ks := keySetFunc(func(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
		called++
		return es.priv.Public(), latch.ES256, nil
	})
	for _, extra := range []string{`,"jku":"http://127.0.0.1:1/jwks"`, `,"x5u":"http://127.0.0.1:1/c"`} {
		tok := signRaw(t, es, `{"alg":"ES256","kid":"es","typ":"at+jwt"`+extra+`}`, mustJSON(t, testClaims()))
		if _, err := Verify(context.Background(), tok, ks, testOptions()); !errors.Is(err, ErrHeader) {
			t.Fatalf("Verify = %v, want ErrHeader", err)
		}
	}
	if called != 0 {
		t.Fatalf("KeySet consulted %d times for tokens with a forbidden header", called)
	}
}

func base64URLLax(s string) ([]byte, error) { return base64RawURL.DecodeString(s) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSigner_ConcurrentSign_IsSafe(t *testing.T) {
	s := keysFor(t)[latch.EdDSA].signer
	ks := testKeySet(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			typ := fmt.Sprintf("t%d+jwt", i%20) // more typs than the cache holds
			tok, err := s.Sign(typ, testClaims())
			if err == nil {
				opts := testOptions()
				opts.Type = typ
				_, err = Verify(context.Background(), tok, ks, opts)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerify_AllowExpired_ReadsOnlyExpiredTokens: AllowExpired lifts the
// exp check and nothing else: an expired token's claims are read, while a
// token failing any other check (here nbf, and a forged signature) is
// still refused.
func TestVerify_AllowExpired_ReadsOnlyExpiredTokens(t *testing.T) {
	es := keysFor(t)[latch.ES256]
	expired := testClaims()
	expired.ExpiresAt = testNow.Unix() - 3600*24*365
	tok := mustSign(t, es.signer, "at+jwt", expired)
	opts := testOptions()
	if _, err := Verify(context.Background(), tok, testKeySet(t), opts); !errors.Is(err, ErrExpired) {
		t.Fatalf("without AllowExpired: %v, want ErrExpired", err)
	}
	opts.AllowExpired = true
	c, err := Verify(context.Background(), tok, testKeySet(t), opts)
	if err != nil || c.ExpiresAt != expired.ExpiresAt {
		t.Fatalf("with AllowExpired: %+v, %v", c, err)
	}
	early := testClaims()
	early.ExpiresAt = testNow.Unix() - 60
	early.NotBefore = testNow.Unix() + 3600
	if _, err := Verify(context.Background(), mustSign(t, es.signer, "at+jwt", early), testKeySet(t), opts); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("nbf ahead with AllowExpired: %v, want ErrNotYetValid", err)
	}
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA"
	if _, err := Verify(context.Background(), forged, testKeySet(t), opts); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged with AllowExpired: %v, want ErrSignature", err)
	}
}
