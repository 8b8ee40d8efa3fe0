package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

var b64 = base64.RawURLEncoding

func segments(t testing.TB, jwt string) (header map[string]any, payload map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	h, _ := b64.DecodeString(parts[0])
	p, _ := b64.DecodeString(parts[1])
	s, _ := b64.DecodeString(parts[2])
	mustJSON(t, h, &header)
	mustJSON(t, p, &payload)
	return header, payload, s
}

func encodeSeg(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// forge builds a compact JWS from header and payload signed by sign.
func forge(t testing.TB, header, payload map[string]any, sign func(input []byte) []byte) string {
	input := encodeSeg(t, header) + "." + encodeSeg(t, payload)
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

func hs256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func es256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// highSTwin returns the other valid ECDSA signature of the same JWS: s' = n - s.
// It verifies, with the same claims and jti, but different bytes.
func highSTwin(t testing.TB, jwt string) string {
	parts := strings.Split(jwt, ".")
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	twin := append([]byte(nil), sig...)
	s.FillBytes(twin[32:])
	return parts[0] + "." + parts[1] + "." + b64.EncodeToString(twin)
}

// TestInvariant1_ForgedTokens_IntrospectInactive: the verifier never trusts
// alg or key material from the token (security invariant 1). Every forgery
// introspects to exactly {"active":false}, and none makes the server fetch
// anything.
func TestInvariant1_ForgedTokens_IntrospectInactive(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	good := e.token(c, nil)
	if got := e.introspect(c, good); !strings.Contains(got, `"active":true`) {
		t.Fatalf("genuine token inactive: %s", got)
	}
	hdr, claims, sig := segments(t, good)
	kid := hdr["kid"].(string)

	// What our JWKS publishes, in the forms an attacker would try as an HMAC secret.
	pub, _, err := e.keys.Key(context.Background(), kid)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwksBody, _ := e.keys.JWKS()

	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWK, _ := json.Marshal(jose.JSONWebKey{Key: attacker.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})

	// Anything that would make the server fetch a URL counts here.
	var fetched atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write([]byte(`{"keys":[` + string(attackerJWK) + `]}`))
	}))
	defer trap.Close()

	with := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": hdr["alg"], "kid": kid, "typ": "at+jwt"}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	altered := map[string]any{}
	for k, v := range claims {
		altered[k] = v
	}
	altered["scope"] = "read write latch:admin"
	input := strings.Join(strings.Split(good, ".")[:2], ".")
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 0x01
	none := func([]byte) []byte { return nil }

	forgeries := map[string]string{
		"stripped signature":          input + ".",
		"altered signature":           input + "." + b64.EncodeToString(flipped),
		"altered payload":             strings.Split(good, ".")[0] + "." + encodeSeg(t, altered) + "." + strings.Split(good, ".")[2],
		"signed by attacker, our kid": forge(t, with(nil), claims, es256(attacker)),
		"unknown kid":                 forge(t, with(map[string]any{"kid": "attacker-kid"}), claims, es256(attacker)),
		"no kid":                      forge(t, with(map[string]any{"kid": nil}), claims, es256(attacker)),
		"embedded jwk":                forge(t, with(map[string]any{"jwk": json.RawMessage(attackerJWK)}), claims, es256(attacker)),
		"jku to attacker":             forge(t, with(map[string]any{"jku": trap.URL}), claims, es256(attacker)),
		"x5u to attacker":             forge(t, with(map[string]any{"x5u": trap.URL}), claims, es256(attacker)),
		"x5c":                         forge(t, with(map[string]any{"x5c": []string{"MIIB"}}), claims, es256(attacker)),
		"unknown crit":                forge(t, with(map[string]any{"crit": []string{"exp"}, "exp": 1}), claims, es256(attacker)),
		"HS256 with PKIX DER pubkey":  forge(t, with(map[string]any{"alg": "HS256"}), claims, hs256(der)),
		"HS256 with PEM pubkey":       forge(t, with(map[string]any{"alg": "HS256"}), claims, hs256(pemKey)),
		"HS256 with JWKS bytes":       forge(t, with(map[string]any{"alg": "HS256"}), claims, hs256(jwksBody)),
		"alg switched to RS256":       forge(t, with(map[string]any{"alg": "RS256"}), claims, es256(attacker)),
		"altered claims, real sig":    input[:len(input)-2] + "AA." + strings.Split(good, ".")[2],
		"two segments":                input,
		"four segments":               good + ".e30",
		"oversized":                   good + strings.Repeat("A", 9000),
		"opaque-looking garbage":      "lt_at_" + strings.Repeat("A", 49),
		"empty-ish":                   "..",
	}
	for _, casing := range []string{"none", "None", "NONE", "nOnE", "NoNe"} {
		forgeries["alg "+casing] = forge(t, with(map[string]any{"alg": casing}), claims, none)
		forgeries["alg "+casing+" with signature"] = forge(t, with(map[string]any{"alg": casing}), claims, es256(attacker))
	}
	for name, tok := range forgeries {
		t.Run(name, func(t *testing.T) {
			if got := e.introspect(c, tok); got != inactive {
				t.Fatalf("forgery introspected as %s", got)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the server fetched an attacker URL %d times", n)
	}
}

// TestInvariant2_TypChecked_IDTokenNotAnAccessToken: a token signed with our
// own key but typed as an ID token (or untyped) is not an access token.
func TestInvariant2_TypChecked_IDTokenNotAnAccessToken(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	kid, alg, key, err := e.keys.Signing()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(kid, alg, key)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	claims := &token.Claims{Issuer: testIssuer, Subject: c.ID, Audience: token.Audience{"api"}, ExpiresAt: now.Add(time.Minute).Unix(),
		IssuedAt: now.Unix(), ID: "jti-1", ClientID: c.ID, Scope: "read", Extra: e.registrationClaim(c)}
	at, err := signer.Sign("at+jwt", claims)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(c, at); !strings.Contains(got, `"active":true`) {
		t.Fatalf("control token inactive: %s", got)
	}
	for _, typ := range []string{"JWT", "id_token+jwt", "rt+jwt", "application/jwt", "logout+jwt"} {
		tok, err := signer.Sign(typ, claims)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.introspect(c, tok); got != inactive {
			t.Errorf("typ %q introspected as %s", typ, got)
		}
	}
}

// TestInvariant3_TimeAndIssuerClaimsChecked covers exp, nbf, iat and iss,
// with the configured leeway.
func TestInvariant3_TimeAndIssuerClaimsChecked(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	kid, alg, key, _ := e.keys.Signing()
	signer, _ := token.NewSigner(kid, alg, key)
	now := e.clock.Now()
	base := func() *token.Claims {
		return &token.Claims{Issuer: testIssuer, Subject: c.ID, Audience: token.Audience{"api"}, ExpiresAt: now.Add(time.Minute).Unix(),
			IssuedAt: now.Unix(), ID: "j", ClientID: c.ID, Extra: e.registrationClaim(c)}
	}
	cases := map[string]func(*token.Claims){
		"expired beyond leeway":     func(cl *token.Claims) { cl.ExpiresAt = now.Add(-time.Minute).Unix() },
		"nbf in the future":         func(cl *token.Claims) { cl.NotBefore = now.Add(time.Minute).Unix() },
		"iat in the future":         func(cl *token.Claims) { cl.IssuedAt = now.Add(time.Hour).Unix() },
		"foreign issuer, our key":   func(cl *token.Claims) { cl.Issuer = "https://evil.test" },
		"issuer differs by a slash": func(cl *token.Claims) { cl.Issuer = testIssuer + "/" },
	}
	for name, mut := range cases {
		cl := base()
		mut(cl)
		tok, err := signer.Sign("at+jwt", cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.introspect(c, tok); got != inactive {
			t.Errorf("%s: introspected as %s", name, got)
		}
	}
	// exp is exact for the server's own tokens (as for opaque ones); the
	// leeway covers clock skew between nodes on nbf and iat only.
	cl := base()
	cl.ExpiresAt = now.Add(-1 * time.Second).Unix()
	tok, _ := signer.Sign("at+jwt", cl)
	if got := e.introspect(c, tok); got != inactive {
		t.Errorf("token 1s past exp: %s", got)
	}
	cl = base()
	cl.NotBefore = now.Add(10 * time.Second).Unix()
	cl.IssuedAt = now.Add(10 * time.Second).Unix()
	tok, _ = signer.Sign("at+jwt", cl)
	if got := e.introspect(c, tok); !strings.Contains(got, `"active":true`) {
		t.Errorf("token from a node 10s ahead, within the 30s leeway: %s", got)
	}
	// A real token stops being active at its exp.
	real := e.token(c, nil)
	e.clock.Advance(10 * time.Minute)
	if got := e.introspect(c, real); got != inactive {
		t.Errorf("expired issued token: %s", got)
	}
}

// TestInvariant4_DenylistKeyedOnIssJti_HighSTwinOfRevokedTokenInactive: ECDSA
// signatures are malleable, so a revoked token's twin (same claims, other
// valid signature) must die with it. The denylist entry is purged after exp.
func TestInvariant4_DenylistKeyedOnIssJti_HighSTwinOfRevokedTokenInactive(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	tok := e.token(c, nil)
	twin := highSTwin(t, tok)
	if twin == tok {
		t.Fatal("twin is identical")
	}
	if got := e.introspect(c, twin); !strings.Contains(got, `"active":true`) {
		t.Fatalf("the high-s twin of a live token is a valid signature and should be active before revocation: %s", got)
	}
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {tok}}); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	for name, tk := range map[string]string{"original": tok, "high-s twin": twin} {
		if got := e.introspect(c, tk); got != inactive {
			t.Errorf("%s after revocation: %s", name, got)
		}
	}
	// Revoking the twin is the same entry, not a second one.
	e.do("/oauth2/revoke", c, url.Values{"token": {twin}})
	entries, err := e.db.RevocationsSince(context.Background(), 0, 10)
	if err != nil || len(entries) != 1 || entries[0].Kind != latch.RevokeJWT {
		t.Fatalf("denylist entries: %v, %v", entries, err)
	}
	// Purged once the token could no longer verify anyway.
	if _, err := e.db.PurgeExpired(context.Background(), e.clock.Now().Add(9*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.db.IsRevoked(context.Background(), testIssuer, entries[0].JTI); !ok {
		t.Fatal("denylist entry purged before the token expired")
	}
	if _, err := e.db.PurgeExpired(context.Background(), e.clock.Now().Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.db.IsRevoked(context.Background(), testIssuer, entries[0].JTI); ok {
		t.Fatal("denylist entry kept after the token expired")
	}
}

// TestInvariant5_InactiveTokensAllLookTheSame: inactive, expired, revoked,
// malformed and foreign tokens, of both formats, give exactly
// {"active":false}; introspection needs client authentication and is
// rate-limited.
func TestInvariant5_InactiveTokensAllLookTheSame(t *testing.T) {
	e := newEnv(t)
	jc, oc := e.jwtClient(), e.opaqueClient()
	revokedOpaque := e.token(oc, nil)
	e.do("/oauth2/revoke", oc, url.Values{"token": {revokedOpaque}})
	expiring := e.token(oc, nil)
	unknown, _ := token.NewOpaque(latch.KindAccess, nil)
	refreshShaped, _ := token.NewOpaque(latch.KindRefresh, nil)
	live := e.token(oc, nil)
	mangled := live[:len(live)-1] + string("AB"[strings.IndexByte("AB", live[len(live)-1])+1&1])
	foreign := forge(t, map[string]any{"alg": "ES256", "kid": "k", "typ": "at+jwt"}, map[string]any{"iss": "https://other", "exp": 9999999999}, func([]byte) []byte { return make([]byte, 64) })
	e.clock.Advance(11 * time.Minute)
	cases := map[string]string{
		"revoked opaque": revokedOpaque, "expired opaque": expiring, "unknown opaque": unknown,
		"unknown refresh-shaped": refreshShaped, "checksum broken": mangled, "foreign JWT": foreign,
		"garbage": "hello", "whitespace": "   ", "unicode": "lt_at_ñ",
	}
	for name, tok := range cases {
		if got := e.introspect(jc, tok); got != inactive {
			t.Errorf("%s: %s", name, got)
		}
	}
}

// TestIntrospect_DeletedClientsJWT_IsInactive: deleting a client ends its
// JWTs here at once (resource servers verifying locally learn it at exp).
func TestIntrospect_DeletedClientsJWT_IsInactive(t *testing.T) {
	e := newEnv(t)
	owner, asker := e.jwtClient(), e.jwtClient()
	tok := e.token(owner, nil)
	if err := e.db.DeleteClient(context.Background(), owner.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second) // past the client cache TTL
	if got := e.introspect(asker, tok); got != inactive {
		t.Fatalf("JWT of a deleted client: %s", got)
	}
}

func TestIntrospect_RequiresClientAuthentication(t *testing.T) {
	e := newEnv(t)
	c := e.opaqueClient()
	tok := e.token(c, nil)
	for name, creds := range map[string]creds{"none": {}, "wrong secret": {c.ID, "nope"}, "unknown client": {"ghost", c.Secret}} {
		w := e.do("/oauth2/introspect", creds, url.Values{"token": {tok}})
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"invalid_client"`) {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	// Unknown client and wrong secret are indistinguishable.
	a := e.do("/oauth2/introspect", creds{c.ID, "nope"}, url.Values{"token": {tok}})
	b := e.do("/oauth2/introspect", creds{"ghost", "nope"}, url.Values{"token": {tok}})
	if a.Body.String() != b.Body.String() || a.Code != b.Code {
		t.Errorf("wrong secret %d %s vs unknown client %d %s", a.Code, a.Body, b.Code, b.Body)
	}
}

func TestIntrospect_RateLimitedPerClient_429WithRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.IntrospectionRate = 1; c.IntrospectionBurst = 3 })
	a, b := e.opaqueClient(), e.jwtClient()
	tok := e.token(a, nil)
	for i := 0; i < 3; i++ {
		if w := e.do("/oauth2/introspect", a, url.Values{"token": {tok}}); w.Code != 200 {
			t.Fatalf("request %d within burst: %d", i, w.Code)
		}
	}
	w := e.do("/oauth2/introspect", a, url.Values{"token": {tok}})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Another client has its own budget.
	if w := e.do("/oauth2/introspect", b, url.Values{"token": {tok}}); w.Code != 200 {
		t.Fatalf("other client limited too: %d", w.Code)
	}
}

func TestRevoke_ClientMayRevokeOnlyItsOwnTokens(t *testing.T) {
	e := newEnv(t)
	owner, other := e.opaqueClient(), e.jwtClient()
	jwtOwner := e.jwtClient()
	for _, tc := range []struct {
		name  string
		owner creds
	}{{"opaque", owner}, {"jwt", jwtOwner}} {
		tok := e.token(tc.owner, nil)
		w := e.do("/oauth2/revoke", other, url.Values{"token": {tok}})
		if w.Code != 400 || !strings.Contains(w.Body.String(), "unauthorized_client") {
			t.Errorf("%s: foreign revoke answered %d %s", tc.name, w.Code, w.Body)
		}
		if got := e.introspect(tc.owner, tok); !strings.Contains(got, `"active":true`) {
			t.Errorf("%s: token revoked by another client: %s", tc.name, got)
		}
	}
}

func TestRevoke_InvalidOrUnknownToken_200(t *testing.T) {
	e := newEnv(t)
	c := e.opaqueClient()
	unknown, _ := token.NewOpaque(latch.KindAccess, nil)
	for _, tok := range []string{unknown, "garbage", "a.b.c", "lt_at_x"} {
		if w := e.do("/oauth2/revoke", c, url.Values{"token": {tok}}); w.Code != 200 {
			t.Errorf("revoke %q: %d %s", tok, w.Code, w.Body)
		}
	}
	if w := e.do("/oauth2/revoke", c, url.Values{}); w.Code != 400 {
		t.Errorf("missing token: %d", w.Code)
	}
}

// TestInvariant9_SecretsNeverStoredOrLogged: no bearer secret (client
// secret, opaque token) is anywhere in the database files, WAL included, and
// none reaches the logs, even at debug level where every request is logged.
func TestInvariant9_SecretsNeverStoredOrLogged(t *testing.T) {
	e := newEnv(t) // logs at debug level into e.logs
	c := e.opaqueClient()
	tok := e.token(c, nil)
	e.introspect(c, tok)
	e.do("/oauth2/token", creds{c.ID, "wrong-secret-value"}, url.Values{"grant_type": {"client_credentials"}})
	e.do("/oauth2/introspect", c, url.Values{"token": {tok + "x"}})
	kept := e.token(c, nil) // stays live: still in the tokens table
	e.do("/oauth2/revoke", c, url.Values{"token": {tok}})
	if !strings.Contains(e.logs.String(), "handler=introspect") {
		t.Fatal("the debug access log is not on: this test would prove nothing")
	}
	files, err := filepath.Glob(e.db.Path() + "*")
	if err != nil || len(files) < 2 {
		t.Fatalf("database files %v: %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"client secret": c.Secret, "opaque token": tok, "live opaque token": kept} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s found in %s", name, filepath.Base(f))
			}
		}
		// The hash of the live token is there: the check above can fail.
		if strings.HasSuffix(f, "-wal") || strings.HasSuffix(f, ".db") {
			if bytes.Contains(b, token.Hash(kept)) {
				t.Logf("%s holds the live token's SHA-256, as it should", filepath.Base(f))
			}
		}
	}
	logs := e.logs.String()
	for _, secret := range []string{c.Secret, tok, kept, "wrong-secret-value"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the logs:\n%s", logs)
		}
	}
}

// Over https every answer, whatever the route or status, carries
// Strict-Transport-Security; an http issuer (dev on loopback) sends none.
func TestHSTS_EveryResponseWhenIssuerIsHTTPS(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/.well-known/openid-configuration"}, {"GET", "/login"},
		{"POST", "/oauth2/token"}, {"GET", "/oauth2/authorize"}, {"GET", "/no-such-page"}, {"GET", "/userinfo"},
	} {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest(tc.method, testIssuer+tc.path, nil))
		if got := w.Header().Get("Strict-Transport-Security"); got != server.HSTSHeader {
			t.Errorf("%s %s (%d): Strict-Transport-Security %q, want %q", tc.method, tc.path, w.Code, got, server.HSTSHeader)
		}
	}
	dev := newEnv(t, func(c *server.Config) { c.Issuer, c.InsecureAllowHTTP = "http://127.0.0.1:8080", true })
	w := httptest.NewRecorder()
	dev.h.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:8080/healthz", nil))
	if got := w.Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("http issuer: Strict-Transport-Security %q, want none", got)
	}
}
