package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/internal/cputime"
	"github.com/latch-auth/latch/internal/redistest"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

const tokenURL = testIssuer + "/oauth2/token"

// prover is a client's DPoP key, making proofs on the env's clock.
func (e *env) prover() *dpop.Prover {
	e.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := dpop.NewProver(k)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.WithClock(e.clock.Now)
}

func mustProof(tb testing.TB, p *dpop.Prover, method, u, tok, nonce string) string {
	tb.Helper()
	proof, err := p.Proof(method, u, tok, nonce)
	if err != nil {
		tb.Fatal(err)
	}
	return proof
}

// doDPoP is do with DPoP headers (none, one or several).
func (e *env) doDPoP(path string, c creds, form url.Values, proofs ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) grantDPoP(c creds, form url.Values, proofs ...string) (int, tokenResp) {
	e.t.Helper()
	w := e.doDPoP("/oauth2/token", c, form, proofs...)
	var tr tokenResp
	mustJSON(e.t, w.Body.Bytes(), &tr)
	return w.Code, tr
}

func ccForm() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

// introspection decodes an introspection answer.
type introspection struct {
	Active    bool   `json:"active"`
	TokenType string `json:"token_type"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

func (e *env) introspectJSON(c creds, tok string) introspection {
	e.t.Helper()
	var in introspection
	mustJSON(e.t, []byte(e.introspect(c, tok)), &in)
	return in
}

func cnfOf(tb testing.TB, jwt string) string {
	tb.Helper()
	cnf, _ := payload(tb, jwt)["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// TestRFC9449_5_ClientCredentials_JWTBoundToTheProofKey: a token request
// with a proof gets a DPoP token whose cnf.jkt is the proof key's
// thumbprint, and introspection says so; one without gets a Bearer token.
func TestRFC9449_5_ClientCredentials_JWTBoundToTheProofKey(t *testing.T) {
	e := newEnv(t)
	c, rs := e.jwtClient(), e.resourceServer()
	p := e.prover()
	status, tr := e.grantDPoP(c, ccForm(), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || tr.TokenType != "DPoP" {
		t.Fatalf("token with proof: %d %+v", status, tr)
	}
	if got := cnfOf(t, tr.AccessToken); got != p.JKT() {
		t.Fatalf("cnf.jkt = %q, want %q", got, p.JKT())
	}
	if in := e.introspectJSON(rs, tr.AccessToken); !in.Active || in.TokenType != "DPoP" || in.Cnf == nil || in.Cnf.JKT != p.JKT() {
		t.Errorf("introspection of the bound JWT: %+v", in)
	}
	status, tr = e.grantDPoP(c, ccForm())
	if status != 200 || tr.TokenType != "Bearer" || cnfOf(t, tr.AccessToken) != "" {
		t.Fatalf("token without proof: %d %+v", status, tr)
	}
	if in := e.introspectJSON(rs, tr.AccessToken); in.TokenType != "Bearer" || in.Cnf != nil {
		t.Errorf("introspection of the bearer JWT: %+v", in)
	}
}

// TestRFC9449_6_2_OpaqueToken_StoresTheKeyAndIntrospectionReturnsCnf.
func TestRFC9449_6_2_OpaqueToken_StoresTheKeyAndIntrospectionReturnsCnf(t *testing.T) {
	e := newEnv(t)
	c, rs := e.opaqueClient(), e.resourceServer()
	p := e.prover()
	status, tr := e.grantDPoP(c, ccForm(), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || tr.TokenType != "DPoP" {
		t.Fatalf("token: %d %+v", status, tr)
	}
	stored, err := e.db.Token(context.Background(), token.Hash(tr.AccessToken))
	if err != nil || stored.JKT != p.JKT() {
		t.Fatalf("stored token: %+v, %v; want JKT %s", stored, err, p.JKT())
	}
	if in := e.introspectJSON(rs, tr.AccessToken); !in.Active || in.TokenType != "DPoP" || in.Cnf == nil || in.Cnf.JKT != p.JKT() {
		t.Errorf("introspection: %+v", in)
	}
}

// forge signs a proof from raw header and claims JSON with the ES256 key
// k, or with an HMAC key when hmacKey is set, or not at all for alg none.
func forgeProof(tb testing.TB, k *ecdsa.PrivateKey, header, claims string, hmacKey []byte, none bool) string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	switch {
	case none:
		return input + "."
	case hmacKey != nil:
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(input))
		return input + "." + b64.EncodeToString(m.Sum(nil))
	}
	sig, err := token.SignSignature(latch.ES256, k, []byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func ecJWK(k *ecdsa.PrivateKey, private bool) string {
	b, _ := k.PublicKey.Bytes()
	b64 := base64.RawURLEncoding
	m := map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(b[1:33]), "y": b64.EncodeToString(b[33:])}
	if private {
		d, _ := k.Bytes()
		m["d"] = b64.EncodeToString(d)
	}
	j, _ := json.Marshal(m)
	return string(j)
}

// TestRFC9449_4_3_ForgedProofsRefused: every forged or misused proof is a
// 400 invalid_dpop_proof at the token endpoint, and no token is issued.
func TestRFC9449_4_3_ForgedProofsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	p := e.prover()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := e.clock.Now().Unix()
	claims := func(iat int64) string {
		return `{"jti":"` + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String())) + `","htm":"POST","htu":"` + tokenURL + `","iat":` + jsonInt(iat) + `}`
	}
	replayed := mustProof(t, p, "POST", tokenURL, "", "")
	if status, tr := e.grantDPoP(c, ccForm(), replayed); status != 200 {
		t.Fatalf("first use of the proof: %d %+v", status, tr)
	}
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"wrong htu", []string{mustProof(t, p, "POST", testIssuer+"/oauth2/introspect", "", "")}},
		{"htu of another server", []string{mustProof(t, p, "POST", "https://evil.test/oauth2/token", "", "")}},
		{"wrong htm", []string{mustProof(t, p, "GET", tokenURL, "", "")}},
		{"replayed jti", []string{replayed}},
		{"stale iat", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(k, false)+`}`, claims(now-int64(2*dpop.DefaultMaxAge/time.Second)), nil, false)}},
		{"iat in the future", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(k, false)+`}`, claims(now+3600), nil, false)}},
		{"alg none", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"none","jwk":`+ecJWK(k, false)+`}`, claims(now), nil, true)}},
		{"HS256", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`, claims(now), []byte("secret"), false)}},
		{"private key in jwk", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(k, true)+`}`, claims(now), nil, false)}},
		{"typ JWT", []string{forgeProof(t, k, `{"typ":"JWT","alg":"ES256","jwk":`+ecJWK(k, false)+`}`, claims(now), nil, false)}},
		{"signed by another key than jwk", []string{forgeProof(t, k, `{"typ":"dpop+jwt","alg":"ES256","jwk":`+ecJWK(mustECKey(t), false)+`}`, claims(now), nil, false)}},
		{"two DPoP headers", []string{mustProof(t, p, "POST", tokenURL, "", ""), mustProof(t, p, "POST", tokenURL, "", "")}},
		{"not a JWS", []string{"not-a-proof"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, tr := e.grantDPoP(c, ccForm(), tc.proofs...)
			if status != 400 || tr.Error != "invalid_dpop_proof" || tr.AccessToken != "" {
				t.Errorf("%d %+v, want 400 invalid_dpop_proof", status, tr)
			}
		})
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func mustECKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestRFC9449_5_2_RequiredClient_WithoutProofRefused: a client registered
// with --dpop required gets no token without a proof, bound ones with.
func TestRFC9449_5_2_RequiredClient_WithoutProofRefused(t *testing.T) {
	e := newEnv(t)
	c := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, DPoP: "required"})
	if status, tr := e.grantDPoP(c, ccForm()); status != 400 || tr.Error != "invalid_dpop_proof" {
		t.Fatalf("required client without proof: %d %+v", status, tr)
	}
	p := e.prover()
	if status, tr := e.grantDPoP(c, ccForm(), mustProof(t, p, "POST", tokenURL, "", "")); status != 200 || tr.TokenType != "DPoP" {
		t.Fatalf("required client with proof: %d %+v", status, tr)
	}
	if _, err := e.clients.Create(context.Background(), registry.ClientSpec{DPoP: "sometimes"}); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("dpop sometimes: %v, want EINVALID", err)
	}
}

// publicClient registers a public client of the code and refresh grants.
func (e *env) publicClient() creds {
	return e.webClient(func(s *registry.ClientSpec) { s.AuthMethod = "none"; s.FirstParty = false })
}

func redeemForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {""},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {testVerifier}}
}

// TestRFC9449_5_PublicRefreshBound: a public client's refresh token is
// bound to the key of the proof it was issued with; refreshing it without
// a proof or with another key is refused and spends nothing; with the key
// it works, and the successor stays bound.
func TestRFC9449_5_PublicRefreshBound(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	uid := e.alice()
	code, _ := e.newCode(c, uid)
	p, thief := e.prover(), e.prover()
	form := redeemForm(code)
	form.Set("client_id", c.ID)
	status, tr := e.grantDPoP(c, form, mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || tr.TokenType != "DPoP" || cnfOf(t, tr.AccessToken) != p.JKT() {
		t.Fatalf("redeem with proof: %d %+v", status, tr)
	}
	stored, err := e.db.Token(context.Background(), token.Hash(tr.RefreshToken))
	if err != nil || stored.JKT != p.JKT() {
		t.Fatalf("stored refresh token: %+v %v", stored, err)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {c.ID}}
	if status, got := e.grantDPoP(c, refresh); status != 400 || got.Error != "invalid_dpop_proof" {
		t.Errorf("refresh without proof: %d %+v", status, got)
	}
	if status, got := e.grantDPoP(c, refresh, mustProof(t, thief, "POST", tokenURL, "", "")); status != 400 || got.Error != "invalid_dpop_proof" {
		t.Errorf("refresh with another key: %d %+v", status, got)
	}
	status, next := e.grantDPoP(c, refresh, mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || next.TokenType != "DPoP" || cnfOf(t, next.AccessToken) != p.JKT() {
		t.Fatalf("refresh with the key: %d %+v", status, next)
	}
	refresh.Set("refresh_token", next.RefreshToken)
	if status, got := e.grantDPoP(c, refresh, mustProof(t, thief, "POST", tokenURL, "", "")); status != 400 || got.Error != "invalid_dpop_proof" {
		t.Errorf("successor with another key: %d %+v", status, got)
	}
}

// TestRFC9449_5_ConfidentialRefreshNotBound: a confidential client's
// refresh token is held by its authentication: it is not bound, and a
// refresh without a proof gets a Bearer access token.
func TestRFC9449_5_ConfidentialRefreshNotBound(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	p := e.prover()
	status, tr := e.grantDPoP(c, redeemForm(code), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || tr.TokenType != "DPoP" {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
	stored, err := e.db.Token(context.Background(), token.Hash(tr.RefreshToken))
	if err != nil || stored.JKT != "" {
		t.Fatalf("confidential refresh token stored with JKT %q (%v)", stored.JKT, err)
	}
	status, next := e.refresh(c, tr.RefreshToken)
	if status != 200 || next.TokenType != "Bearer" || cnfOf(t, next.AccessToken) != "" {
		t.Fatalf("refresh without proof: %d %+v", status, next)
	}
}

// TestRFC9449_10_DPoPJKTBindsTheCode: a code asked for with dpop_jkt is
// redeemed only with a proof of that key; failed attempts do not spend it.
func TestRFC9449_10_DPoPJKTBindsTheCode(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	p, other := e.prover(), e.prover()
	raw, ac := e.newCode(c, e.alice())
	ac.Hash = token.Hash(raw + "x")
	// A second code, stored with dpop_jkt as /oauth2/authorize stores it.
	code2, err := token.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	ac.Hash, ac.DPoPJKT, ac.FamilyID = token.Hash(code2), p.JKT(), ac.FamilyID+"2"
	if err := e.db.CreateCode(context.Background(), ac); err != nil {
		t.Fatal(err)
	}
	if status, tr := e.redeem(c, code2); status != 400 || tr.Error != "invalid_dpop_proof" {
		t.Errorf("without proof: %d %+v", status, tr)
	}
	if status, tr := e.grantDPoP(c, redeemForm(code2), mustProof(t, other, "POST", tokenURL, "", "")); status != 400 || tr.Error != "invalid_dpop_proof" {
		t.Errorf("with another key: %d %+v", status, tr)
	}
	status, tr := e.grantDPoP(c, redeemForm(code2), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || cnfOf(t, tr.AccessToken) != p.JKT() {
		t.Fatalf("with the key: %d %+v", status, tr)
	}
	// The code without dpop_jkt takes any proof, or none.
	if status, tr := e.redeem(c, raw); status != 200 || tr.TokenType != "Bearer" {
		t.Errorf("unbound code: %d %+v", status, tr)
	}
}

// TestRFC9449_8_ServerNonce: with nonces on, a proof without one gets
// use_dpop_nonce and a nonce in DPoP-Nonce; a proof with it succeeds; a
// nonce two periods old is refused again with a fresh one.
func TestRFC9449_8_ServerNonce(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.DPoPNonces = true; c.DPoPNoncePeriod = time.Minute })
	c := e.jwtClient()
	p := e.prover()
	w := e.doDPoP("/oauth2/token", c, ccForm(), mustProof(t, p, "POST", tokenURL, "", ""))
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("proof without nonce: %d %s nonce %q", w.Code, w.Body, nonce)
	}
	w = e.doDPoP("/oauth2/token", c, ccForm(), mustProof(t, p, "POST", tokenURL, "", nonce))
	if w.Code != 200 || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("proof with the nonce: %d %s", w.Code, w.Body)
	}
	e.clock.Advance(2*time.Minute + time.Second)
	w = e.doDPoP("/oauth2/token", c, ccForm(), mustProof(t, p, "POST", tokenURL, "", nonce))
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"use_dpop_nonce"`) || w.Header().Get("DPoP-Nonce") == nonce {
		t.Fatalf("stale nonce: %d %s new nonce %q", w.Code, w.Body, w.Header().Get("DPoP-Nonce"))
	}
}

