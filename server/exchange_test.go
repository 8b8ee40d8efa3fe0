package server_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// verifyJWS checks raw's signature with the server's published JWKS and
// returns its header and claims.
func verifyJWS(t testing.TB, e *env, raw string) (map[string]any, map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	mustJSON(t, e.get("/.well-known/jwks.json", nil).Body.Bytes(), &set)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	if _, err := jws.Verify(keys[0].Key); err != nil {
		t.Fatalf("signature: %v", err)
	}
	h, p, _ := segments(t, raw)
	return h, p
}

// gatewayClient is a confidential client registered for token exchange in
// front of the API "api".
func (e *env) gatewayClient() creds {
	return e.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"api"}})
}

func exchangeForm(subject string) url.Values {
	return url.Values{
		"grant_type":           {latch.GrantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {server.TokenTypeAccessToken},
		"requested_token_type": {server.TokenTypeJWT},
	}
}

type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	Error           string `json:"error"`
}

func (e *env) exchange(c creds, form url.Values) (int, exchangeResponse) {
	e.t.Helper()
	w := e.do("/oauth2/token", c, form)
	var r exchangeResponse
	mustJSON(e.t, w.Body.Bytes(), &r)
	return w.Code, r
}

func TestTokenExchange_OpaqueForJWT_CarriesSubjectGrantAndActor(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	gw := e.gatewayClient()
	opaque := e.token(owner, url.Values{"scope": {"read"}})

	code, r := e.exchange(gw, exchangeForm(opaque))
	if code != 200 {
		t.Fatalf("exchange: %d %+v", code, r)
	}
	if r.IssuedTokenType != server.TokenTypeJWT || r.TokenType != "Bearer" || r.ExpiresIn != 300 || r.Scope != "read" {
		t.Fatalf("response (RFC 8693 §2.2.1): %+v", r)
	}
	h, c := verifyJWS(t, e, r.AccessToken)
	if h["typ"] != "at+jwt" {
		t.Fatalf("typ %v, want at+jwt (RFC 9068 §2.1)", h["typ"])
	}
	now := e.clock.Now().Unix()
	want := map[string]any{"iss": testIssuer, "sub": owner.ID, "client_id": owner.ID, "scope": "read", "aud": "api",
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 300), "act": map[string]any{"sub": gw.ID}}
	for k, v := range want {
		if got := c[k]; !equalJSON(got, v) {
			t.Errorf("claim %s = %v, want %v", k, got, v)
		}
	}
	if jti, _ := c["jti"].(string); jti == "" {
		t.Error("no jti")
	}
	// The JWT is an access token of this issuer like any other.
	if got := e.introspect(owner, r.AccessToken); !strings.Contains(got, `"active":true`) || !strings.Contains(got, `"sub":"`+owner.ID+`"`) {
		t.Fatalf("exchanged JWT introspects to %s", got)
	}
	// Two exchanges of one token give two JWTs (fresh jti).
	_, r2 := e.exchange(gw, exchangeForm(opaque))
	if _, c2 := verifyJWS(t, e, r2.AccessToken); c2["jti"] == c["jti"] {
		t.Fatal("jti reused across exchanges")
	}
	if body := e.get("/metrics", nil).Body.String(); !strings.Contains(body, `latch_tokens_issued_total{format="jwt",grant_type="token_exchange"} 2`) {
		t.Error("metrics lack the token_exchange count")
	}
}

func TestTokenExchange_ExpiryIsEarlierOfSubjectAndFiveMinutes(t *testing.T) {
	e := newEnv(t)
	owner := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenFormat: "opaque", AccessTokenTTL: 60})
	gw := e.gatewayClient()
	opaque := e.token(owner, nil)
	e.clock.Advance(20 * time.Second)
	code, r := e.exchange(gw, exchangeForm(opaque))
	if code != 200 || r.ExpiresIn != 40 {
		t.Fatalf("exchange of a token with 40s left: %d %+v", code, r)
	}
	_, c := verifyJWS(t, e, r.AccessToken)
	if c["exp"] != float64(e.clock.Now().Unix()+40) {
		t.Fatalf("exp %v, want the subject token's", c["exp"])
	}
}

