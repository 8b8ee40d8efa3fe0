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
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// encKey is a resource server's encryption key pair.
type encKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newEncKey(tb testing.TB, kid string, curve elliptic.Curve) *encKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &encKey{priv: k, kid: kid}
}

// jwk is the private JWK the resource server configures.
func (k *encKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Use: "enc", Algorithm: string(jose.ECDH_ES_A256KW)}
}

// seal encrypts payload as a compact JWE the way latch does (cty JWT, typ
// JWT), or with the algorithms and options given.
func seal(tb testing.TB, payload string, alg jose.KeyAlgorithm, key any, kid string, enc jose.ContentEncryption, opts *jose.EncrypterOptions) string {
	tb.Helper()
	if opts == nil {
		opts = (&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT")
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key, KeyID: kid}, opts)
	if err != nil {
		tb.Fatalf("NewEncrypter(%s, %s): %v", alg, enc, err)
	}
	obj, err := e.Encrypt([]byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (k *encKey) seal(tb testing.TB, jws string) string {
	tb.Helper()
	return seal(tb, jws, jose.ECDH_ES_A256KW, &k.priv.PublicKey, k.kid, jose.A256GCM, nil)
}

// encSetup is an issuer, a signing key, a clock and an encryption key.
type encSetup struct {
	is  *issuer
	sig *testKey
	c   *clock
	enc *encKey
}

func newEncSetup(t testing.TB) *encSetup {
	sig := newKey(t, "sig-1", latch.ES256)
	return &encSetup{is: newIssuer(t, sig), sig: sig, c: newClock(), enc: newEncKey(t, "enc-1", elliptic.P256())}
}

func (s *encSetup) config(mod ...func(*Config)) Config {
	cfg := s.is.config(s.c)
	cfg.DecryptionKeys = []jose.JSONWebKey{s.enc.jwk()}
	for _, m := range mod {
		m(&cfg)
	}
	return cfg
}

// token returns a fresh signed access token and its claims.
func (s *encSetup) token(t testing.TB) (string, *token.Claims) {
	want := claimsAt(s.is, s.c)
	return mustSign(t, s.sig, "at+jwt", want), want
}

// b64Segments decodes the segments of a compact serialization.
func b64Segments(t *testing.T, raw string) [][]byte {
	var out [][]byte
	for _, s := range strings.Split(raw, ".") {
		b, err := enc.DecodeString(s)
		if err != nil {
			t.Fatalf("segment %q: %v", s, err)
		}
		out = append(out, b)
	}
	return out
}

// reseg replaces segment i of a compact serialization.
func reseg(raw string, i int, b []byte) string {
	parts := strings.Split(raw, ".")
	parts[i] = enc.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestVerify_EncryptedToken_DecryptedThenVerified_ClaimsEqual(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		t.Run(curve.Params().Name, func(t *testing.T) {
			s := newEncSetup(t)
			s.enc = newEncKey(t, "enc-"+curve.Params().Name, curve)
			v := mustNew(t, s.config())
			jws, want := s.token(t)
			jwe := s.enc.seal(t, jws)
			if strings.Count(jwe, ".") != 4 {
				t.Fatalf("not a compact JWE: %q", jwe)
			}
			got, err := v.Verify(context.Background(), jwe)
			if err != nil {
				t.Fatalf("Verify(JWE): %v", err)
			}
			plain, err := v.Verify(context.Background(), jws)
			if err != nil {
				t.Fatalf("Verify(JWS): %v", err)
			}
			if mustJSON(got.Claims) != mustJSON(plain.Claims) || got.ID != want.ID || got.Subject != want.Subject || got.Scope != want.Scope {
				t.Fatalf("claims of the JWE %s\nof the JWS %s", mustJSON(got.Claims), mustJSON(plain.Claims))
			}
		})
	}
}

// A key configured without a kid is found by its RFC 7638 thumbprint,
// which latch puts in the header for a registered key without a kid.
func TestVerify_EncryptedToken_KeyWithoutKid_FoundByThumbprint(t *testing.T) {
	s := newEncSetup(t)
	other := newEncKey(t, "", elliptic.P256())
	jwk := jose.JSONWebKey{Key: other.priv}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	v := mustNew(t, s.config(func(c *Config) {
		c.DecryptionKeys = []jose.JSONWebKey{s.enc.jwk(), {Key: other.priv}}
	}))
	jws, _ := s.token(t)
	tok := seal(t, jws, jose.ECDH_ES_A256KW, &other.priv.PublicKey, enc.EncodeToString(tp), jose.A256GCM, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("JWE for the thumbprint kid: %v", err)
	}
	// Two keys and a JWE without kid: which one? Refused.
	noKid := seal(t, jws, jose.ECDH_ES_A256KW, &other.priv.PublicKey, "", jose.A256GCM, nil)
	if _, err := v.Verify(context.Background(), noKid); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "no kid") {
		t.Fatalf("JWE without kid, two keys: %v", err)
	}
	// One key: a JWE without kid is tried with it.
	v1 := mustNew(t, s.config(func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: other.priv}} }))
	if _, err := v1.Verify(context.Background(), noKid); err != nil {
		t.Fatalf("JWE without kid, one key: %v", err)
	}
}