// TestRFC9449_11_1_ReplayRefusedAcrossNodes: two server nodes sharing one
// Redis replay cache refuse at one a proof used at the other.
func TestRFC9449_11_1_ReplayRefusedAcrossNodes(t *testing.T) {
	rc := redistest.Client(t, nil)
	replay := rc.DPoPReplayCache("as:"+testIssuer, nil)
	e := newEnv(t, func(c *server.Config) { c.DPoPReplay = replay })
	other, err := server.New(server.Config{Issuer: testIssuer, Store: e.db, Keys: e.keys, Now: e.clock.Now, DPoPReplay: replay})
	if err != nil {
		t.Fatal(err)
	}
	c := e.jwtClient()
	proof := mustProof(t, e.prover(), "POST", tokenURL, "", "")
	if status, tr := e.grantDPoP(c, ccForm(), proof); status != 200 {
		t.Fatalf("node A: %d %+v", status, tr)
	}
	e2 := *e
	e2.h = other.Handler()
	if status, tr := e2.grantDPoP(c, ccForm(), proof); status != 400 || tr.Error != "invalid_dpop_proof" || !strings.Contains(tr.Description, "used before") {
		t.Errorf("replay at node B: %d %+v", status, tr)
	}
}

// TestRFC9449_7_Userinfo: a bound token is accepted with the DPoP scheme
// and a proof of its key for this request and token (ath), refused as
// Bearer (§7.2) and with another key's proof, with the §7.1 challenges.
func TestRFC9449_7_Userinfo(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	code, _ := e.newCode(c, e.alice())
	p, thief := e.prover(), e.prover()
	status, tr := e.grantDPoP(c, redeemForm(code), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
	const userinfoURL = testIssuer + "/userinfo"
	get := func(auth string, proofs ...string) *httptest.ResponseRecorder {
		h := http.Header{"Authorization": {auth}}
		if len(proofs) > 0 {
			h["Dpop"] = proofs
		}
		return e.get("/userinfo", h)
	}
	w := get("DPoP "+tr.AccessToken, mustProof(t, p, "GET", userinfoURL, tr.AccessToken, ""))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"sub"`) {
		t.Fatalf("DPoP with the key: %d %s", w.Code, w.Body)
	}
	w = get("Bearer " + tr.AccessToken)
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bound token as Bearer: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	for _, tc := range []struct {
		name, proof, wantErr string
	}{
		{"another key", mustProof(t, thief, "GET", userinfoURL, tr.AccessToken, ""), "invalid_token"},
		{"proof for another token", mustProof(t, p, "GET", userinfoURL, "other-token", ""), "invalid_dpop_proof"},
		{"no ath", mustProof(t, p, "GET", userinfoURL, "", ""), "invalid_dpop_proof"},
		{"wrong htm", mustProof(t, p, "POST", userinfoURL, tr.AccessToken, ""), "invalid_dpop_proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get("DPoP "+tr.AccessToken, tc.proof)
			chal := w.Header().Get("WWW-Authenticate")
			if w.Code != 401 || !strings.HasPrefix(chal, "DPoP ") || !strings.Contains(chal, `error="`+tc.wantErr+`"`) || !strings.Contains(chal, `algs="ES256`) {
				t.Errorf("%d %q", w.Code, chal)
			}
		})
	}
	w = get("DPoP " + tr.AccessToken)
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Errorf("DPoP scheme without a proof: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	w = e.get("/userinfo", nil)
	if chal := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(chal) != 2 || !strings.HasPrefix(chal[1], "DPoP ") {
		t.Errorf("no credentials: %d %q", w.Code, chal)
	}
	// An unbound token with the DPoP scheme is refused too.
	code, _ = e.newCode(c, e.mustUserID("alice"))
	_, bearer := e.redeem(c, code)
	if w := get("DPoP "+bearer.AccessToken, mustProof(t, p, "GET", userinfoURL, bearer.AccessToken, "")); w.Code != 401 {
		t.Errorf("unbound token with DPoP: %d", w.Code)
	}
}