func TestTokenExchange_InactiveSubject_IsInvalidGrant(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	gw := e.gatewayClient()
	revoked := e.token(owner, nil)
	if w := e.do("/oauth2/revoke", owner, url.Values{"token": {revoked}}); w.Code != 200 {
		t.Fatalf("revoke: %d", w.Code)
	}
	expired := e.token(owner, nil)
	live := e.token(owner, nil)
	unknown, _ := token.NewOpaque(latch.KindAccess, strings.NewReader(strings.Repeat("x", 64)))
	malformed := live[:len(live)-1] + "A"
	if malformed == live {
		malformed = live[:len(live)-1] + "B"
	}
	e.clock.Advance(11 * time.Minute) // past the default 10m lifetime
	for name, tok := range map[string]string{"revoked": revoked, "expired": expired, "unknown": unknown, "bad checksum": malformed} {
		code, r := e.exchange(gw, exchangeForm(tok))
		if code != 400 || r.Error != "invalid_grant" {
			t.Errorf("%s subject: %d %+v, want 400 invalid_grant", name, code, r)
		}
	}
}

func TestTokenExchange_RefusesWhatItDoesNotSupport(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	gw := e.gatewayClient()
	jwtOwner := e.jwtClient()
	opaque := e.token(owner, url.Values{"scope": {"read"}})
	with := func(k, v string) url.Values {
		f := exchangeForm(opaque)
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	plainGW := e.client(registry.ClientSpec{Audiences: []string{"api"}}) // client_credentials only
	public := e.client(registry.ClientSpec{AuthMethod: "none", GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"api"}})
	otherGW := e.client(registry.ClientSpec{GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"other-api"}})
	for _, tc := range []struct {
		name   string
		c      creds
		form   url.Values
		status int
		code   string
	}{
		{"client not registered for the grant", plainGW, exchangeForm(opaque), 400, "unauthorized_client"},
		{"public client", public, exchangeForm(opaque), 401, "invalid_client"},
		{"no client", creds{}, exchangeForm(opaque), 401, "invalid_client"},
		{"no subject_token", gw, with("subject_token", ""), 400, "invalid_request"},
		{"no subject_token_type", gw, with("subject_token_type", ""), 400, "invalid_request"},
		{"refresh token type", gw, with("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "unsupported_token_type"},
		{"id token requested", gw, with("requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request"},
		{"actor token", gw, with("actor_token", "x"), 400, "invalid_request"},
		{"JWT subject", gw, with("subject_token", e.token(jwtOwner, nil)), 400, "invalid_request"},
		{"refresh-token prefix", gw, with("subject_token", "lt_rt_"+opaque[len("lt_at_"):]), 400, "invalid_request"},
		{"audience not registered for the gateway", otherGW, exchangeForm(opaque), 400, "invalid_target"},
		{"audience beyond the subject's", gw, with("audience", "other-api"), 400, "invalid_target"},
		{"scope beyond the subject's", gw, with("scope", "read write"), 400, "invalid_scope"},
	} {
		w := e.do("/oauth2/token", tc.c, tc.form)
		var r exchangeResponse
		mustJSON(t, w.Body.Bytes(), &r)
		if w.Code != tc.status || r.Error != tc.code || r.AccessToken != "" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, w.Code, w.Body, tc.status, tc.code)
		}
	}
}

func TestTokenExchange_NarrowsScopeAndAudience(t *testing.T) {
	e := newEnv(t)
	owner := e.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api", "other-api"}, AccessTokenFormat: "opaque"})
	gw := e.gatewayClient() // registered for "api" only
	opaque := e.token(owner, url.Values{"scope": {"read write"}, "audience": {"api", "other-api"}})

	// Without parameters: the subject's scope, its audiences that the
	// gateway is registered for.
	code, r := e.exchange(gw, exchangeForm(opaque))
	if code != 200 {
		t.Fatalf("exchange: %d %+v", code, r)
	}
	if _, c := verifyJWS(t, e, r.AccessToken); c["aud"] != "api" || c["scope"] != "read write" {
		t.Fatalf("aud %v scope %v, want api and the subject's scope", c["aud"], c["scope"])
	}
	f := exchangeForm(opaque)
	f.Set("scope", "read")
	f.Set("audience", "api")
	code, r = e.exchange(gw, f)
	if code != 200 || r.Scope != "read" {
		t.Fatalf("narrowed exchange: %d %+v", code, r)
	}
	if _, c := verifyJWS(t, e, r.AccessToken); c["aud"] != "api" || c["scope"] != "read" {
		t.Fatalf("aud %v scope %v, want api and read", c["aud"], c["scope"])
	}
}

