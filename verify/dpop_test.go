package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/token"
)

// resourceURL is the URI the DPoP tests' requests are made to; httptest
// marks an https request as arriving on TLS.
const resourceURL = "https://api.example/resource"

// dpopSetup is a Verifier that accepts DPoP, a client key with its
// Prover, and a JWT bound to that key.
type dpopSetup struct {
	c      *clock
	k      *testKey
	is     *issuer
	v      *Verifier
	dp     *dpop.Checker
	key    *ecdsa.PrivateKey
	prover *dpop.Prover
	tok    string // bound to key
}

func newDPoPSetup(t testing.TB, mod func(*Config, *dpop.Config)) *dpopSetup {
	s := &dpopSetup{c: newClock(), k: newKey(t, "k1", latch.ES256)}
	s.is = newIssuer(t, s.k)
	dcfg := dpop.Config{Now: s.c.Now}
	cfg := s.is.config(s.c)
	if mod != nil {
		mod(&cfg, &dcfg)
	}
	var err error
	if s.dp, err = dpop.New(dcfg); err != nil {
		t.Fatal(err)
	}
	cfg.DPoP = s.dp
	s.v = mustNew(t, cfg)
	s.key = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	s.prover = must(dpop.NewProver(s.key)).WithClock(s.c.Now)
	s.tok = s.boundToken(t, s.prover.JKT())
	return s
}

func (s *dpopSetup) boundToken(t testing.TB, jkt string) string {
	cl := claimsAt(s.is, s.c)
	if jkt != "" {
		cl.Extra = map[string]any{"cnf": map[string]any{"jkt": jkt}}
	}
	return mustSign(t, s.k, "at+jwt", cl)
}

func (s *dpopSetup) proof(t testing.TB, method, url, tok string) string {
	return must(s.prover.Proof(method, url, tok, ""))
}

// dpopRequest is GET resourceURL with Authorization: DPoP tok and the
// proofs given, one DPoP header each.
func dpopRequest(tok string, proofs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, resourceURL, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// forgeProof signs any header and claims with key, for the proofs a
// Prover never makes.
func forgeProof(t testing.TB, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	input := enc.EncodeToString([]byte(mustJSON(header))) + "." + enc.EncodeToString([]byte(mustJSON(claims)))
	sig := must(token.SignSignature(latch.ES256, key, []byte(input)))
	return input + "." + enc.EncodeToString(sig)
}

func (s *dpopSetup) goodParts() (map[string]any, map[string]any) {
	h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pubJWK(&s.key.PublicKey)}
	cl := map[string]any{"jti": must(token.NewID(nil)), "htm": "GET", "htu": resourceURL, "iat": s.c.Now().Unix(), "ath": dpop.TokenHash(s.tok)}
	return h, cl
}

func wantChallenge(t *testing.T, w *httptest.ResponseRecorder, status int, scheme, code, descPart string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; %s", w.Code, status, w.Body)
	}
	h := w.Header().Get("WWW-Authenticate")
	if !strings.HasPrefix(h, scheme+" ") || !strings.Contains(h, `error="`+code+`"`) || !strings.Contains(h, descPart) {
		t.Fatalf("WWW-Authenticate %q, want %s error=%q mentioning %q", h, scheme, code, descPart)
	}
	if scheme == "DPoP" && !strings.Contains(h, `algs="ES256 EdDSA PS256 RS256"`) {
		t.Fatalf("WWW-Authenticate %q lacks algs (RFC 9449 §7.1)", h)
	}
}