func (e *env) mustUserID(name string) string {
	e.t.Helper()
	u, err := e.db.UserByName(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// TestRFC9449_TokenExchange_KeepsTheSubjectTokensBinding: the JWT a
// gateway gets for a bound opaque token carries the same cnf.jkt, so the
// upstream sees the binding the gateway checked.
func TestRFC9449_TokenExchange_KeepsTheSubjectTokensBinding(t *testing.T) {
	e := newEnv(t)
	c := e.opaqueClient()
	gw := e.client(registry.ClientSpec{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}, Audiences: []string{"api"}})
	p := e.prover()
	_, tr := e.grantDPoP(c, ccForm(), mustProof(t, p, "POST", tokenURL, "", ""))
	status, ex := e.grant(gw, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {tr.AccessToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}})
	if status != 200 || ex.TokenType != "DPoP" || cnfOf(t, ex.AccessToken) != p.JKT() {
		t.Fatalf("exchange: %d %+v", status, ex)
	}
}

// TestRFC9449_5_1_DiscoveryAdvertisesAlgsAndPAR.
func TestRFC9449_5_1_DiscoveryAdvertisesAlgsAndPAR(t *testing.T) {
	e := newEnv(t)
	var md struct {
		Algs       []string `json:"dpop_signing_alg_values_supported"`
		PAR        string   `json:"pushed_authorization_request_endpoint"`
		RequirePAR *bool    `json:"require_pushed_authorization_requests"`
	}
	mustJSON(t, e.get("/.well-known/openid-configuration", nil).Body.Bytes(), &md)
	if strings.Join(md.Algs, " ") != "ES256 EdDSA PS256 RS256" || md.PAR != testIssuer+"/oauth2/par" || md.RequirePAR == nil || *md.RequirePAR {
		t.Errorf("metadata: %+v", md)
	}
}

