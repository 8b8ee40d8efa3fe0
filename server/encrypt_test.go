package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/server"
)

// rsEncKey is a resource server's encryption key pair; the server gets
// only pubJWK.
type rsEncKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newRSEncKey(t testing.TB, kid string, curve elliptic.Curve) *rsEncKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &rsEncKey{priv: k, kid: kid}
}

func (k *rsEncKey) pubJWK(t testing.TB, mod ...func(map[string]any)) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Use: "enc", Algorithm: string(jose.ECDH_ES_A256KW)})
	if err != nil {
		t.Fatal(err)
	}
	if len(mod) == 0 {
		return b
	}
	var m map[string]any
	mustJSON(t, b, &m)
	for _, f := range mod {
		f(m)
	}
	b, _ = json.Marshal(m)
	return b
}

// open decrypts a compact JWE as the resource server would, independently
// of package verify: go-jose with the algorithms pinned.
func (k *rsEncKey) open(t testing.TB, raw string) (header jose.Header, payload string) {
	t.Helper()
	obj, err := jose.ParseEncryptedCompact(raw, []jose.KeyAlgorithm{jose.ECDH_ES_A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("parse JWE %q: %v", raw, err)
	}
	b, err := obj.Decrypt(k.priv)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return obj.Header, string(b)
}

func (e *env) encryptedClient(k *rsEncKey) creds {
	return e.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api"}, AccessTokenEncryptionKey: k.pubJWK(e.t)})
}

func TestEncryptedAccessToken_ClientCredentials_RoundTrip(t *testing.T) {
	e := newEnv(t)
	k := newRSEncKey(t, "rs-enc-1", elliptic.P256())
	c := e.encryptedClient(k)
	tok := e.token(c, url.Values{"scope": {"read"}})
	if strings.Count(tok, ".") != 4 {
		t.Fatalf("an encrypted client got %q, want a compact JWE", tok)
	}
	// The outer header: how it is encrypted, to which key, and that a JWT
	// is inside.
	seg := strings.Split(tok, ".")
	var outer map[string]any
	mustJSON(t, must64(t, seg[0]), &outer)
	if outer["alg"] != "ECDH-ES+A256KW" || outer["enc"] != "A256GCM" || outer["kid"] != "rs-enc-1" || outer["cty"] != "JWT" || outer["typ"] != "JWT" {
		t.Fatalf("JWE header %v", outer)
	}
	hdr, inner := k.open(t, tok)
	if hdr.KeyID != "rs-enc-1" {
		t.Fatalf("kid %q", hdr.KeyID)
	}
	h, claims := verifyJWS(t, e, inner)
	if h["typ"] != "at+jwt" {
		t.Fatalf("inner typ %v", h["typ"])
	}
	if claims["sub"] != c.ID || claims["client_id"] != c.ID || claims["scope"] != "read" || claims["aud"] != "api" || claims["iss"] != testIssuer || claims["jti"] == "" {
		t.Fatalf("inner claims %v", claims)
	}
	// Each issuance is a fresh ephemeral key and content key.
	if tok2 := e.token(c, url.Values{"scope": {"read"}}); strings.Split(tok2, ".")[1] == seg[1] || strings.Split(tok2, ".")[2] == seg[2] {
		t.Fatal("two tokens share an encrypted key or IV")
	}
	// A client without a key still gets a plain JWS.
	if plain := e.token(e.jwtClient(), nil); strings.Count(plain, ".") != 2 {
		t.Fatalf("plain client got %q", plain)
	}
}

// What the client (and any browser or log that sees the token) can read:
// the JWE header, which holds no claim, and ciphertext.
func TestEncryptedAccessToken_ClientCannotReadClaims(t *testing.T) {
	e := newEnv(t)
	k := newRSEncKey(t, "rs-enc-1", elliptic.P256())
	c := e.encryptedClient(k)
	tok := e.token(c, url.Values{"scope": {"read write"}})
	_, inner := k.open(t, tok)
	_, claims := verifyJWS(t, e, inner)
	secrets := []string{c.ID, "read write", claims["jti"].(string), testIssuer, `"api"`, "client_id", "scope", "at+jwt"}
	for i, s := range strings.Split(tok, ".") {
		b := must64(t, s)
		for _, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) || strings.Contains(s, base64.RawURLEncoding.EncodeToString([]byte(secret))) {
				t.Errorf("segment %d reveals %q", i+1, secret)
			}
		}
	}
	var hdr map[string]any
	mustJSON(t, must64(t, strings.Split(tok, ".")[0]), &hdr)
	for name := range hdr {
		switch name {
		case "alg", "enc", "kid", "epk", "cty", "typ":
		default:
			t.Errorf("JWE header carries %q", name)
		}
	}
	// Decrypting with another key fails.
	other := newRSEncKey(t, "rs-enc-1", elliptic.P256())
	obj, err := jose.ParseEncryptedCompact(tok, []jose.KeyAlgorithm{jose.ECDH_ES_A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Decrypt(other.priv); err == nil {
		t.Fatal("decrypted with the wrong key")
	}
}

// The server holds no private key: it cannot introspect or revoke an
// encrypted token, and says so rather than pretending.
func TestEncryptedAccessToken_IntrospectInactive_RevokeUnsupported(t *testing.T) {
	e := newEnv(t)
	k := newRSEncKey(t, "rs-enc-1", elliptic.P256())
	c := e.encryptedClient(k)
	tok := e.token(c, nil)
	if got := e.introspect(e.jwtClient(), tok); got != inactive {
		t.Fatalf("introspection of an encrypted token: %s", got)
	}
	if got := e.introspect(c, tok); got != inactive {
		t.Fatalf("introspection by its own client: %s", got)
	}
	w := e.do("/oauth2/revoke", c, url.Values{"token": {tok}})
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	mustJSON(t, w.Body.Bytes(), &oe)
	if w.Code != 400 || oe.Error != oauth.ErrUnsupportedTokenType || !strings.Contains(oe.Description, "encrypted") {
		t.Fatalf("revoke of an encrypted token: %d %s", w.Code, w.Body)
	}
	// Five segments of garbage are an invalid token, answered 200 (RFC 7009 §2.2).
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {"a.b.c.d.e"}}); w.Code != 200 {
		t.Fatalf("revoke of a.b.c.d.e: %d %s", w.Code, w.Body)
	}
}

