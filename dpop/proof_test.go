package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

func TestRFC9449_4_2_ProverProof_IsAccepted_EveryAlgorithm(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ES256": newECKey(t), "EdDSA": newEdKey(t), "PS256": newRSAKey(t)} {
		t.Run(name, func(t *testing.T) {
			c := mustChecker(t, Config{})
			p := mustProver(t, key)
			proof := mustProof(t, p, "GET", testURL+"?q=1#f", testToken, "")
			got, err := c.Check(context.Background(), proof, getRequest())
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Algorithm) != name || got.JKT != p.JKT() || !got.IssuedAt.Equal(epoch) || got.ID == "" {
				t.Fatalf("proof %+v", got)
			}
			// RFC 7638 thumbprint, against go-jose's.
			tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := b64.EncodeToString(tp); got.JKT != want {
				t.Fatalf("jkt %s, go-jose says %s", got.JKT, want)
			}
		})
	}
}

// RFC 7638 §3.1's example key and thumbprint.
func TestRFC7638_3_1_Thumbprint(t *testing.T) {
	jwk := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	k, err := parseJWK([]byte(jwk), latch.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; k.jkt != want {
		t.Fatalf("jkt %s, want %s", k.jkt, want)
	}
	if got, _ := Thumbprint(k.pub); got != k.jkt {
		t.Fatalf("Thumbprint %s, parseJWK %s", got, k.jkt)
	}
}

func TestRFC9449_4_3_Step2_OneWellFormedJWT(t *testing.T) {
	key := newECKey(t)
	good := mustProof(t, mustProver(t, key), "GET", testURL, testToken, "")
	parts := strings.Split(good, ".")
	c := mustChecker(t, Config{})
	for name, proof := range map[string]string{
		"empty":          "",
		"two segments":   parts[0] + "." + parts[1],
		"four segments":  good + ".x",
		"padded header":  parts[0] + "=." + parts[1] + "." + parts[2],
		"bad payload":    parts[0] + ".!!." + parts[2],
		"bad signature":  parts[0] + "." + parts[1] + ".*",
		"too large":      good + strings.Repeat("A", MaxProofSize),
		"header not obj": b64.EncodeToString([]byte(`[1]`)) + "." + parts[1] + "." + parts[2],
		"duplicate alg":  b64.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"ES256","alg":"none","jwk":{}}`)) + "." + parts[1] + "." + parts[2],
		"header kid":     forge(t, key, latch.ES256, with(goodHeader(t, key), "kid", "k1"), goodClaims()),
		"header crit":    forge(t, key, latch.ES256, with(goodHeader(t, key), "crit", []string{"exp"}), goodClaims()),
		"header jku":     forge(t, key, latch.ES256, with(goodHeader(t, key), "jku", "https://evil.example/jwks"), goodClaims()),
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, check(c, proof, getRequest()), ErrMalformed) })
	}
}

func TestRFC9449_4_2_RequiredClaims(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	for _, name := range []string{"jti", "htm", "htu", "iat"} {
		t.Run("no "+name, func(t *testing.T) {
			cl := goodClaims()
			delete(cl, name)
			wantErr(t, check(c, forge(t, key, latch.ES256, goodHeader(t, key), cl), getRequest()), ErrMalformed)
		})
	}
	for name, cl := range map[string]map[string]any{
		"jti number":     with(goodClaims(), "jti", 7),
		"jti empty":      with(goodClaims(), "jti", ""),
		"jti too long":   with(goodClaims(), "jti", strings.Repeat("j", maxJTI+1)),
		"iat string":     with(goodClaims(), "iat", "1800000000"),
		"iat fraction":   with(goodClaims(), "iat", 1800000000.5),
		"iat negative":   with(goodClaims(), "iat", -1),
		"htu number":     with(goodClaims(), "htu", 1),
		"ath not string": with(goodClaims(), "ath", true),
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, check(c, forge(t, key, latch.ES256, goodHeader(t, key), cl), getRequest()), ErrMalformed)
		})
	}
}

func TestRFC9449_4_3_Step4_TypIsDPoPJWT(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	for _, typ := range []any{"JWT", "at+jwt", "dpop", "", nil} {
		h := goodHeader(t, key)
		if typ == nil {
			delete(h, "typ")
		} else {
			h["typ"] = typ
		}
		wantErr(t, check(c, forge(t, key, latch.ES256, h, goodClaims()), getRequest()), ErrType)
	}
	for _, typ := range []string{"DPoP+JWT", "application/dpop+jwt"} {
		if err := check(c, forge(t, key, latch.ES256, with(goodHeader(t, key), "typ", typ), with(goodClaims(), "jti", typ)), getRequest()); err != nil {
			t.Errorf("typ %q: %v", typ, err)
		}
	}
}

func TestRFC9449_4_3_Step5_AlgIsAsymmetricAndAllowed(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	claims := b64.EncodeToString(mustJSON(t, goodClaims()))
	for _, alg := range []string{"none", "None", "HS256", "ES384", "RS512", ""} {
		t.Run(alg, func(t *testing.T) {
			h := b64.EncodeToString(mustJSON(t, with(goodHeader(t, key), "alg", alg)))
			// An HS256 "signature" keyed with the public key's bytes: the
			// classic algorithm-confusion forgery.
			mac := hmac.New(sha256.New, []byte(`{"kty":"EC"}`))
			mac.Write([]byte(h + "." + claims))
			for _, sig := range []string{"", b64.EncodeToString(mac.Sum(nil))} {
				wantErr(t, check(c, h+"."+claims+"."+sig, getRequest()), ErrAlgorithm)
			}
		})
	}
	// A configured allow-list is enforced: EdDSA only refuses ES256.
	ed := mustChecker(t, Config{Algorithms: []latch.Algorithm{latch.EdDSA}})
	wantErr(t, check(ed, mustProof(t, mustProver(t, key), "GET", testURL, testToken, ""), getRequest()), ErrAlgorithm)
	if !strings.Contains(ed.Algorithms(), "EdDSA") || strings.Contains(ed.Algorithms(), "ES256") {
		t.Fatalf("algs %q", ed.Algorithms())
	}
}

func TestRFC9449_4_3_Config_RefusesSymmetricAlgorithms(t *testing.T) {
	for _, a := range []latch.Algorithm{"none", "HS256", "ES384", latch.ES256 + " "} {
		if _, err := New(Config{Algorithms: []latch.Algorithm{a}}); err == nil {
			t.Errorf("alg %q configured", a)
		}
	}
	for name, cfg := range map[string]Config{
		"max age too long": {MaxAge: time.Hour},
		"negative max age": {MaxAge: -time.Second},
		"leeway > max age": {MaxAge: time.Second, Leeway: time.Minute},
		"duplicate alg":    {Algorithms: []latch.Algorithm{latch.ES256, latch.ES256}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRFC9449_4_3_Step6_SignatureVerifiesWithTheJWK(t *testing.T) {
	key, other := newECKey(t), newECKey(t)
	c := mustChecker(t, Config{})
	// Signed by another key than the one in jwk.
	wantErr(t, check(c, forge(t, other, latch.ES256, goodHeader(t, key), goodClaims()), getRequest()), ErrSignature)
	// A claim changed after signing.
	good := mustProof(t, mustProver(t, key), "GET", testURL, testToken, "")
	parts := strings.Split(good, ".")
	payload := b64.EncodeToString(mustJSON(t, with(goodClaims(), "htu", "https://evil.example/")))
	wantErr(t, check(c, parts[0]+"."+payload+"."+parts[2], getRequest()), ErrSignature)
	// A truncated signature.
	wantErr(t, check(c, parts[0]+"."+parts[1]+"."+parts[2][:40], getRequest()), ErrSignature)
}

func TestRFC9449_4_3_Step7_JWKIsAPublicKey(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	d := b64.EncodeToString(key.D.FillBytes(make([]byte, 32)))
	offCurve := publicJWK(t, key)
	offCurve["y"] = offCurve["x"]
	edKey := publicJWK(t, newEdKey(t))
	for name, jwk := range map[string]any{
		"private key":    with(publicJWK(t, key), "d", d),
		"symmetric key":  map[string]any{"kty": "oct", "k": "c2VjcmV0"},
		"off the curve":  offCurve,
		"P-384":          with(publicJWK(t, key), "crv", "P-384"),
		"OKP for ES256":  edKey,
		"jwk alg RS256":  with(publicJWK(t, key), "alg", "RS256"),
		"not an object":  "key",
		"padded x":       with(publicJWK(t, key), "x", publicJWK(t, key)["x"].(string)+"="),
		"no y":           without(publicJWK(t, key), "y"),
		"duplicate kty?": map[string]any{"kty": "EC"},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, check(c, forge(t, key, latch.ES256, with(goodHeader(t, key), "jwk", jwk), goodClaims()), getRequest()), ErrKey)
		})
	}
	t.Run("no jwk", func(t *testing.T) {
		wantErr(t, check(c, forge(t, key, latch.ES256, without(goodHeader(t, key), "jwk"), goodClaims()), getRequest()), ErrKey)
	})
	// Members a WebCrypto export adds are not refused.
	jwk := with(with(publicJWK(t, key), "ext", true), "key_ops", []string{"verify"})
	if err := check(c, forge(t, key, latch.ES256, with(goodHeader(t, key), "jwk", jwk), goodClaims()), getRequest()); err != nil {
		t.Fatal(err)
	}
}

func TestRFC9449_4_3_Step8_HTMMatchesTheMethod(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	for _, m := range []string{"POST", "get", ""} {
		wantErr(t, check(c, mustProof(t, mustProver(t, key), m, testURL, testToken, ""), getRequest()), ErrMethod)
	}
}

func TestRFC9449_4_3_Step9_HTUMatchesTheURI(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	for _, u := range []string{
		"https://api.example.com/v1/other",
		"http://api.example.com/v1/items",
		"https://evil.example/v1/items",
		"https://api.example.com:8443/v1/items",
		"https://api.example.com/v1/items/",
		"https://api.example.com/v1/Items",
		"/v1/items",
		"urn:x",
	} {
		t.Run(u, func(t *testing.T) {
			wantErr(t, check(c, forge(t, key, latch.ES256, goodHeader(t, key), with(goodClaims(), "htu", u)), getRequest()), ErrURL)
		})
	}
	// Equivalent under RFC 3986 §6.2.2 and §6.2.3, query and fragment ignored.
	for i, u := range []string{
		"https://api.example.com/v1/items?x=1",
		"https://api.example.com/v1/items#frag",
		"HTTPS://API.Example.COM/v1/items",
		"https://api.example.com:443/v1/items",
		"https://api.example.com/v1/%69tems",
		"https://api.example.com/v1/./x/../items",
	} {
		cl := with(with(goodClaims(), "htu", u), "jti", string(rune('a'+i)))
		if err := check(c, forge(t, key, latch.ES256, goodHeader(t, key), cl), getRequest()); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestNormalizeHTU(t *testing.T) {
	for in, want := range map[string]string{
		"http://h":                "http://h/",
		"http://h:80/a":           "http://h/a",
		"https://h:80/a":          "https://h:80/a",
		"https://[::1]:443/a":     "https://[::1]/a",
		"https://h/a%2fb":         "https://h/a%2Fb",
		"https://h/a%7eb":         "https://h/a~b",
		"https://h/a/b/../../..":  "https://h/",
		"https://h/a/.":           "https://h/a/",
		"https://h/a?b#c":         "https://h/a",
		"https://h/%2E%2E/secret": "https://h/secret",
	} {
		got, err := NormalizeHTU(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/a", "ftp://h/a", "https:///a", "https://u:p@h/", "https://h/%zz", "mailto:a@b"} {
		if got, err := NormalizeHTU(in); err == nil {
			t.Errorf("NormalizeHTU(%q) = %q, want an error", in, got)
		}
	}
}

func TestRFC9449_4_3_Step10_NonceWhenConfigured(t *testing.T) {
	key := newECKey(t)
	n := staticNonces{"n-1"}
	c := mustChecker(t, Config{Nonces: n})
	p := mustProver(t, key)
	wantErr(t, check(c, mustProof(t, p, "GET", testURL, testToken, ""), getRequest()), ErrNonce)
	wantErr(t, check(c, mustProof(t, p, "GET", testURL, testToken, "n-0"), getRequest()), ErrNonce)
	if err := check(c, mustProof(t, p, "GET", testURL, testToken, "n-1"), getRequest()); err != nil {
		t.Fatal(err)
	}
	if c.Nonce() != "n-1" {
		t.Fatalf("Nonce %q", c.Nonce())
	}
}

type staticNonces []string

func (s staticNonces) Valid(n string) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}
func (s staticNonces) Nonce() string { return s[0] }

func TestRFC9449_4_3_Step11_IATWithinTheWindow(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{MaxAge: time.Minute, Leeway: 5 * time.Second})
	for name, iat := range map[string]int64{
		"stale":  epoch.Add(-time.Minute - time.Second).Unix(),
		"future": epoch.Add(6 * time.Second).Unix(),
		"zero":   0,
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, check(c, forge(t, key, latch.ES256, goodHeader(t, key), with(goodClaims(), "iat", iat)), getRequest()), ErrIssuedAt)
		})
	}
	for i, iat := range []int64{epoch.Add(-time.Minute).Unix(), epoch.Add(5 * time.Second).Unix()} {
		cl := with(with(goodClaims(), "iat", iat), "jti", string(rune('a'+i)))
		if err := check(c, forge(t, key, latch.ES256, goodHeader(t, key), cl), getRequest()); err != nil {
			t.Errorf("iat %d: %v", iat, err)
		}
	}
}

func TestRFC9449_4_3_Step12_ATHIsTheTokenHash(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	p := mustProver(t, key)
	// A proof without ath, presented with a token.
	wantErr(t, check(c, mustProof(t, p, "GET", testURL, "", ""), getRequest()), ErrTokenHash)
	// A proof for another token.
	wantErr(t, check(c, mustProof(t, p, "GET", testURL, "another-token", ""), getRequest()), ErrTokenHash)
	// RFC 9449 §7.1's example: this token hashes to this ath.
	if got := TokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("TokenHash = %s", got)
	}
}

func TestRFC9449_6_1_ProofKeyIsTheBoundKey(t *testing.T) {
	key, other := newECKey(t), newECKey(t)
	c := mustChecker(t, Config{})
	req := getRequest()
	req.JKT = mustProver(t, other).JKT()
	wantErr(t, check(c, mustProof(t, mustProver(t, key), "GET", testURL, testToken, ""), req), ErrKeyBinding)
	req.JKT = mustProver(t, key).JKT()
	if err := check(c, mustProof(t, mustProver(t, key), "GET", testURL, testToken, ""), req); err != nil {
		t.Fatal(err)
	}
}

func TestRFC9449_11_1_ReplayedJTIIsRefused(t *testing.T) {
	key := newECKey(t)
	c := mustChecker(t, Config{})
	proof := mustProof(t, mustProver(t, key), "GET", testURL, testToken, "")
	if err := check(c, proof, getRequest()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, check(c, proof, getRequest()), ErrReplay)
	// The same jti under another key is another proof.
	other := newECKey(t)
	if err := check(c, forge(t, other, latch.ES256, goodHeader(t, other), goodClaims()), getRequest()); err != nil {
		t.Fatal(err)
	}
	if err := check(c, forge(t, key, latch.ES256, goodHeader(t, key), goodClaims()), getRequest()); err != nil {
		t.Fatal(err)
	}
	wantErr(t, check(c, forge(t, key, latch.ES256, goodHeader(t, key), goodClaims()), getRequest()), ErrReplay)
}

func TestRFC9449_11_1_ReplayCache_ForgetsOnlyAfterTheProofLifetime(t *testing.T) {
	now := epoch
	clock := func() time.Time { return now }
	cache := NewMemoryReplayCache(2, clock)
	c := mustChecker(t, Config{Now: clock, Replay: cache, MaxAge: time.Minute, Leeway: 5 * time.Second})
	key := newECKey(t)
	proof := mustProof(t, mustProver(t, key).WithClock(clock), "GET", testURL, testToken, "")
	if err := check(c, proof, getRequest()); err != nil {
		t.Fatal(err)
	}
	// Within the lifetime: refused as a replay (and as stale once past it).
	now = epoch.Add(time.Minute)
	wantErr(t, check(c, proof, getRequest()), ErrReplay)
	now = epoch.Add(time.Minute + time.Second)
	wantErr(t, check(c, proof, getRequest()), ErrIssuedAt)
	// After the cache's time the entry is gone.
	now = epoch.Add(2 * time.Minute)
	if _, err := cache.Seen(context.Background(), "x", now.Add(time.Minute)); err != nil || cache.Len() != 1 {
		t.Fatalf("len %d, err %v", cache.Len(), err)
	}
}

func TestMemoryReplayCache_FullRefusesRatherThanForget(t *testing.T) {
	now := epoch
	cache := NewMemoryReplayCache(2, func() time.Time { return now })
	ctx := context.Background()
	until := epoch.Add(time.Minute)
	for _, k := range []string{"a", "b"} {
		if seen, err := cache.Seen(ctx, k, until); seen || err != nil {
			t.Fatal(k, seen, err)
		}
	}
	if _, err := cache.Seen(ctx, "c", until); !errors.Is(err, ErrReplayCacheFull) || !errors.Is(err, ErrReplayUnavailable) {
		t.Fatalf("err %v", err)
	}
	if seen, _ := cache.Seen(ctx, "a", until); !seen {
		t.Fatal("a forgotten")
	}
	now = until
	if seen, err := cache.Seen(ctx, "a", until.Add(time.Minute)); seen || err != nil {
		t.Fatal("a not expired", seen, err)
	}
	// A full cache refuses the proof: Check does not accept it unchecked.
	key := newECKey(t)
	c := mustChecker(t, Config{Replay: failingCache{}})
	wantErr(t, check(c, mustProof(t, mustProver(t, key), "GET", testURL, testToken, ""), getRequest()), ErrReplayUnavailable)
}

// failingCache is a ReplayCache whose backend is down.
type failingCache struct{}

func (failingCache) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}

func with(m map[string]any, k string, v any) map[string]any {
	m = maps.Clone(m)
	m[k] = v
	return m
}

func without(m map[string]any, k string) map[string]any {
	m = maps.Clone(m)
	delete(m, k)
	return m
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestRFC9449_9_Nonces_AcceptedForTheirPeriodAndTheNext(t *testing.T) {
	now := epoch
	clock := func() time.Time { return now }
	key := []byte(strings.Repeat("k", 32))
	n, err := NewNonces(key, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	first := n.Nonce()
	if !n.Valid(first) {
		t.Fatal("own nonce refused")
	}
	other, _ := NewNonces([]byte(strings.Repeat("x", 32)), time.Minute, clock)
	if other.Valid(first) || n.Valid(first[:len(first)-1]+"A") || n.Valid("") || n.Valid("not-a-nonce") {
		t.Fatal("a nonce under another key, or altered, accepted")
	}
	// Another process with the same key accepts it.
	if twin, _ := NewNonces(key, time.Minute, clock); !twin.Valid(first) {
		t.Fatal("same key, other process: refused")
	}
	now = now.Add(time.Minute)
	if !n.Valid(first) || n.Nonce() == first {
		t.Fatal("the last period's nonce refused, or the nonce did not change")
	}
	now = now.Add(time.Minute)
	if n.Valid(first) {
		t.Fatal("a nonce two periods old accepted")
	}
	// Through a Checker: use_dpop_nonce until the proof carries it.
	c := mustChecker(t, Config{Nonces: n, Now: clock})
	p := mustProver(t, newECKey(t)).WithClock(clock)
	wantErr(t, check(c, mustProof(t, p, "GET", testURL, testToken, first), getRequest()), ErrNonce)
	if err := check(c, mustProof(t, p, "GET", testURL, testToken, c.Nonce()), getRequest()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("short"), nil} {
		if _, err := NewNonces(bad, time.Minute, nil); err == nil {
			t.Fatal("short key accepted")
		}
	}
	if _, err := NewNonces(key, time.Millisecond, nil); err == nil {
		t.Fatal("1ms period accepted")
	}
}