// TestRFC9449_7_2_BearerOnlyEndpointsRefuseBoundTokens: the admin API and
// bearer-authenticated introspection take bearer tokens only; a token
// bound to a DPoP key is refused there, while its client's own
// authentication keeps working.
func TestRFC9449_7_2_BearerOnlyEndpointsRefuseBoundTokens(t *testing.T) {
	e := newEnv(t)
	adm := e.client(registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	rs := e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{latch.AudienceIntrospection}})
	p := e.prover()
	for _, tc := range []struct {
		name, path, scope string
		c                 creds
	}{
		{"admin API", "/admin/v1/clients", latch.ScopeAdmin, adm},
		{"introspection by bearer token", "/oauth2/introspect", latch.ScopeIntrospect, rs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := func() url.Values { f := ccForm(); f.Set("scope", tc.scope); return f }
			_, bound := e.grantDPoP(tc.c, form(), mustProof(t, p, "POST", tokenURL, "", ""))
			_, bearer := e.grantDPoP(tc.c, form())
			send := func(tok string) int {
				r := httptest.NewRequest(http.MethodGet, tc.path, nil)
				if tc.path == "/oauth2/introspect" {
					r = httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader("token="+tok))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				r.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				return w.Code
			}
			if got := send(bearer.AccessToken); got != 200 {
				t.Fatalf("bearer token: %d", got)
			}
			if got := send(bound.AccessToken); got != 401 {
				t.Errorf("DPoP-bound token as Bearer: %d, want 401", got)
			}
		})
	}
}

