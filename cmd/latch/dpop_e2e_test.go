package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/verify"
)

func newDPoPProver(t testing.TB) *dpop.Prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// postDPoP posts an OAuth form with a DPoP proof for u made by p (none
// when p is nil), authenticating c with its secret when it has one.
func postDPoP(t testing.TB, u string, c testClient, form url.Values, p *dpop.Prover) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	if p != nil {
		proof, err := p.Proof(http.MethodPost, u, "", "")
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// TestDPoP_ClientCredentials_VerifyAcceptsWithProof: through the real
// `latch serve`, a client registered with --dpop required gets a DPoP
// token only with a proof; verify, configured for DPoP, accepts it with a
// proof of the key for its request, and refuses it as Bearer and with
// another key's proof.
func TestDPoP_ClientCredentials_VerifyAcceptsWithProof(t *testing.T) {
	dir := migratedDir(t)
	c := createClient(t, dir, "--scope", "read", "--audience", "api", "--dpop", "required")
	p := startLatch(t, dir)
	key := newDPoPProver(t)
	tokenURL := p.URL("/oauth2/token")
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	if status, m := postDPoP(t, tokenURL, c, form, nil); status != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("--dpop required without proof: %d %v", status, m)
	}
	status, m := postDPoP(t, tokenURL, c, form, key)
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("with proof: %d %v", status, m)
	}
	tok := m["access_token"].(string)

	checker, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const api = "https://api.test"
	v, err := verify.New(context.Background(), verify.Config{Issuer: p.Issuer, Audience: "api", InsecureAllowHTTP: true,
		DPoP: checker, ExternalURL: api})
	if err != nil {
		t.Fatal(err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	call := func(scheme string, prover *dpop.Prover) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/items", nil)
		r.Header.Set("Authorization", scheme+" "+tok)
		if prover != nil {
			proof, err := prover.Proof(http.MethodGet, api+"/items", tok, "")
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := call("DPoP", key); w.Code != 200 {
		t.Fatalf("verify with the key's proof: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := call("Bearer", nil); w.Code != 401 {
		t.Errorf("verify with the bound token as Bearer: %d", w.Code)
	}
	if w := call("DPoP", newDPoPProver(t)); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("verify with another key's proof: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// TestDPoP_CodeFlow_PARAndDPoP_PublicClient: a public client registered
// with --require-par and --dpop required pushes its request with a proof,
// the user signs in and consents in a browser, the code is redeemed with a
// proof of the same key and the refresh token is bound to it; userinfo
// answers the DPoP-bound token with a proof and refuses it as Bearer.
func TestDPoP_CodeFlow_PARAndDPoP_PublicClient(t *testing.T) {
	dir := migratedDir(t)
	const pw = "correct horse battery staple"
	createAlice(t, dir, pw)
	cb := newAuthCallback(t)
	c := createClient(t, dir, "--grant", "authorization_code,refresh_token", "--redirect-uri", cb.URI(),
		"--scope", "openid profile read", "--audience", "api", "--auth-method", "none",
		"--require-par", "--dpop", "required")
	p := startLatch(t, dir)
	key := newDPoPProver(t)
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636 Appendix B
	authz := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {cb.URI()},
		"scope": {"openid profile read"}, "state": {"st-dpop"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}

	// --require-par: the plain request is refused back to the client.
	br := newAuthBrowser(t)
	br.visit(p.URL("/oauth2/authorize?"+authz.Encode()), "alice", pw)
	if got := cb.received(t).Query().Get("error"); got != "invalid_request" {
		t.Fatalf("unpushed request of a --require-par client: error %q", got)
	}

	status, pushed := postDPoP(t, p.URL("/oauth2/par"), c, authz, key)
	if status != 201 || !strings.HasPrefix(pushed["request_uri"].(string), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: %d %v", status, pushed)
	}
	br.visit(p.URL("/oauth2/authorize?"+url.Values{"client_id": {c.ID}, "request_uri": {pushed["request_uri"].(string)}}.Encode()), "alice", pw)
	code := authResponse(t, cb.received(t), p.Issuer, "st-dpop")

	tokenURL := p.URL("/oauth2/token")
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code": {code},
		"redirect_uri": {cb.URI()}, "code_verifier": {verifier}}
	if status, m := postDPoP(t, tokenURL, c, redeem, newDPoPProver(t)); status != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("redeem with another key than the PAR proof's: %d %v", status, m)
	}
	status, tr := postDPoP(t, tokenURL, c, redeem, key)
	if status != 200 || tr["token_type"] != "DPoP" {
		t.Fatalf("redeem: %d %v", status, tr)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {tr["refresh_token"].(string)}}
	if status, m := postDPoP(t, tokenURL, c, refresh, newDPoPProver(t)); status != 400 || m["error"] != "invalid_dpop_proof" {
		t.Fatalf("refresh with another key: %d %v", status, m)
	}
	status, next := postDPoP(t, tokenURL, c, refresh, key)
	if status != 200 || next["token_type"] != "DPoP" {
		t.Fatalf("refresh with the key: %d %v", status, next)
	}

	at := next["access_token"].(string)
	userinfo := func(scheme string, withProof bool) int {
		req, _ := http.NewRequest(http.MethodGet, p.URL("/userinfo"), nil)
		req.Header.Set("Authorization", scheme+" "+at)
		if withProof {
			proof, err := key.Proof(http.MethodGet, p.URL("/userinfo"), at, "")
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := userinfo("DPoP", true); got != 200 {
		t.Errorf("userinfo with DPoP: %d", got)
	}
	if got := userinfo("Bearer", false); got != 401 {
		t.Errorf("userinfo with the bound token as Bearer: %d", got)
	}
}

// TestDPoP_ClientCLI_FlagsShownUpdatedAndRefused: --dpop and --require-par
// are set at creation, shown, changed by update, and bad values are a
// message and a non-zero exit.
func TestDPoP_ClientCLI_FlagsShownUpdatedAndRefused(t *testing.T) {
	dir := migratedDir(t)
	c := createClient(t, dir, "--grant", "authorization_code", "--redirect-uri", "https://app.test/cb",
		"--scope", "openid", "--audience", "api", "--dpop", "required", "--require-par")
	out := runCLI(t, "client", "get", c.ID, "--data-dir", dir)
	if !strings.Contains(out, "dpop:") || !strings.Contains(out, "require PAR:") {
		t.Errorf("client get:\n%s", out)
	}
	runCLI(t, "client", "update", c.ID, "--data-dir", dir, "--dpop", "optional", "--require-par=false")
	var v struct {
		DPoP       string `json:"dpop"`
		RequirePAR bool   `json:"require_pushed_authorization_requests"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "client", "get", c.ID, "--data-dir", dir, "--json")), &v); err != nil || v.DPoP != "optional" || v.RequirePAR {
		t.Errorf("after update: %+v %v", v, err)
	}
	for _, args := range [][]string{
		{"client", "create", "--data-dir", dir, "--dpop", "sometimes", "--audience", "api"},
		{"client", "create", "--data-dir", dir, "--require-par", "--audience", "api"},
	} {
		_, stderr, code := runCLICode(t, nil, args...)
		if code == 0 || !strings.Contains(stderr, "dpop") && !strings.Contains(stderr, "require-par") {
			t.Errorf("latch %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
}

// gatewayDPoPSetup is what the gateway DPoP tests start from: a real
// `latch serve` with a gateway client, a DPoP-bound opaque token of
// another client, and an upstream that reports each Authorization it gets.
type gatewayDPoPSetup struct {
	latch    *latchProc
	gateway  testClient
	key      *dpop.Prover // the key tok is bound to
	tok      string
	upstream *httptest.Server
	seen     chan string // the upstream's Authorization headers
}

func newGatewayDPoPSetup(t *testing.T) *gatewayDPoPSetup {
	t.Helper()
	dir := migratedDir(t)
	owner := createClient(t, dir, "--format", "opaque", "--audience", "api", "--scope", "read")
	g := &gatewayDPoPSetup{
		gateway: createClient(t, dir, "--name", "gateway", "--audience", "api", "--grant", "urn:ietf:params:oauth:grant-type:token-exchange"),
		latch:   startLatch(t, dir),
		key:     newDPoPProver(t),
		seen:    make(chan string, 8),
	}
	status, m := postDPoP(t, g.latch.URL("/oauth2/token"), owner, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, g.key)
	if status != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", status, m)
	}
	g.tok = m["access_token"].(string)
	g.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.seen <- r.Header.Get("Authorization")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(g.upstream.Close)
	return g
}

// TestDPoP_Gateway_BoundOpaqueToken: a DPoP-bound opaque token from the
// real `latch serve` passes the gateway with a proof of its key; the
// upstream receives the exchanged JWT with the same cnf.jkt; the token is
// refused as Bearer and with another key's proof.
func TestDPoP_Gateway_BoundOpaqueToken(t *testing.T) {
	g := newGatewayDPoPSetup(t)
	p, gwc, key, tok, upstream, seen := g.latch, g.gateway, g.key, g.tok, g.upstream, g.seen
	up, _ := url.Parse(upstream.URL)
	checker, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const external = "https://gw.test"
	gw, err := gateway.New(context.Background(), gateway.Config{Issuer: p.Issuer, ClientID: gwc.ID, ClientSecret: gwc.Secret,
		Upstream: up, DPoP: checker, ExternalURL: external, InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	call := func(scheme string, prover *dpop.Prover) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/hello", nil)
		r.Header.Set("Authorization", scheme+" "+tok)
		if prover != nil {
			proof, err := prover.Proof(http.MethodGet, external+"/hello", tok, "")
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		return w
	}
	if w := call("DPoP", key); w.Code != 200 {
		t.Fatalf("gateway with the key's proof: %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	auth := <-seen
	jwt, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatalf("upstream got Authorization %q", auth)
	}
	if got := cnfJKT(t, jwt); got != key.JKT() {
		t.Fatalf("the upstream's JWT carries cnf.jkt %q, want %s", got, key.JKT())
	}
	if w := call("Bearer", nil); w.Code != 401 {
		t.Errorf("gateway with the bound token as Bearer: %d", w.Code)
	}
	if w := call("DPoP", newDPoPProver(t)); w.Code != 401 {
		t.Errorf("gateway with another key's proof: %d", w.Code)
	}
}

// TestDPoP_GatewayCLI_ProofCheckedReplayRefusedAcrossNodes runs the real
// `latch gateway --dpop` in front of an upstream: a DPoP-bound opaque
// token gets through only with a proof of its key for that request
// (--external-url is the proofs' htu), the upstream's JWT keeps cnf.jkt,
// and a proof used once is refused the second time: at the same node, and
// with LATCH_TEST_REDIS at a second node sharing --redis-url (RFC 9449
// §11.1).
func TestDPoP_GatewayCLI_ProofCheckedReplayRefusedAcrossNodes(t *testing.T) {
	g := newGatewayDPoPSetup(t)
	p, gwc, key, tok, upstream, seen := g.latch, g.gateway, g.key, g.tok, g.upstream, g.seen

	const external = "https://gw.test"
	args := []string{"gateway", "--issuer", p.Issuer, "--upstream", upstream.URL, "--listen", "127.0.0.1:0",
		"--client-id", gwc.ID, "--insecure-allow-http", "--dpop", "--external-url", external, "--log-format", "json"}
	redisURL := os.Getenv("LATCH_TEST_REDIS")
	if redisURL != "" {
		args = append(args, "--redis-url", redisURL)
	}
	env := []string{"LATCH_CLIENT_SECRET=" + gwc.Secret}
	nodeA := startProc(t, "latch gateway listening", env, latchBin, args...)
	nodeB := nodeA
	if redisURL != "" {
		nodeB = startProc(t, "latch gateway listening", env, latchBin, args...)
	}

	call := func(node *proc, scheme, proof string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+node.Addr+"/hello", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", scheme+" "+tok)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET via gateway: %v", err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	proofFor := func(k *dpop.Prover, htu string) string {
		proof, err := k.Proof(http.MethodGet, htu, tok, "")
		if err != nil {
			t.Fatal(err)
		}
		return proof
	}

	proof := proofFor(key, external+"/hello")
	if code, ch := call(nodeA, "DPoP", proof); code != 200 {
		t.Fatalf("bound token with its key's proof: %d %q\ngateway: %s", code, ch, nodeA.Stderr)
	}
	jwt, ok := strings.CutPrefix(<-seen, "Bearer ")
	if !ok {
		t.Fatal("the upstream got no Bearer JWT")
	}
	if got := cnfJKT(t, jwt); got != key.JKT() {
		t.Fatalf("the upstream's JWT carries cnf.jkt %q, want %s", got, key.JKT())
	}

	for _, tc := range []struct {
		name   string
		node   *proc
		scheme string
		proof  string
	}{
		{"the same proof again (replay)", nodeB, "DPoP", proof},
		{"the bound token as Bearer", nodeA, "Bearer", ""},
		{"DPoP scheme without a proof", nodeA, "DPoP", ""},
		{"another key's proof", nodeA, "DPoP", proofFor(newDPoPProver(t), external+"/hello")},
		{"a proof for another htu", nodeA, "DPoP", proofFor(key, "http://"+nodeA.Addr+"/hello")},
	} {
		code, ch := call(tc.node, tc.scheme, tc.proof)
		if code != http.StatusUnauthorized && code != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400 or 401", tc.name, code, ch)
		}
		if !strings.Contains(ch, "DPoP") && !strings.Contains(ch, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q names no scheme", tc.name, ch)
		}
	}
	if len(seen) != 0 {
		t.Fatalf("%d refused requests reached the upstream", len(seen))
	}
}

// cnfJKT returns the cnf.jkt claim of a JWT, read without checking its
// signature (the test only looks at what a gateway forwarded).
func cnfJKT(t testing.TB, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Cnf.JKT
}