func TestRFC9449_7_1_DPoPRequest_IsAccepted_OnEveryRequest(t *testing.T) {
	s := newDPoPSetup(t, nil)
	h := s.v.Middleware(echoClaims)
	for i := range 3 { // the token from the cache the second time, a new proof each time
		w := serveWith(h, dpopRequest(s.tok, s.proof(t, "GET", resourceURL, s.tok)))
		if w.Code != http.StatusOK || w.Body.String() != "user-1" {
			t.Fatalf("request %d: %d %s %s", i, w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	// The scheme name is case-insensitive (RFC 9110 §11.1).
	r := dpopRequest(s.tok, s.proof(t, "GET", resourceURL, s.tok))
	r.Header.Set("Authorization", "dpop "+s.tok)
	if w := serveWith(h, r); w.Code != http.StatusOK {
		t.Fatalf("lower-case scheme: %d", w.Code)
	}
}

func TestRFC9449_7_1_ForgedProofs_AreRefused(t *testing.T) {
	s := newDPoPSetup(t, nil)
	h := s.v.Middleware(echoClaims)
	other := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	otherProver := must(dpop.NewProver(other)).WithClock(s.c.Now)
	replayed := s.proof(t, "GET", resourceURL, s.tok)
	if w := serveWith(h, dpopRequest(s.tok, replayed)); w.Code != http.StatusOK {
		t.Fatalf("first use: %d", w.Code)
	}
	hdr, cl := s.goodParts()
	with := func(m map[string]any, k string, v any) map[string]any {
		n := map[string]any{}
		for a, b := range m {
			n[a] = b
		}
		n[k] = v
		return n
	}
	priv := pubJWK(&s.key.PublicKey)
	priv["d"] = enc.EncodeToString(s.key.D.FillBytes(make([]byte, 32)))
	algNone := enc.EncodeToString([]byte(mustJSON(with(hdr, "alg", "none")))) + "." + enc.EncodeToString([]byte(mustJSON(cl))) + "."
	hs256 := enc.EncodeToString([]byte(mustJSON(with(hdr, "alg", "HS256")))) + "." + enc.EncodeToString([]byte(mustJSON(cl))) + ".c2lnbmF0dXJl"
	for _, tc := range []struct {
		name, proof, code, desc string
	}{
		{"wrong htu", s.proof(t, "GET", "https://api.example/other", s.tok), "invalid_dpop_proof", "htu"},
		{"wrong host", s.proof(t, "GET", "https://evil.example/resource", s.tok), "invalid_dpop_proof", "htu"},
		{"wrong htm", s.proof(t, "POST", resourceURL, s.tok), "invalid_dpop_proof", "htm"},
		{"ath of another token", s.proof(t, "GET", resourceURL, s.boundToken(t, s.prover.JKT())), "invalid_dpop_proof", "ath"},
		{"no ath", s.proof(t, "GET", resourceURL, ""), "invalid_dpop_proof", "ath"},
		{"replayed jti", replayed, "invalid_dpop_proof", "used before"},
		{"stale iat", forgeProof(t, s.key, hdr, with(cl, "iat", s.c.Now().Add(-time.Hour).Unix())), "invalid_dpop_proof", "iat"},
		{"future iat", forgeProof(t, s.key, hdr, with(cl, "iat", s.c.Now().Add(time.Minute).Unix())), "invalid_dpop_proof", "iat"},
		{"alg none", algNone, "invalid_dpop_proof", "algorithm"},
		{"HS256", hs256, "invalid_dpop_proof", "algorithm"},
		{"private key in jwk", forgeProof(t, s.key, with(hdr, "jwk", priv), cl), "invalid_dpop_proof", "jwk"},
		{"typ JWT", forgeProof(t, s.key, with(hdr, "typ", "JWT"), cl), "invalid_dpop_proof", "typ"},
		{"signed by another key", forgeProof(t, other, hdr, cl), "invalid_dpop_proof", "signature"},
		{"jwk not the token's cnf.jkt", must(otherProver.Proof("GET", resourceURL, s.tok, "")), "invalid_token", "not the key the token is bound to"},
		{"not a JWT", "not-a-proof", "invalid_dpop_proof", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantChallenge(t, serveWith(h, dpopRequest(s.tok, tc.proof)), http.StatusUnauthorized, "DPoP", tc.code, tc.desc)
		})
	}
	t.Run("no DPoP header", func(t *testing.T) {
		wantChallenge(t, serveWith(h, dpopRequest(s.tok)), http.StatusUnauthorized, "DPoP", "invalid_dpop_proof", "no DPoP proof")
	})
	t.Run("two DPoP headers", func(t *testing.T) {
		p := s.proof(t, "GET", resourceURL, s.tok)
		wantChallenge(t, serveWith(h, dpopRequest(s.tok, p, p)), http.StatusUnauthorized, "DPoP", "invalid_dpop_proof", "more than one")
	})
	t.Run("a proof for another token", func(t *testing.T) {
		// A second token bound to the same key, with its own valid proof,
		// does not lend that proof to the first.
		tok2 := s.boundToken(t, s.prover.JKT())
		wantChallenge(t, serveWith(h, dpopRequest(s.tok, s.proof(t, "GET", resourceURL, tok2))), http.StatusUnauthorized, "DPoP", "invalid_dpop_proof", "ath")
	})
	t.Run("expired token", func(t *testing.T) {
		cl := claimsAt(s.is, s.c)
		cl.ExpiresAt = s.c.Now().Unix() - 3600
		cl.Extra = map[string]any{"cnf": map[string]any{"jkt": s.prover.JKT()}}
		tok := mustSign(t, s.k, "at+jwt", cl)
		wantChallenge(t, serveWith(h, dpopRequest(tok, s.proof(t, "GET", resourceURL, tok))), http.StatusUnauthorized, "DPoP", "invalid_token", "expired")
	})
}

func TestRFC9449_7_2_BoundToken_AsBearer_IsRefused(t *testing.T) {
	s := newDPoPSetup(t, nil)
	wantChallenge(t, serveWith(s.v.Middleware(echoClaims), bearerRequest(s.tok)), http.StatusUnauthorized, "DPoP", "invalid_token", "bound to a DPoP key")
	// With the proof beside it, still refused: the scheme says Bearer.
	r := bearerRequest(s.tok)
	r.Header.Set("DPoP", s.proof(t, "GET", "http://example.com/resource", s.tok))
	wantChallenge(t, serveWith(s.v.Middleware(echoClaims), r), http.StatusUnauthorized, "DPoP", "invalid_token", "bound to a DPoP key")

	// A service that does not accept DPoP refuses bound tokens too.
	cfg := s.is.config(s.c)
	plain := mustNew(t, cfg)
	wantChallenge(t, serveWith(plain.Middleware(echoClaims), bearerRequest(s.tok)), http.StatusUnauthorized, "Bearer", "invalid_token", "bound to a DPoP key")
	// ... and does not take the DPoP scheme for its own.
	w := serveWith(plain.Middleware(echoClaims), dpopRequest(s.tok, s.proof(t, "GET", resourceURL, s.tok)))
	if w.Code != http.StatusUnauthorized || strings.Contains(w.Header().Get("WWW-Authenticate"), "error") {
		t.Fatalf("DPoP scheme without DPoP support: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// A cnf of another confirmation method is refused, not used unbound.
	cl := claimsAt(s.is, s.c)
	cl.Extra = map[string]any{"cnf": map[string]any{"x5t#S256": "abc"}}
	wantChallenge(t, serveWith(plain.Middleware(echoClaims), bearerRequest(mustSign(t, s.k, "at+jwt", cl))), http.StatusUnauthorized, "Bearer", "invalid_token", "cannot check")
}

func TestRFC9449_7_1_UnboundToken_WithDPoPScheme_IsRefused(t *testing.T) {
	s := newDPoPSetup(t, nil)
	tok := s.boundToken(t, "")
	wantChallenge(t, serveWith(s.v.Middleware(echoClaims), dpopRequest(tok, s.proof(t, "GET", resourceURL, tok))), http.StatusUnauthorized, "DPoP", "invalid_token", "not bound")
	// The same unbound token as Bearer is fine.
	if w := serveWith(s.v.Middleware(echoClaims), bearerRequest(tok)); w.Code != http.StatusOK {
		t.Fatalf("unbound Bearer: %d", w.Code)
	}
}

func TestRFC9449_7_1_NoToken_ChallengesBothSchemes(t *testing.T) {
	s := newDPoPSetup(t, nil)
	w := serveWith(s.v.Middleware(echoClaims), bearerRequest(""))
	got := w.Header().Values("WWW-Authenticate")
	if w.Code != http.StatusUnauthorized || len(got) != 2 || got[0] != `Bearer realm="api"` || got[1] != `DPoP realm="api", algs="ES256 EdDSA PS256 RS256"` {
		t.Fatalf("%d %q", w.Code, got)
	}
}

func TestRFC9449_9_UseDPoPNonce(t *testing.T) {
	s := newDPoPSetup(t, func(_ *Config, d *dpop.Config) { d.Nonces = fixedNonce("n-42") })
	h := s.v.Middleware(echoClaims)
	w := serveWith(h, dpopRequest(s.tok, s.proof(t, "GET", resourceURL, s.tok)))
	wantChallenge(t, w, http.StatusUnauthorized, "DPoP", "use_dpop_nonce", "nonce")
	if n := w.Header().Get("DPoP-Nonce"); n != "n-42" {
		t.Fatalf("DPoP-Nonce %q", n)
	}
	if w := serveWith(h, dpopRequest(s.tok, must(s.prover.Proof("GET", resourceURL, s.tok, "n-42")))); w.Code != http.StatusOK {
		t.Fatalf("with nonce: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

type fixedNonce string

func (n fixedNonce) Valid(s string) bool { return s == string(n) }
func (n fixedNonce) Nonce() string       { return string(n) }

func TestDPoP_ExternalURL_BehindAProxy(t *testing.T) {
	// The service sees http://10.0.0.5:8080/resource; clients call
	// https://api.example/v1/resource through a proxy that strips /v1.
	s := newDPoPSetup(t, func(c *Config, _ *dpop.Config) { c.ExternalURL = "https://api.example/v1/" })
	h := s.v.Middleware(echoClaims)
	seen := func(proof string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://10.0.0.5:8080/resource", nil)
		r.Header.Set("Authorization", "DPoP "+s.tok)
		r.Header.Set("DPoP", proof)
		r.Header.Set("X-Forwarded-Host", "evil.example") // never read
		return r
	}
	if w := serveWith(h, seen(s.proof(t, "GET", "https://api.example/v1/resource?page=2", s.tok))); w.Code != http.StatusOK {
		t.Fatalf("external URL: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	for _, u := range []string{"http://10.0.0.5:8080/resource", "https://evil.example/v1/resource", "https://api.example/resource"} {
		wantChallenge(t, serveWith(h, seen(s.proof(t, "GET", u, s.tok))), http.StatusUnauthorized, "DPoP", "invalid_dpop_proof", "htu")
	}
	// Without ExternalURL the URI is rebuilt from the connection.
	plain := newDPoPSetup(t, nil)
	r := httptest.NewRequest(http.MethodGet, "http://10.0.0.5:8080/resource", nil)
	r.Header.Set("Authorization", "DPoP "+plain.tok)
	r.Header.Set("DPoP", plain.proof(t, "GET", "http://10.0.0.5:8080/resource", plain.tok))
	if w := serveWith(plain.v.Middleware(echoClaims), r); w.Code != http.StatusOK {
		t.Fatalf("no external URL: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	for _, bad := range []string{"api.example", "https://api.example/?q", "ftp://x", "https://u:p@api.example"} {
		cfg := plain.is.config(plain.c)
		cfg.ExternalURL = bad
		if err := cfg.withDefaults().Validate(); err == nil {
			t.Errorf("ExternalURL %q accepted", bad)
		}
	}
}

func TestDPoP_ReplayCacheDown_Is503(t *testing.T) {
	s := newDPoPSetup(t, func(_ *Config, d *dpop.Config) { d.Replay = downCache{} })
	w := serveWith(s.v.Middleware(echoClaims), dpopRequest(s.tok, s.proof(t, "GET", resourceURL, s.tok)))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%d", w.Code)
	}
}

type downCache struct{}

func (downCache) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}

func TestRFC9449_6_2_Introspection_CnfBindsOpaqueTokens(t *testing.T) {
	is := newIntroServer(t)
	c := newClock()
	dp := must(dpop.New(dpop.Config{Now: c.Now}))
	cfg := is.config(c)
	cfg.DPoP = dp
	in := mustIntrospector(t, cfg)
	h := in.Middleware(echoClaims)
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	prover := must(dpop.NewProver(key)).WithClock(c.Now)
	bound := is.issue(t, c, func(a map[string]any) {
		a["token_type"] = "DPoP"
		a["cnf"] = map[string]any{"jkt": prover.JKT()}
		a["sub"] = "bound"
	})
	if w := serveWith(h, dpopRequest(bound, must(prover.Proof("GET", resourceURL, bound, "")))); w.Code != http.StatusOK || w.Body.String() != "bound" {
		t.Fatalf("bound opaque token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	wantChallenge(t, serveWith(h, bearerRequest(bound)), http.StatusUnauthorized, "DPoP", "invalid_token", "bound to a DPoP key")
	other := must(dpop.NewProver(must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))).WithClock(c.Now)
	wantChallenge(t, serveWith(h, dpopRequest(bound, must(other.Proof("GET", resourceURL, bound, "")))), http.StatusUnauthorized, "DPoP", "invalid_token", "not the key")
	// A cnf that is not a DPoP binding: the token is refused.
	for _, cnf := range []any{"jkt", map[string]any{"jkt": 7}, map[string]any{"x5t#S256": "x"}} {
		tok := is.issue(t, c, func(a map[string]any) { a["cnf"] = cnf })
		wantChallenge(t, serveWith(h, bearerRequest(tok)), http.StatusUnauthorized, "Bearer", "invalid_token", "cannot check")
	}
}