// BenchmarkToken_ClientCredentials_DPoP: the token endpoint's cost of a
// DPoP proof beside the same grant without one, alternated in one loop and
// counted in CPU time of the thread (the machine is shared): a
// client_credentials grant issuing an ES256 JWT, with and without a proof
// (made outside the measure: that is the client's work) checked and bound.
// It reports both per-op CPU times and their ratio.
func BenchmarkToken_ClientCredentials_DPoP(b *testing.B) {
	e := newEnv(b, func(c *server.Config) { c.DPoPReplay = dpop.NewMemoryReplayCache(10_000_000, nil) })
	c := e.jwtClient()
	p := e.prover()
	send := func(proof string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(c.ID, c.Secret)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var bearer, bound time.Duration
	b.ReportAllocs()
	for b.Loop() {
		proof := mustProof(b, p, "POST", tokenURL, "", "")
		c0 := cputime.Thread()
		send("")
		c1 := cputime.Thread()
		send(proof)
		c2 := cputime.Thread()
		bearer += c1 - c0
		bound += c2 - c1
	}
	if bearer > 0 {
		b.ReportMetric(float64(bearer.Microseconds())/float64(b.N), "bearer-cpu-µs/op")
		b.ReportMetric(float64(bound.Microseconds())/float64(b.N), "dpop-cpu-µs/op")
		b.ReportMetric(float64(bound)/float64(bearer), "dpop/bearer")
	}
}