func TestVerify_EncryptedToken_WrongOrUnknownKey_Refused(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config())
	jws, _ := s.token(t)
	// Encrypted to another key that claims our kid.
	impostor := newEncKey(t, s.enc.kid, elliptic.P256())
	if _, err := v.Verify(context.Background(), impostor.seal(t, jws)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("JWE for another key under our kid: %v, want ErrDecrypt", err)
	}
	// Encrypted to a kid we do not have.
	stranger := newEncKey(t, "enc-unknown", elliptic.P256())
	if _, err := v.Verify(context.Background(), stranger.seal(t, jws)); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "enc-unknown") {
		t.Fatalf("JWE for an unknown kid: %v", err)
	}
	// Our kid, but a key on another curve.
	p384 := newEncKey(t, s.enc.kid, elliptic.P384())
	if _, err := v.Verify(context.Background(), p384.seal(t, jws)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("JWE with a P-384 ephemeral key for a P-256 key: %v", err)
	}
}

func TestVerify_EncryptedToken_Tampered_Refused(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config(func(c *Config) { c.DisableCache = true }))
	jws, _ := s.token(t)
	good := s.enc.seal(t, jws)
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	seg := b64Segments(t, good)
	flip := func(i, at int) string {
		b := append([]byte(nil), seg[i]...)
		b[at%len(b)] ^= 0x01
		return reseg(good, i, b)
	}
	var hdr map[string]any
	if err := json.Unmarshal(seg[0], &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["typ"] = "at+jwt" // an allowed value, but not the one encrypted with
	altHeader := reseg(good, 0, []byte(mustJSON(hdr)))
	hdr["typ"] = "JWT"
	reordered := reseg(good, 0, []byte(" "+string(seg[0]))) // same JSON, other bytes: other AAD

	for name, tok := range map[string]string{
		"header value":       altHeader,
		"header bytes":       reordered,
		"encrypted key":      flip(1, 5),
		"iv":                 flip(2, 0),
		"ciphertext first":   flip(3, 0),
		"ciphertext last":    flip(3, len(seg[3])-1),
		"tag":                flip(4, 15),
		"tag truncated":      reseg(good, 4, seg[4][:8]),
		"ciphertext dropped": reseg(good, 3, nil),
		"iv empty":           reseg(good, 2, nil),
		"key empty":          reseg(good, 1, nil),
	} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s tampered: %v, want ErrDecrypt", name, err)
		}
	}
	// A non-canonical spelling of the header (other trailing bits) would
	// decode to the same AAD in go-jose: refused before it.
	h := strings.Split(good, ".")[0]
	if len(h)%4 == 0 {
		t.Fatalf("header of %d base64 characters has no spare bits to flip; change the test kid", len(h))
	}
	alt := strings.IndexByte(b64Alphabet, h[len(h)-1]) ^ 1 // a padding bit
	nc := h[:len(h)-1] + string(b64Alphabet[alt]) + good[len(h):]
	if _, err := v.Verify(context.Background(), nc); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("non-canonical header base64: %v", err)
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestVerify_EncryptedToken_AlgorithmsOutsideAllowList_Refused(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config(func(c *Config) { c.DisableCache = true }))
	jws, _ := s.token(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := &s.enc.priv.PublicKey
	for name, tok := range map[string]string{
		"RSA1_5":            seal(t, jws, jose.RSA1_5, &rsaKey.PublicKey, s.enc.kid, jose.A256GCM, nil),
		"RSA-OAEP-256":      seal(t, jws, jose.RSA_OAEP_256, &rsaKey.PublicKey, s.enc.kid, jose.A256GCM, nil),
		"dir":               seal(t, jws, jose.DIRECT, make([]byte, 32), s.enc.kid, jose.A256GCM, nil),
		"A256KW":            seal(t, jws, jose.A256KW, make([]byte, 32), s.enc.kid, jose.A256GCM, nil),
		"PBES2":             seal(t, jws, jose.PBES2_HS256_A128KW, []byte("password"), s.enc.kid, jose.A256GCM, nil),
		"ECDH-ES direct":    seal(t, jws, jose.ECDH_ES, pub, s.enc.kid, jose.A256GCM, nil),
		"ECDH-ES+A128KW":    seal(t, jws, jose.ECDH_ES_A128KW, pub, s.enc.kid, jose.A256GCM, nil),
		"enc A128CBC-HS256": seal(t, jws, jose.ECDH_ES_A256KW, pub, s.enc.kid, jose.A128CBC_HS256, nil),
		"enc A128GCM":       seal(t, jws, jose.ECDH_ES_A256KW, pub, s.enc.kid, jose.A128GCM, nil),
		"enc A256CBC-HS512": seal(t, jws, jose.ECDH_ES_A256KW, pub, s.enc.kid, jose.A256CBC_HS512, nil),
	} {
		_, err := v.Verify(context.Background(), tok)
		if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: %v, want ErrDecrypt: not allowed", name, err)
		}
	}
	// The allow-list is configuration: allowed, the same kind of token passes.
	v2 := mustNew(t, s.config(func(c *Config) {
		c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.ECDH_ES}
		c.ContentEncryption = []jose.ContentEncryption{jose.A128CBC_HS256}
		c.DecryptionKeys = []jose.JSONWebKey{{Key: s.enc.priv, KeyID: s.enc.kid}}
	}))
	if _, err := v2.Verify(context.Background(), seal(t, jws, jose.ECDH_ES, pub, s.enc.kid, jose.A128CBC_HS256, nil)); err != nil {
		t.Fatalf("ECDH-ES/A128CBC-HS256 when allowed: %v", err)
	}
	// A key pinned to an alg by its JWK is used with that alg only.
	v3 := mustNew(t, s.config(func(c *Config) {
		c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.ECDH_ES_A256KW, jose.ECDH_ES}
	}))
	if _, err := v3.Verify(context.Background(), seal(t, jws, jose.ECDH_ES, pub, s.enc.kid, jose.A256GCM, nil)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ECDH-ES with a key whose JWK says ECDH-ES+A256KW: %v", err)
	}
}

