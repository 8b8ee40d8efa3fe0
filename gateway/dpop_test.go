package gateway_test

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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

var b64 = base64.RawURLEncoding

// standInIssuer stands in for the part of the latch authorization server
// that binds tokens to DPoP keys, which the server does not do yet: it
// answers token exchanges (RFC 8693) of the opaque tokens it was told
// about with a JWT signed by its own key that keeps the opaque token's
// cnf.jkt, as the server will, and publishes RFC 8414 metadata and a JWKS
// so that the upstream verifies that JWT with package verify. The real
// server is used by every other gateway test.
type standInIssuer struct {
	srv       *httptest.Server
	signer    *token.Signer
	jwk       map[string]any
	exchanges atomic.Int64

	mu     sync.Mutex
	tokens map[string]string // opaque token -> the jkt it is bound to ("" unbound)
}

func newStandInIssuer(t *testing.T) *standInIssuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &standInIssuer{tokens: map[string]string{}}
	if s.signer, err = token.NewSigner("k1", latch.ES256, key); err != nil {
		t.Fatal(err)
	}
	b, _ := key.PublicKey.Bytes()
	s.jwk = map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64.EncodeToString(b[1:33]), "y": b64.EncodeToString(b[33:])}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standInIssuer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		json.NewEncoder(w).Encode(map[string]any{"issuer": s.srv.URL, "token_endpoint": s.srv.URL + "/oauth2/token", "jwks_uri": s.srv.URL + "/jwks.json"})
	case "/jwks.json":
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{s.jwk}})
	case "/oauth2/token":
		s.exchanges.Add(1)
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		s.mu.Lock()
		jkt, ok := s.tokens[r.PostForm.Get("subject_token")]
		s.mu.Unlock()
		if id != "gw" || secret != "gw-secret" || r.PostForm.Get("grant_type") != latch.GrantTokenExchange {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		now := time.Now().Unix()
		c := &token.Claims{Issuer: s.srv.URL, Subject: "user-1", Audience: token.Audience{"api"}, ExpiresAt: now + 300, IssuedAt: now,
			ID: must(token.NewID(nil)), ClientID: "app", Scope: "read", Extra: map[string]any{"act": map[string]any{"sub": "gw"}}}
		if jkt != "" {
			c.Extra["cnf"] = map[string]any{"jkt": jkt}
		}
		jwt, err := s.signer.Sign("at+jwt", c)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": jwt, "issued_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_type": "Bearer", "expires_in": 300})
	default:
		http.NotFound(w, r)
	}
}

