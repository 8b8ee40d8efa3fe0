package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latch-auth/latch"
)

func TestToken_ClientCredentials_JWTHasRFC9068Claims(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "audience": {"other-api"}})
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	var tr map[string]any
	mustJSON(t, w.Body.Bytes(), &tr)
	if tr["token_type"] != "Bearer" || tr["expires_in"] != float64(600) || tr["scope"] != "read" {
		t.Fatalf("response %v", tr)
	}
	hdr, claims, _ := segments(t, tr["access_token"].(string))
	if hdr["typ"] != "at+jwt" || hdr["alg"] != "ES256" || hdr["kid"] == "" || len(hdr) != 3 {
		t.Fatalf("header %v", hdr)
	}
	now := e.clock.Now().Unix()
	want := map[string]any{"iss": testIssuer, "sub": c.ID, "aud": "other-api", "client_id": c.ID, "scope": "read",
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 600)}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if s, _ := claims["jti"].(string); len(s) < 16 {
		t.Errorf("jti %q", claims["jti"])
	}
}

func TestToken_ErrorsFollowRFC6749(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	public := e.client(registry.ClientSpec{AuthMethod: "none", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.test/cb"}})
	ccOnlyNoCC := e.client(registry.ClientSpec{GrantTypes: []string{"authorization_code"}, Audiences: []string{"api"}, RedirectURIs: []string{"https://app.test/cb"}})
	noAud := e.client(registry.ClientSpec{Scope: "read"})
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(k, v string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name   string
		c      creds
		form   url.Values
		status int
		code   string
	}{
		{"missing grant_type", c, url.Values{}, 400, "invalid_request"},
		{"unsupported grant", c, url.Values{"grant_type": {"urn:made:up"}}, 400, "unsupported_grant_type"},
		{"password grant not enabled for the client", c, url.Values{"grant_type": {"password"}}, 400, "unauthorized_client"},
		{"wrong secret", creds{c.ID, "x"}, cc, 401, "invalid_client"},
		{"unknown client", creds{"ghost", "x"}, cc, 401, "invalid_client"},
		{"no authentication", creds{}, cc, 401, "invalid_client"},
		{"public client", creds{public.ID, ""}, cc, 401, "invalid_client"},
		{"grant not registered", ccOnlyNoCC, cc, 400, "unauthorized_client"},
		{"scope beyond registration", c, with("scope", "read latch:admin"), 400, "invalid_scope"},
		{"malformed scope", c, with("scope", "read  write"), 400, "invalid_scope"},
		{"audience not registered", c, with("audience", "elsewhere"), 400, "invalid_target"},
		{"resource not registered", c, with("resource", "https://elsewhere"), 400, "invalid_target"},
		{"no audience at all", noAud, cc, 400, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("/oauth2/token", tt.c, tt.form)
			var body struct {
				Error string `json:"error"`
				Desc  string `json:"error_description"`
			}
			mustJSON(t, w.Body.Bytes(), &body)
			if w.Code != tt.status || body.Error != tt.code || body.Desc == "" {
				t.Fatalf("got %d %s, want %d %s with a description", w.Code, w.Body, tt.status, tt.code)
			}
			if tt.status == 401 && tt.c.ID != "" && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 after Basic auth without a Basic challenge")
			}
		})
	}
}