func TestVerify_EncryptedToken_HeaderParameters(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config(func(c *Config) { c.DisableCache = true }))
	jws, _ := s.token(t)
	pub := &s.enc.priv.PublicKey
	with := func(opts *jose.EncrypterOptions) string {
		return seal(t, jws, jose.ECDH_ES_A256KW, pub, s.enc.kid, jose.A256GCM, opts)
	}
	base := func() *jose.EncrypterOptions { return (&jose.EncrypterOptions{}).WithContentType("JWT") }
	for name, tc := range map[string]struct {
		tok  string
		want string
	}{
		"zip DEF":    {with(&jose.EncrypterOptions{Compression: jose.DEFLATE, ExtraHeaders: base().ExtraHeaders}), "zip"},
		"jku":        {with(base().WithHeader("jku", "https://attacker.example/keys")), `"jku"`},
		"jwk":        {with(base().WithHeader("jwk", map[string]string{"kty": "EC"})), `"jwk"`},
		"x5u":        {with(base().WithHeader("x5u", "https://attacker.example/cert")), `"x5u"`},
		"crit":       {with(base().WithHeader("crit", []string{"exp"}).WithHeader("exp", 1)), "crit"},
		"unknown":    {with(base().WithHeader("foo", "bar")), `"foo"`},
		"no cty":     {with(&jose.EncrypterOptions{}), "cty"},
		"cty json":   {with((&jose.EncrypterOptions{}).WithContentType("json")), "cty"},
		"typ other":  {with(base().WithType("secevent+jwt")), "typ"},
		"kid number": {seal(t, jws, jose.ECDH_ES_A256KW, pub, "", jose.A256GCM, base().WithHeader("kid", 7)), "kid"},
	} {
		_, err := v.Verify(context.Background(), tc.tok)
		if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrDecrypt about %s", name, err, tc.want)
		}
	}
	// cty and typ compare as media types: case and "application/" do not matter.
	for _, opts := range []*jose.EncrypterOptions{
		(&jose.EncrypterOptions{}).WithContentType("jwt"),
		(&jose.EncrypterOptions{}).WithContentType("application/JWT").WithType("at+jwt"),
	} {
		if _, err := v.Verify(context.Background(), with(opts)); err != nil {
			t.Errorf("header %v: %v", opts.ExtraHeaders, err)
		}
	}
}