func TestEncryptedAccessToken_TokenExchange_EncryptedForTheExchangingClient(t *testing.T) {
	e := newEnv(t)
	k := newRSEncKey(t, "upstream-enc", elliptic.P384())
	owner := e.opaqueClient()
	gw := e.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"api"},
		AccessTokenEncryptionKey: k.pubJWK(t)})
	code, r := e.exchange(gw, exchangeForm(e.token(owner, url.Values{"scope": {"read"}})))
	if code != 200 || r.IssuedTokenType != server.TokenTypeJWT {
		t.Fatalf("exchange: %d %+v", code, r)
	}
	if strings.Count(r.AccessToken, ".") != 4 {
		t.Fatalf("exchanged token for a gateway with a key: %q, want a JWE", r.AccessToken)
	}
	_, inner := k.open(t, r.AccessToken)
	_, claims := verifyJWS(t, e, inner)
	if claims["client_id"] != owner.ID || claims["act"].(map[string]any)["sub"] != "gateway" {
		t.Fatalf("inner claims %v", claims)
	}
}

// A key without a kid gets its RFC 7638 thumbprint as the JWE kid, which
// is also what verify indexes such a key under.
func TestEncryptedAccessToken_KeyWithoutKid_ThumbprintKid(t *testing.T) {
	e := newEnv(t)
	k := newRSEncKey(t, "", elliptic.P256())
	c := e.client(registry.ClientSpec{Audiences: []string{"api"}, AccessTokenEncryptionKey: k.pubJWK(t, func(m map[string]any) {
		delete(m, "use")
		delete(m, "alg")
	})})
	tok := e.token(c, nil)
	hdr, _ := k.open(t, tok)
	jwk := jose.JSONWebKey{Key: &k.priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
		t.Fatalf("kid %q, want the thumbprint", hdr.KeyID)
	}
}