func TestDiscovery_AdvertisesTokenExchangeAndIntrospectionSigning(t *testing.T) {
	e := newEnv(t)
	var md struct {
		Grants []string `json:"grant_types_supported"`
		Algs   []string `json:"introspection_signing_alg_values_supported"`
	}
	mustJSON(t, e.get("/.well-known/oauth-authorization-server", nil).Body.Bytes(), &md)
	if !slices.Contains(md.Grants, latch.GrantTokenExchange) || !slices.Equal(md.Algs, []string{"ES256"}) {
		t.Fatalf("metadata: %+v", md)
	}
}

// introspectJWT asks for the RFC 9701 answer.
func (e *env) introspectJWT(c creds, tok, accept string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", accept)
	r.SetBasicAuth(c.ID, c.Secret)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestIntrospect_JWTResponse_RFC9701(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	rs := e.resourceServer() // the introspecting resource server
	opaque := e.token(owner, url.Values{"scope": {"read"}})

	w := e.introspectJWT(rs, opaque, "application/json;q=0.5, application/token-introspection+jwt")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/token-introspection+jwt" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("RFC 9701 answer: %d %v %s", w.Code, w.Header(), w.Body)
	}
	h, c := verifyJWS(t, e, w.Body.String())
	if h["typ"] != "token-introspection+jwt" {
		t.Fatalf("typ %v", h["typ"])
	}
	if c["iss"] != testIssuer || c["aud"] != rs.ID || c["iat"] != float64(e.clock.Now().Unix()) {
		t.Fatalf("top-level claims (RFC 9701 §5): %v", c)
	}
	if _, ok := c["sub"]; ok {
		t.Fatal("top-level sub: the answer must not look like an access token (RFC 9701 §8.1)")
	}
	if _, ok := c["exp"]; ok {
		t.Fatal("top-level exp: the answer must not look like an access token (RFC 9701 §8.1)")
	}
	ti, _ := c["token_introspection"].(map[string]any)
	if ti["active"] != true || ti["sub"] != owner.ID || ti["scope"] != "read" || ti["client_id"] != owner.ID {
		t.Fatalf("token_introspection: %v", ti)
	}

	// Inactive: exactly {"active":false} inside (security invariant 5).
	e.do("/oauth2/revoke", owner, url.Values{"token": {opaque}})
	_, c = verifyJWS(t, e, e.introspectJWT(rs, opaque, "application/token-introspection+jwt").Body.String())
	if ti, _ := c["token_introspection"].(map[string]any); len(ti) != 1 || ti["active"] != false {
		t.Fatalf("inactive token_introspection: %v", ti)
	}

	// Without the Accept (or with q=0) the answer is plain RFC 7662 JSON.
	for _, accept := range []string{"application/json", "application/token-introspection+jwt;q=0"} {
		if w := e.introspectJWT(rs, opaque, accept); w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("Accept %q: %v", accept, w.Header())
		}
	}
}

// TestIntrospect_JWTResponse_IsNotAnAccessToken is security invariant 2 for
// RFC 9701 answers: signed by the same key, it is still refused as an
// access token, by its typ.
func TestIntrospect_JWTResponse_IsNotAnAccessToken(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	rs := e.jwtClient()
	answer := e.introspectJWT(rs, e.token(owner, nil), "application/token-introspection+jwt").Body.String()
	if got := e.introspect(rs, answer); got != inactive {
		t.Fatalf("an introspection answer introspects as %s", got)
	}
	_, err := token.Verify(context.Background(), answer, jwksKeys(t, e), token.VerifyOptions{
		Issuer: testIssuer, SkipAudienceCheck: true, Type: "at+jwt", Algorithms: latch.Algorithms,
	})
	if !errors.Is(err, token.ErrType) {
		t.Fatalf("token.Verify as at+jwt: %v, want token.ErrType", err)
	}
}

// jwksKeys is the server's published JWKS as a token.KeySet.
type jwksKeySet struct{ set jose.JSONWebKeySet }