func TestVerify_EncryptedToken_PayloadMustBeASignedAccessToken(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config(func(c *Config) { c.DisableCache = true }))
	jws, claims := s.token(t)
	ctx := context.Background()
	for name, payload := range map[string]string{
		"claims JSON":      mustJSON(claims),
		"text":             "hello",
		"empty":            "",
		"unsigned JWT":     enc.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + enc.EncodeToString([]byte(mustJSON(claims))) + ".",
		"JWE inside a JWE": s.enc.seal(t, jws),
		"JWS with 4 parts": jws + ".x",
		"oversized":        strings.Repeat("a", token.MaxJWTSize) + ".b.c",
	} {
		_, err := v.Verify(ctx, s.enc.seal(t, payload))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if name == "unsigned JWT" {
			if !errors.Is(err, token.ErrAlgorithm) && !errors.Is(err, token.ErrMalformed) {
				t.Errorf("unsigned inner JWT: %v", err)
			}
			continue
		}
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	// The inner token gets every check a plain one gets.
	idToken := mustSign(t, s.sig, "JWT", claimsAt(s.is, s.c))
	if _, err := v.Verify(ctx, s.enc.seal(t, idToken)); !errors.Is(err, token.ErrType) {
		t.Errorf("an ID token (typ JWT) inside: %v, want token.ErrType", err)
	}
	expired := claimsAt(s.is, s.c)
	expired.ExpiresAt = s.c.Now().Unix() - 3600
	if _, err := v.Verify(ctx, s.enc.seal(t, mustSign(t, s.sig, "at+jwt", expired))); !errors.Is(err, token.ErrExpired) {
		t.Errorf("an expired token inside: %v, want token.ErrExpired", err)
	}
	foreign := newKey(t, "sig-1", latch.ES256) // our kid, another key
	if _, err := v.Verify(ctx, s.enc.seal(t, mustSign(t, foreign, "at+jwt", claimsAt(s.is, s.c)))); !errors.Is(err, token.ErrSignature) {
		t.Errorf("a forged signature inside: %v, want token.ErrSignature", err)
	}
}

func TestVerify_EncryptedToken_NoDecryptionKeys_Refused(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.is.config(s.c)) // no DecryptionKeys
	jws, _ := s.token(t)
	_, err := v.Verify(context.Background(), s.enc.seal(t, jws))
	if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "DecryptionKeys") {
		t.Fatalf("JWE without decryption keys: %v", err)
	}
	w := serveWith(v.Middleware(echoClaims), bearerRequest(s.enc.seal(t, jws)))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error_description="the token cannot be decrypted"`) {
		t.Fatalf("middleware: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestVerify_RequireEncryption_RefusesPlainJWS(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config(func(c *Config) { c.RequireEncryption = true }))
	jws, _ := s.token(t)
	ctx := context.Background()
	if _, err := v.Verify(ctx, jws); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("plain JWS with RequireEncryption: %v, want ErrNotEncrypted", err)
	}
	jwe := s.enc.seal(t, jws)
	if _, err := v.Verify(ctx, jwe); err != nil {
		t.Fatalf("JWE with RequireEncryption: %v", err)
	}
	// The JWE is cached now; the JWS inside it, were it leaked from the
	// resource server, is still refused.
	if _, err := v.Verify(ctx, jws); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("inner JWS after its JWE was cached: %v", err)
	}
	w := serveWith(v.Middleware(echoClaims), bearerRequest(jws))
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error_description="the token must be encrypted"`) {
		t.Fatalf("middleware: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := serveWith(v.Middleware(echoClaims), bearerRequest(jwe)); w.Code != 200 || w.Body.String() != "user-1" {
		t.Fatalf("middleware with the JWE: %d %s", w.Code, w.Body)
	}
}