func TestClients_AccessTokenEncryptionKey_Validation(t *testing.T) {
	k := newRSEncKey(t, "rs", elliptic.P256())
	priv, err := json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: "rs"})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := json.Marshal(jose.JSONWebKey{Key: &rsaKey.PublicKey})
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	okp, _ := json.Marshal(jose.JSONWebKey{Key: edPub})
	pub := string(k.pubJWK(t))
	p521 := string(newRSEncKey(t, "", elliptic.P521()).pubJWK(t))
	x25519 := `{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`
	offCurve := strings.Replace(pub, `"x":"`, `"x":"A`, 1)
	offCurve = offCurve[:strings.Index(offCurve, `"x":"`)+5] + strings.Repeat("A", 43) + offCurve[strings.Index(offCurve, `"x":"`)+5+44:]
	for _, tc := range []struct {
		name, key, format string
		want              string // "" = accepted
	}{
		{"P-256 public", pub, "", ""},
		{"P-521 public without kid, use, alg", p521, "", ""},
		{"with whitespace", "{\n  " + pub[1:], "", ""},
		{"private key", string(priv), "", "private key material"},
		{"private key, D upper case", strings.Replace(string(priv), `"d":`, `"D":`, 1), "", "private key material"},
		{"symmetric key", `{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`, "", "private key material"},
		{"RSA", string(rsaPub), "", "must be an EC key"},
		{"Ed25519", string(okp), "", "must be an EC key"},
		{"X25519", x25519, "", "X25519 is not supported"},
		{"P-224", `{"kty":"EC","crv":"P-224","x":"AA","y":"AA"}`, "", "crv"},
		{"off curve", offCurve, "", "not a valid JWK"},
		{"JWK Set", `{"keys":[` + pub + `]}`, "", "not a JWK Set"},
		{"array", `[` + pub + `]`, "", "one JWK"},
		{"not JSON", `EC P-256`, "", "one JWK"},
		{"null", `null`, "", "one JWK"},
		{"use sig", string(k.pubJWK(t, func(m map[string]any) { m["use"] = "sig" })), "", `use "sig"`},
		{"alg RSA-OAEP", string(k.pubJWK(t, func(m map[string]any) { m["alg"] = "RSA-OAEP" })), "", `alg "RSA-OAEP"`},
		{"alg ECDH-ES", string(k.pubJWK(t, func(m map[string]any) { m["alg"] = "ECDH-ES" })), "", `alg "ECDH-ES"`},
		{"key_ops sign", string(k.pubJWK(t, func(m map[string]any) { m["key_ops"] = []string{"verify"} })), "", "key_ops"},
		{"key_ops empty (WebCrypto)", string(k.pubJWK(t, func(m map[string]any) { m["key_ops"] = []string{} })), "", ""},
		{"key_ops deriveKey", string(k.pubJWK(t, func(m map[string]any) { m["key_ops"] = []string{"deriveKey"} })), "", ""},
		{"kid not printable", string(k.pubJWK(t, func(m map[string]any) { m["kid"] = "a\nb" })), "", "printable"},
		{"kid too long", string(k.pubJWK(t, func(m map[string]any) { m["kid"] = strings.Repeat("k", 257) })), "", "longer"},
		{"huge", `{"kty":"EC","pad":"` + strings.Repeat("x", 9000) + `"}`, "", "larger"},
		{"opaque format", pub, "opaque", "needs JWT access tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := (&registry.Clients{}).Build(registry.ClientSpec{Audiences: []string{"api"}, AccessTokenFormat: tc.format,
				AccessTokenEncryptionKey: json.RawMessage(tc.key)})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				var stored map[string]any
				mustJSON(t, c.AccessTokenEncryptionKey, &stored)
				if _, hasD := stored["d"]; hasD || stored["kty"] != "EC" || bytes.ContainsAny(c.AccessTokenEncryptionKey, "\n ") {
					t.Fatalf("stored %s", c.AccessTokenEncryptionKey)
				}
				return
			}
			if err == nil || latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want EINVALID about %q", err, tc.want)
			}
		})
	}
	// Through the admin API: a 400 problem, nothing created.
	e := newEnv(t)
	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(admin, url.Values{"scope": {"latch:admin"}})
	post := func(body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/admin/v1/clients", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	w := post(`{"client_id":"enc","audiences":["api"],"access_token_encryption_key":` + string(priv) + `}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "private key material") {
		t.Fatalf("admin API with a private key: %d %s", w.Code, w.Body)
	}
	w = post(`{"client_id":"enc","audiences":["api"],"access_token_encryption_key":` + pub + `}`)
	if w.Code != 201 {
		t.Fatalf("admin API with a public key: %d %s", w.Code, w.Body)
	}
	var view registry.ClientView
	mustJSON(t, w.Body.Bytes(), &view)
	if !strings.Contains(string(view.AccessTokenEncryptionKey), `"kid":"rs"`) {
		t.Fatalf("view %s", view.AccessTokenEncryptionKey)
	}
}