func TestInvariant10_BadInputGets4xxNeverPanicOr5xx(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	huge := strings.Repeat("a", 100<<10)
	for _, path := range []string{"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"} {
		cases := map[string]*http.Request{
			"GET":          httptest.NewRequest(http.MethodGet, path, nil),
			"JSON body":    httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"grant_type":"client_credentials"}`)),
			"huge body":    httptest.NewRequest(http.MethodPost, path, strings.NewReader("token="+huge)),
			"bad escapes":  httptest.NewRequest(http.MethodPost, path, strings.NewReader("token=%zz%")),
			"query string": httptest.NewRequest(http.MethodPost, path+"?client_secret=x", strings.NewReader("a=b")),
		}
		for name, r := range cases {
			if name != "JSON body" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r.Header.Set("Content-Type", "application/json")
			}
			r.SetBasicAuth(c.ID, c.Secret)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code < 400 || w.Code > 499 || !strings.Contains(w.Body.String(), `"error"`) {
				t.Errorf("%s %s: %d %s", path, name, w.Code, w.Body)
			}
		}
	}
}

// FuzzEndpoints sends arbitrary form bodies and Authorization headers to the
// token, introspection and revocation endpoints of a real server on SQLite.
// Whatever the input, the answer is never a 5xx (security invariant 10).
func FuzzEndpoints(f *testing.F) {
	e := newEnv(f)
	c := e.jwtClient()
	oc := e.opaqueClient()
	basic := "Basic " + b64std(c.ID+":"+c.Secret)
	f.Add(uint8(0), "grant_type=client_credentials&scope=read", basic)
	f.Add(uint8(1), "token="+url.QueryEscape(e.token(c, nil)), basic)
	f.Add(uint8(2), "token="+url.QueryEscape(e.token(oc, nil)), basic)
	f.Add(uint8(1), "token=lt_at_AAAA&client_id="+oc.ID+"&client_secret="+oc.Secret, "")
	f.Add(uint8(0), "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.", "")
	f.Add(uint8(0), "grant_type=client_credentials&resource=&audience=x", basic)
	rs := e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{"api", latch.AudienceIntrospection}})
	rsTok := e.token(rs, url.Values{"scope": {latch.ScopeIntrospect}, "audience": {latch.AudienceIntrospection}})
	f.Add(uint8(1), "token="+url.QueryEscape(e.token(oc, nil)), "Bearer "+rsTok)
	f.Add(uint8(1), "token=x&client_secret=y", "Bearer "+rsTok)
	f.Add(uint8(1), "token=x", "bearer  a b")
	paths := []string{"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"}
	f.Fuzz(func(t *testing.T, which uint8, body, auth string) {
		r := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// signAssertion signs a private_key_jwt client assertion for client id
// with aud (any JSON value: a string, or an array for audience injection).
func signAssertion(t *testing.T, key *ecdsa.PrivateKey, id string, aud any, now time.Time, exp time.Duration, jti string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": id, "sub": id, "aud": aud, "iat": now.Unix(), "exp": now.Add(exp).Unix()}
	if jti != "" {
		claims["jti"] = jti
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sendAssertion(e *env, id, assertion string) *httptest.ResponseRecorder {
	return e.do("/oauth2/token", creds{}, url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
}

// An assertion's aud must be the issuer identifier alone
// (draft-ietf-oauth-rfc7523bis): the token endpoint URL, or an array that
// adds any other value to the issuer, is what another server could
// harvest from an assertion made for it and replay here (audience
// injection).
func TestPrivateKeyJWT_AudienceOnlyTheIssuer(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c := e.client(registry.ClientSpec{AuthMethod: "private_key_jwt", JWKS: jwks, Audiences: []string{"api"}})
	tests := []struct {
		name string
		aud  any
		want int
	}{
		{"issuer string", testIssuer, 200},
		{"one-element array of the issuer", []string{testIssuer}, 200},
		{"token endpoint", testIssuer + "/oauth2/token", 401},
		{"array with the token endpoint", []string{testIssuer + "/oauth2/token"}, 401},
		{"issuer and another server", []string{testIssuer, "https://other.example"}, 401},
		{"another server and the issuer", []string{"https://other.example", testIssuer}, 401},
		{"issuer twice", []string{testIssuer, testIssuer}, 401},
		{"issuer with a trailing slash", testIssuer + "/", 401},
		{"empty array", []string{}, 401},
		{"number", 1, 401},
		{"null", nil, 401},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := signAssertion(t, key, c.ID, tt.aud, e.clock.Now(), time.Minute, fmt.Sprintf("aud-%d", i))
			w := sendAssertion(e, c.ID, a)
			if w.Code != tt.want {
				t.Fatalf("aud %v: %d %s, want %d", tt.aud, w.Code, w.Body, tt.want)
			}
			if tt.want == 401 && !strings.Contains(w.Body.String(), "invalid_client") {
				t.Fatalf("aud %v: %s, want invalid_client", tt.aud, w.Body)
			}
		})
	}
}

// TestPrivateKeyJWT_AssertionAuthenticatesOnceOnly covers RFC 7523 client
// authentication: a correct assertion works once; a replay, a wrong key, a
// wrong audience and an expired assertion are refused.
func TestPrivateKeyJWT_AssertionAuthenticatesOnceOnly(t *testing.T) {
	e := newEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c := e.client(registry.ClientSpec{AuthMethod: "private_key_jwt", JWKS: jwks, Audiences: []string{"api"}})
	if c.Secret != "" {
		t.Fatal("private_key_jwt client got a secret")
	}
	assertion := func(signKey *ecdsa.PrivateKey, aud string, exp time.Duration, jti string) string {
		return signAssertion(t, signKey, c.ID, aud, e.clock.Now(), exp, jti)
	}
	send := func(a string) *httptest.ResponseRecorder {
		return sendAssertion(e, c.ID, a)
	}
	good := assertion(key, testIssuer, time.Minute, "a-1")
	if w := send(good); w.Code != 200 {
		t.Fatalf("valid assertion: %d %s", w.Code, w.Body)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, a := range map[string]string{
		"replay":         good,
		"wrong key":      assertion(other, testIssuer, time.Minute, "a-2"),
		"wrong aud":      assertion(key, "https://elsewhere", time.Minute, "a-3"),
		"expired":        assertion(key, testIssuer, -time.Hour, "a-4"),
		"too long-lived": assertion(key, testIssuer, 48*time.Hour, "a-5"),
		"no jti":         assertion(key, testIssuer, time.Minute, ""),
	} {
		if w := send(a); w.Code != 401 || !strings.Contains(w.Body.String(), "invalid_client") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	// Copies of one assertion sent at once: exactly one authenticates.
	raced := assertion(key, testIssuer, time.Minute, "a-raced")
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if send(raced).Code == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != 1 {
		t.Errorf("%d of 32 concurrent copies of one assertion were accepted, want exactly 1", n)
	}
	// Registering a private key instead of a public one is refused.
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1"}}})
	if _, err := e.clients.Create(context.Background(), registry.ClientSpec{AuthMethod: "private_key_jwt", JWKS: priv}); err == nil {
		t.Fatal("a JWKS with a private key was accepted")
	}
}

func TestDiscovery_MetadataJWKSHealth(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		w := e.get(p, nil)
		var md map[string]any
		mustJSON(t, w.Body.Bytes(), &md)
		if w.Code != 200 || md["issuer"] != testIssuer || md["token_endpoint"] != testIssuer+"/oauth2/token" ||
			md["jwks_uri"] != testIssuer+"/.well-known/jwks.json" || md["introspection_endpoint"] == nil || md["revocation_endpoint"] == nil {
			t.Fatalf("%s: %d %v", p, w.Code, md)
		}
	}
	w := e.get("/.well-known/jwks.json", nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("jwks: %d %v", w.Code, w.Header())
	}
	var set jose.JSONWebKeySet
	mustJSON(t, w.Body.Bytes(), &set)
	if len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks keys %v", set.Keys)
	}
	if w := e.get("/healthz", nil); w.Code != 200 {
		t.Fatalf("healthz %d", w.Code)
	}
	if w := e.get("/readyz", nil); w.Code != 200 {
		t.Fatalf("readyz %d %s", w.Code, w.Body)
	}
	e.db.Close()
	if w := e.get("/readyz", nil); w.Code != 503 {
		t.Fatalf("readyz with a closed store: %d %s", w.Code, w.Body)
	}
}

func TestMetrics_CountIssuedIntrospectedRevoked(t *testing.T) {
	e := newEnv(t)
	c := e.opaqueClient()
	tok := e.token(c, nil)
	e.introspect(c, tok)
	e.do("/oauth2/revoke", c, url.Values{"token": {tok}})
	e.introspect(c, tok)
	body := e.get("/metrics", nil).Body.String()
	for _, want := range []string{
		`latch_tokens_issued_total{format="opaque",grant_type="client_credentials"} 1`,
		`latch_tokens_introspected_total{format="opaque",result="active"} 1`,
		`latch_tokens_introspected_total{format="opaque",result="inactive"} 1`,
		`latch_tokens_revoked_total{format="opaque",result="revoked"} 1`,
		`latch_http_requests_total{code="200",handler="token"} 1`,
		`latch_http_request_duration_seconds_bucket{handler="introspect"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAdminAPI_RequiresLatchAdminScope(t *testing.T) {
	e := newEnv(t)
	admin := e.client(registry.ClientSpec{Scope: "read latch:admin", Audiences: []string{"api", latch.AudienceAdmin}})
	adminTok := e.token(admin, url.Values{"scope": {"latch:admin"}, "audience": {latch.AudienceAdmin}})
	plainTok := e.token(admin, url.Values{"scope": {"read"}, "audience": {latch.AudienceAdmin}})
	otherAPITok := e.token(admin, url.Values{"scope": {"latch:admin"}, "audience": {"api"}})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	w := e.get("/admin/v1/clients", nil)
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no token: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := e.get("/admin/v1/clients", bearer(plainTok)); w.Code != 403 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "insufficient_scope") {
		t.Fatalf("token without latch:admin: %d %v", w.Code, w.Header())
	}
	// A latch:admin token minted for another API is not an admin token:
	// that API (or anyone it forwards the token to) must not administer us.
	if w := e.get("/admin/v1/clients", bearer(otherAPITok)); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("admin-scoped token for another audience: %d %v", w.Code, w.Header())
	}
	if w := e.get("/admin/v1/clients", http.Header{"Authorization": {"Basic x"}}); w.Code != 400 {
		t.Fatalf("malformed Authorization: %d, want 400 (RFC 6750 §3.1)", w.Code)
	}
	if w := e.get("/admin/v1/clients", bearer("garbage")); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("garbage token: %d %v", w.Code, w.Header())
	}
	if w := e.get("/admin/v1/clients", bearer(adminTok)); w.Code != 200 || !strings.Contains(w.Body.String(), admin.ID) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}

	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+adminTok)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	w = post("/admin/v1/clients", `{"client_id":"svc","scope":"read","audiences":["api"],"access_token_format":"opaque"}`)
	var created map[string]any
	mustJSON(t, w.Body.Bytes(), &created)
	if w.Code != 201 || created["client_secret"] == "" || created["access_token_format"] != "opaque" {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if tok := e.token(creds{"svc", created["client_secret"].(string)}, nil); !strings.HasPrefix(tok, "lt_at_") {
		t.Fatalf("client created by the admin API got %q", tok)
	}
	for name, tc := range map[string]struct {
		body   string
		status int
	}{
		"duplicate":     {`{"client_id":"svc"}`, 409},
		"unknown field": {`{"client_idd":"x"}`, 400},
		"bad format":    {`{"access_token_format":"xml"}`, 400},
		"not JSON":      {`client_id=x`, 400},
		"two objects":   {`{}{}`, 400},
	} {
		if w := post("/admin/v1/clients", tc.body); w.Code != tc.status || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	if w := post("/admin/v1/clients/svc/rotate-secret", ""); w.Code != 200 || !strings.Contains(w.Body.String(), "client_secret") {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	if w := e.get("/admin/v1/clients/nope", bearer(adminTok)); w.Code != 404 {
		t.Fatalf("get unknown: %d %s", w.Code, w.Body)
	}
	if w := e.get("/admin/v1/keys", bearer(adminTok)); w.Code != 200 || !strings.Contains(w.Body.String(), "active") {
		t.Fatalf("keys: %d %s", w.Code, w.Body)
	}
	if w := post("/admin/v1/keys/rotate", `{"alg":"EdDSA"}`); w.Code != 201 || !strings.Contains(w.Body.String(), "EdDSA") {
		t.Fatalf("rotate key: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest(http.MethodDelete, "/admin/v1/clients/svc", nil)
	r.Header.Set("Authorization", "Bearer "+adminTok)
	w = httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
}