// The cache is keyed on the token as presented: a cached JWE is not
// decrypted again, and the denylist still applies to it.
func TestVerify_EncryptedToken_CachedOnOuterToken_DenylistApplies(t *testing.T) {
	s := newEncSetup(t)
	revoked := map[string]bool{}
	v := mustNew(t, s.config(func(c *Config) {
		c.IsRevoked = func(_ context.Context, iss, jti string) bool { return revoked[iss+" "+jti] }
	}))
	jws, claims := s.token(t)
	jwe := s.enc.seal(t, jws)
	first, err := v.Verify(context.Background(), jwe)
	if err != nil {
		t.Fatal(err)
	}
	outer := sha256.Sum256([]byte(jwe))
	if c, ok := v.cache.Get(&outer, s.c.Now()); !ok || c != first {
		t.Fatal("the JWE's claims are not cached under the JWE")
	}
	inner := sha256.Sum256([]byte(jws))
	if _, ok := v.cache.Get(&inner, s.c.Now()); ok {
		t.Fatal("cached under the inner JWS")
	}
	// With the key gone the JWE could not be decrypted again: a hit proves
	// no decryption happened.
	v.dec = nil
	if again, err := v.Verify(context.Background(), jwe); err != nil || again != first {
		t.Fatalf("second Verify: %v", err)
	}
	revoked[claims.Issuer+" "+claims.ID] = true
	if _, err := v.Verify(context.Background(), jwe); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked jti of a cached JWE: %v, want ErrRevoked", err)
	}
}

func TestVerify_EncryptedToken_Oversized_Refused(t *testing.T) {
	s := newEncSetup(t)
	v := mustNew(t, s.config())
	tok := s.enc.seal(t, strings.Repeat("a", MaxJWESize))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("oversized JWE: %v", err)
	}
	// A plain JWS above token.MaxJWTSize is refused as before.
	if _, err := v.Verify(context.Background(), strings.Repeat("a", token.MaxJWTSize)+".b.c"); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("oversized JWS: %v", err)
	}
}