// FuzzClientEncryptionKey: whatever an operator sends as the key, Build
// never panics; a key it accepts is stored as a public EC JWK that the
// server can encrypt to.
func FuzzClientEncryptionKey(f *testing.F) {
	k := newRSEncKey(f, "rs", elliptic.P256())
	f.Add([]byte(k.pubJWK(f)))
	priv, _ := json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: "rs"})
	f.Add(priv)
	f.Add([]byte(`{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the admin API refuses invalid JSON before Build
		}
		c, _, err := (&registry.Clients{}).Build(registry.ClientSpec{Audiences: []string{"api"}, AccessTokenEncryptionKey: raw})
		if err != nil {
			if latch.ErrorCode(err) != latch.EINVALID {
				t.Fatalf("not EINVALID: %v", err)
			}
			return
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(c.AccessTokenEncryptionKey); err != nil {
			t.Fatalf("stored key does not parse: %v", err)
		}
		pub, ok := jwk.Key.(*ecdsa.PublicKey)
		if !ok {
			t.Fatalf("accepted a %T", jwk.Key)
		}
		e, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES_A256KW, Key: pub}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Encrypt([]byte("x")); err != nil {
			t.Fatalf("accepted key cannot be encrypted to: %v", err)
		}
	})
}

func must64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// TestTokenSizes measures a typical access token of each format, as sent
// in Authorization: Bearer, for the README's table (go test -run
// TestTokenSizes -v ./server/): issuer https://auth.example.com, audience
// https://api.example.com, two scopes, a 22-character client id, the
// server's 43-character signing kid; the
// encrypted token is for a P-256 resource-server key registered without a
// kid (so its 43-character thumbprint is the JWE kid). It checks that the
// JWE is exactly the JWS's base64url plus the fixed parts, so the size
// follows from the JWS's for any claims.
func TestTokenSizes(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.Issuer = "https://auth.example.com" })
	k := newRSEncKey(t, "", elliptic.P256())
	spec := registry.ClientSpec{Scope: "read write", Audiences: []string{"https://api.example.com"}}
	plain := e.client(spec)
	spec.AccessTokenFormat = "opaque"
	opaque := e.client(spec)
	spec.AccessTokenFormat = ""
	spec.AccessTokenEncryptionKey = k.pubJWK(t, func(m map[string]any) { delete(m, "kid") })
	encrypted := e.client(spec)
	form := func() url.Values { return url.Values{"scope": {"read write"}} }

	jws := e.token(plain, form())
	jwe := e.token(encrypted, form())
	op := e.token(opaque, form())
	_, inner := k.open(t, jwe)
	seg := strings.Split(jwe, ".")
	// RFC 7516 §7.1: header . wrapped 32-byte key (40 bytes) . 96-bit IV .
	// ciphertext (as long as the JWS) . 128-bit tag, each base64url.
	b64 := base64.RawURLEncoding.EncodedLen
	if want := len(seg[0]) + 1 + b64(40) + 1 + b64(12) + 1 + b64(len(inner)) + 1 + b64(16); len(jwe) != want {
		t.Fatalf("JWE of %d bytes around a JWS of %d: want %d", len(jwe), len(inner), want)
	}
	if len(inner) != len(jws) {
		t.Fatalf("inner JWS %d bytes, plain JWS %d: same claims, same size expected", len(inner), len(jws))
	}
	t.Logf("opaque %d, JWT ES256 %d, JWE(JWT ES256) %d (JWE header %d)", len(op), len(jws), len(jwe), len(seg[0]))
}

// BenchmarkIssue_Encrypted compares client_credentials issuance through
// the handler for a client with plain JWT access tokens and one whose
// tokens are encrypted to a P-256 resource-server key: the difference is
// one ephemeral key generation, one ECDH, an AES key wrap and AES-GCM.
func BenchmarkIssue_Encrypted(b *testing.B) {
	e := newEnv(b)
	k := newRSEncKey(b, "rs-enc-1", elliptic.P256())
	for _, tc := range []struct {
		name string
		c    creds
	}{
		{"jws", e.jwtClient()},
		{"jwe", e.encryptedClient(k)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
			b.ReportAllocs()
			for b.Loop() {
				if w := e.do("/oauth2/token", tc.c, form); w.Code != 200 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}

// The code and refresh grants encrypt too; the ID token's at_hash binds
// the token as the client received it (the JWE); and revoking the refresh
// token denylists the encrypted access tokens of its family by the jti the
// server recorded when it signed them: the feed carries that jti, which a
// resource server checks after decrypting.
func TestEncryptedAccessToken_CodeAndRefreshGrants_FamilyRevocationDenylistsThem(t *testing.T) {
	e := newEnv(t)
	e.run()
	k := newRSEncKey(t, "rs-enc-1", elliptic.P256())
	c := e.webClient(func(s *registry.ClientSpec) { s.AccessTokenEncryptionKey = k.pubJWK(t) })
	code, _ := e.newCode(c, e.alice())
	status, t0 := e.redeem(c, code)
	if status != 200 || strings.Count(t0.AccessToken, ".") != 4 {
		t.Fatalf("code grant: %d %q", status, t0.AccessToken)
	}
	sum := sha256.Sum256([]byte(t0.AccessToken))
	if got := payload(t, t0.IDToken)["at_hash"]; got != base64.RawURLEncoding.EncodeToString(sum[:16]) {
		t.Fatalf("at_hash %v is not of the JWE the client received", got)
	}
	status, t1 := e.refresh(c, t0.RefreshToken)
	if status != 200 || strings.Count(t1.AccessToken, ".") != 4 {
		t.Fatalf("refresh grant: %d %q", status, t1.AccessToken)
	}
	var jtis []string
	for _, tok := range []string{t0.AccessToken, t1.AccessToken} {
		_, inner := k.open(t, tok)
		_, claims := verifyJWS(t, e, inner)
		jtis = append(jtis, claims["jti"].(string))
	}
	if w := e.do("/oauth2/revoke", c, url.Values{"token": {t1.RefreshToken}}); w.Code != 200 {
		t.Fatalf("revoke the refresh token: %d %s", w.Code, w.Body)
	}
	denied := map[string]bool{}
	for _, en := range e.feed(e.jwtClient(), "after=0").Entries {
		if en.Kind == "jwt" && en.Iss == testIssuer {
			denied[en.JTI] = true
		}
	}
	for i, jti := range jtis {
		if !denied[jti] {
			t.Errorf("access token %d (jti %s) of the revoked family is not in the feed; got %v", i, jti, denied)
		}
	}
}