// opaque registers a new opaque access token bound to jkt ("" unbound).
func (s *standInIssuer) opaque(jkt string) string {
	tok := must(token.NewOpaque(latch.KindAccess, nil))
	s.mu.Lock()
	s.tokens[tok] = jkt
	s.mu.Unlock()
	return tok
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// dpopGateway is the stand-in issuer, an upstream that verifies the
// forwarded JWT with package verify trusting the gateway's DPoP check, and
// the gateway in front of it.
type dpopGateway struct {
	is       *standInIssuer
	gw       *httptest.Server
	upstream *verify.Verifier
	mu       sync.Mutex
	got      []http.Header // what the upstream received
	gotJKT   []string      // the cnf.jkt of the claims it verified
}

func newDPoPGateway(t *testing.T) *dpopGateway {
	d := &dpopGateway{is: newStandInIssuer(t)}
	ctx := context.Background()
	var err error
	d.upstream, err = verify.New(ctx, verify.Config{Issuer: d.is.srv.URL, Audience: "api", InsecureAllowHTTP: true, SkipDPoPProofCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(d.upstream.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		jkt, _ := c.BoundKey()
		d.mu.Lock()
		d.got = append(d.got, r.Header.Clone())
		d.gotJKT = append(d.gotJKT, jkt)
		d.mu.Unlock()
		io.WriteString(w, "upstream")
	})))
	t.Cleanup(up.Close)
	checker, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(ctx, gateway.Config{Issuer: d.is.srv.URL, ClientID: "gw", ClientSecret: "gw-secret", Upstream: must(url.Parse(up.URL)),
		InsecureAllowHTTP: true, DPoP: checker, UntaggedRate: 1000, UntaggedPerSourceRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d.gw = httptest.NewServer(g)
	t.Cleanup(d.gw.Close)
	return d
}

func (d *dpopGateway) do(t *testing.T, method, scheme, tok string, proofs ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, d.gw.URL+"/items?page=2", nil)
	req.Header.Set("Authorization", scheme+" "+tok)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func wantDPoPChallenge(t *testing.T, resp *http.Response, code, descPart string) {
	t.Helper()
	h := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(h, "DPoP ") || !strings.Contains(h, `error="`+code+`"`) ||
		!strings.Contains(h, descPart) || !strings.Contains(h, `algs="ES256 EdDSA PS256 RS256"`) {
		t.Fatalf("%d %q; want DPoP error=%q mentioning %q", resp.StatusCode, h, code, descPart)
	}
}

func forgeProof(t *testing.T, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(must(token.SignSignature(latch.ES256, key, []byte(input))))
}

func TestGateway_RFC9449_BoundOpaqueToken_ProofChecked_JWTKeepsCnf(t *testing.T) {
	d := newDPoPGateway(t)
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	prover := must(dpop.NewProver(key))
	tok := d.is.opaque(prover.JKT())
	url := d.gw.URL + "/items"
	for i := range 2 { // exchanged once, the proof checked every time
		resp, body := d.do(t, "GET", "DPoP", tok, must(prover.Proof("GET", url+"?page=2", tok, "")))
		if resp.StatusCode != 200 || body != "upstream" {
			t.Fatalf("request %d: %d %s %s", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	if n := d.is.exchanges.Load(); n != 1 {
		t.Fatalf("%d exchanges", n)
	}
	d.mu.Lock()
	got, jkts := d.got, d.gotJKT
	d.mu.Unlock()
	if len(got) != 2 || jkts[0] != prover.JKT() || got[0].Get("DPoP") != "" || !strings.HasPrefix(got[0].Get("Authorization"), "Bearer ey") {
		t.Fatalf("upstream saw %d requests, jkt %q, DPoP %q, Authorization %q", len(got), jkts, got[0].Get("DPoP"), got[0].Get("Authorization"))
	}

	// The forwarded JWT keeps cnf: an API reached around the gateway,
	// checking bound tokens itself, refuses it without a proof.
	fwd := strings.TrimPrefix(got[0].Get("Authorization"), "Bearer ")
	strict := must(verify.New(context.Background(), verify.Config{Issuer: d.is.srv.URL, Audience: "api", InsecureAllowHTTP: true}))
	r := httptest.NewRequest("GET", "/items", nil)
	r.Header.Set("Authorization", "Bearer "+fwd)
	w := httptest.NewRecorder()
	strict.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "bound to a DPoP key") {
		t.Fatalf("a bound JWT without a proof upstream: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestGateway_RFC9449_ForgedProofs_AreRefused(t *testing.T) {
	d := newDPoPGateway(t)
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	prover := must(dpop.NewProver(key))
	tok := d.is.opaque(prover.JKT())
	tok2 := d.is.opaque(prover.JKT())
	u := d.gw.URL + "/items"
	used := must(prover.Proof("GET", u, tok, ""))
	if resp, _ := d.do(t, "GET", "DPoP", tok, used); resp.StatusCode != 200 {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	b, _ := key.PublicKey.Bytes()
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(b[1:33]), "y": b64.EncodeToString(b[33:])}
	hdr := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
	claims := func(iat int64) map[string]any {
		return map[string]any{"jti": must(token.NewID(nil)), "htm": "GET", "htu": u, "iat": iat, "ath": dpop.TokenHash(tok)}
	}
	privJWK := map[string]any{"d": b64.EncodeToString(key.D.FillBytes(make([]byte, 32)))}
	for k, v := range jwk {
		privJWK[k] = v
	}
	unsigned := func(alg, sig string) string {
		h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwk})
		c, _ := json.Marshal(claims(time.Now().Unix()))
		return b64.EncodeToString(h) + "." + b64.EncodeToString(c) + "." + sig
	}
	for _, tc := range []struct{ name, proof, code, desc string }{
		{"wrong htu", must(prover.Proof("GET", d.gw.URL+"/other", tok, "")), "invalid_dpop_proof", "htu"},
		{"wrong htm", must(prover.Proof("POST", u, tok, "")), "invalid_dpop_proof", "htm"},
		{"a proof for another token", must(prover.Proof("GET", u, tok2, "")), "invalid_dpop_proof", "ath"},
		{"replayed jti", used, "invalid_dpop_proof", "used before"},
		{"stale iat", forgeProof(t, key, hdr, claims(time.Now().Add(-time.Hour).Unix())), "invalid_dpop_proof", "iat"},
		{"alg none", unsigned("none", ""), "invalid_dpop_proof", "algorithm"},
		{"HS256", unsigned("HS256", "c2ln"), "invalid_dpop_proof", "algorithm"},
		{"private key in jwk", forgeProof(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": privJWK}, claims(time.Now().Unix())), "invalid_dpop_proof", "jwk"},
		{"jwk not the token's cnf.jkt", must(must(dpop.NewProver(other)).Proof("GET", u, tok, "")), "invalid_token", "not the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := d.do(t, "GET", "DPoP", tok, tc.proof)
			wantDPoPChallenge(t, resp, tc.code, tc.desc)
		})
	}
	t.Run("no proof", func(t *testing.T) {
		resp, _ := d.do(t, "GET", "DPoP", tok)
		wantDPoPChallenge(t, resp, "invalid_dpop_proof", "no DPoP proof")
	})
	t.Run("bound token as Bearer", func(t *testing.T) {
		resp, _ := d.do(t, "GET", "Bearer", tok)
		wantDPoPChallenge(t, resp, "invalid_token", "bound to a DPoP key")
	})
	t.Run("unbound token with the DPoP scheme", func(t *testing.T) {
		plain := d.is.opaque("")
		resp, _ := d.do(t, "GET", "DPoP", plain, must(prover.Proof("GET", u, plain, "")))
		wantDPoPChallenge(t, resp, "invalid_token", "not bound")
		if resp, body := d.do(t, "GET", "Bearer", plain); resp.StatusCode != 200 {
			t.Fatalf("unbound Bearer: %d %s", resp.StatusCode, body)
		}
	})
}