func TestConfig_DecryptionKeys_Validate(t *testing.T) {
	ec := newEncKey(t, "e", elliptic.P256())
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	base := Config{Issuer: "https://issuer.example", Audience: "api"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"one EC key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{ec.jwk()} }, ""},
		{"require with key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{ec.jwk()}; c.RequireEncryption = true }, ""},
		{"require without key", func(c *Config) { c.RequireEncryption = true }, "RequireEncryption needs"},
		{"public key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: &ec.priv.PublicKey}} }, "EC private key"},
		{"RSA key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: rsaPriv}} }, "EC private key"},
		{"Ed25519 key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: edPriv}} }, "EC private key"},
		{"symmetric key", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: make([]byte, 32)}} }, "EC private key"},
		{"P-224 key", func(c *Config) {
			k := newEncKey(t, "p224", elliptic.P224())
			c.DecryptionKeys = []jose.JSONWebKey{{Key: k.priv}}
		}, "curve"},
		{"use sig", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: ec.priv, Use: "sig"}} }, "use"},
		{"alg not allowed", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: ec.priv, Algorithm: "ECDH-ES"}} }, "alg"},
		{"same kid twice", func(c *Config) {
			c.DecryptionKeys = []jose.JSONWebKey{ec.jwk(), {Key: newEncKey(t, "", elliptic.P256()).priv, KeyID: "e"}}
		}, "twice"},
		{"same key twice without kid", func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{{Key: ec.priv}, {Key: ec.priv}} }, "twice"},
		{"alg RSA1_5", func(c *Config) { c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.RSA1_5} }, "not supported"},
		{"alg dir", func(c *Config) { c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.DIRECT} }, "not supported"},
		{"alg PBES2", func(c *Config) { c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.PBES2_HS256_A128KW} }, "not supported"},
		{"alg twice", func(c *Config) {
			c.KeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.ECDH_ES_A256KW, jose.ECDH_ES_A256KW}
		}, "twice"},
		{"enc unknown", func(c *Config) { c.ContentEncryption = []jose.ContentEncryption{"A512GCM"} }, "not supported"},
		{"enc twice", func(c *Config) { c.ContentEncryption = []jose.ContentEncryption{jose.A256GCM, jose.A256GCM} }, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			err := cfg.withDefaults().Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want an error about %q", err, tc.want)
			}
		})
	}
	c := base.withDefaults()
	if mustJSON(c.KeyEncryptionAlgorithms) != `["ECDH-ES+A256KW"]` || mustJSON(c.ContentEncryption) != `["A256GCM"]` {
		t.Fatalf("defaults: %v %v", c.KeyEncryptionAlgorithms, c.ContentEncryption)
	}
}

// fuzzKey is the fixed decryption key of FuzzDecrypt, so that the committed
// corpus holds JWEs that really decrypt (testdata/jwe-test-key.json, a
// test key and nothing else).
func fuzzKey(tb testing.TB) jose.JSONWebKey {
	tb.Helper()
	b, err := os.ReadFile("testdata/jwe-test-key.json")
	if err != nil {
		tb.Fatal(err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		tb.Fatal(err)
	}
	return k
}

// FuzzDecrypt: the JWE path never panics; every refusal wraps ErrDecrypt;
// what it accepts is a five-segment JWE whose header names only allowed
// parameters and algorithms, and its payload is a three-segment JWS no
// larger than token.MaxJWTSize.
func FuzzDecrypt(f *testing.F) {
	k := fuzzKey(f)
	d, err := newDecrypter([]jose.JSONWebKey{k}, DefaultKeyEncryptionAlgorithms, DefaultContentEncryption)
	if err != nil {
		f.Fatal(err)
	}
	pub := &k.Key.(*ecdsa.PrivateKey).PublicKey
	jws := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1In0.c2ln"
	f.Add(seal(f, jws, jose.ECDH_ES_A256KW, pub, k.KeyID, jose.A256GCM, nil))
	f.Add(seal(f, "not a jwt", jose.ECDH_ES_A256KW, pub, k.KeyID, jose.A256GCM, nil))
	f.Add(seal(f, jws, jose.ECDH_ES_A256KW, pub, k.KeyID, jose.A256GCM, &jose.EncrypterOptions{Compression: jose.DEFLATE}))
	f.Add(seal(f, jws, jose.DIRECT, make([]byte, 32), k.KeyID, jose.A256GCM, nil))
	f.Add("a.b.c.d.e")
	f.Add("....")
	f.Add(jws)
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := d.decrypt(raw)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error does not wrap ErrDecrypt: %v", err)
			}
			if out != "" {
				t.Fatal("output with an error")
			}
			return
		}
		if strings.Count(raw, ".") != 4 || strings.Count(out, ".") != 2 || len(out) > token.MaxJWTSize {
			t.Fatalf("accepted %q -> %q", raw, out)
		}
		hb, err := strictB64.DecodeString(strings.SplitN(raw, ".", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		h, err := objectMembers(hb)
		if err != nil {
			t.Fatal(err)
		}
		for name := range h {
			if !contains(allowedJWEHeader, name) {
				t.Fatalf("accepted header parameter %q", name)
			}
		}
		if alg, _ := stringMember(h, "alg"); alg != string(jose.ECDH_ES_A256KW) {
			t.Fatalf("accepted alg %q", alg)
		}
		if e, _ := stringMember(h, "enc"); e != string(jose.A256GCM) {
			t.Fatalf("accepted enc %q", e)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