func jwksKeys(t testing.TB, e *env) jwksKeySet {
	var k jwksKeySet
	mustJSON(t, e.get("/.well-known/jwks.json", nil).Body.Bytes(), &k.set)
	return k
}

func (k jwksKeySet) Key(_ context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	keys := k.set.Key(kid)
	if len(keys) != 1 {
		return nil, "", token.ErrUnknownKey
	}
	return keys[0].Key, latch.Algorithm(keys[0].Algorithm), nil
}

func equalJSON(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			if !equalJSON(v, bm[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestTokenExchange_OwnBudget_UntaggedAndForgedTokensSpendAnother: token
// exchange has a budget of its own, untagged and forged tokens spend a third,
// and neither spends the client's introspection budget (security invariant 5).
func TestTokenExchange_OwnBudget_UntaggedAndForgedTokensSpendAnother(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.IntrospectionRate = 0.001; c.IntrospectionBurst = 2 })
	owner := e.opaqueClient()
	// A gateway that also introspects the tokens of its audience.
	gw := e.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{latch.GrantTokenExchange},
		Scope: latch.ScopeIntrospect, Audiences: []string{"api"}})
	opaque := e.token(owner, nil)
	if _, tag, err := token.CheckTag(opaque, nil); err != nil || tag != token.TagUnknownKey {
		t.Fatalf("the server minted %q (tag %v, %v), want a tagged token", opaque, tag, err)
	}
	untagged, _ := token.NewOpaque(latch.KindAccess, nil)
	otherKey, _ := token.GenerateTagKey(nil)
	forged, _ := token.NewTaggedOpaque(latch.KindAccess, otherKey, nil)
	// Forged and untagged tokens spend their own budget...
	for i, want := range []int{400, 400, 429} {
		subject := []string{untagged, forged, untagged}[i]
		if w := e.do("/oauth2/token", gw, exchangeForm(subject)); w.Code != want {
			t.Fatalf("untagged exchange %d: %d, want %d: %s", i, w.Code, want, w.Body)
		}
	}
	// ...which leaves the tagged tokens theirs whole,
	for i := range 2 {
		if code, r := e.exchange(gw, exchangeForm(opaque)); code != 200 {
			t.Fatalf("tagged exchange %d: %d %+v", i, code, r)
		}
	}
	w := e.do("/oauth2/token", gw, exchangeForm(opaque))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("exchange over the budget: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// and exchanges leave introspection its own.
	if w := e.do("/oauth2/introspect", gw, url.Values{"token": {opaque}}); w.Code != 200 || !strings.Contains(w.Body.String(), `"active":true`) {
		t.Fatalf("introspection after the exchanges: %d %s", w.Code, w.Body)
	}
}

func TestOpaqueTokenKeys_ConfidentialClientsOnly_TagWhatTheServerMints(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	gw := e.gatewayClient()
	get := func(c creds) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/opaque-token-keys", nil)
		if c.ID != "" {
			r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	for _, c := range []creds{{}, {gw.ID, "wrong"}} {
		if w := get(c); w.Code != 401 {
			t.Fatalf("keys for %q: %d %s", c.ID, w.Code, w.Body)
		}
	}
	w := get(gw)
	var doc struct {
		Keys []struct{ KID, K string }
	}
	mustJSON(t, w.Body.Bytes(), &doc)
	if w.Code != 200 || len(doc.Keys) != 1 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("keys: %d %v %s", w.Code, w.Header(), w.Body)
	}
	secret, _ := base64.RawURLEncoding.DecodeString(doc.Keys[0].K)
	key, err := token.NewTagKey(secret)
	if err != nil || key.ID() != doc.Keys[0].KID {
		t.Fatalf("key %+v: %v", doc.Keys[0], err)
	}
	if _, tag, err := token.CheckTag(e.token(owner, nil), []*token.TagKey{key}); err != nil || tag != token.TagValid {
		t.Fatalf("a minted token under the published key: %v %v", tag, err)
	}
	var md map[string]any
	mustJSON(t, e.get("/.well-known/oauth-authorization-server", nil).Body.Bytes(), &md)
	if md["opaque_token_keys_endpoint"] != testIssuer+"/oauth2/opaque-token-keys" {
		t.Fatalf("metadata: opaque_token_keys_endpoint = %v", md["opaque_token_keys_endpoint"])
	}
}
