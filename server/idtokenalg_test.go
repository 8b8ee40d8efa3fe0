package server_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
)

// rsaEnv is newEnv with latch serve's key setup: ES256 signs, an RS256
// key beside it signs ID tokens, and RS256 is the server's ID token alg.
func rsaEnv(t testing.TB) *env {
	t.Helper()
	db := latchtest.Store(t)
	clk := latchtest.NewClock(time.Now().Truncate(time.Second))
	km := latchtest.KeysConfig(t, db, keys.Config{Now: clk.Now, IDTokenAlgorithm: latch.RS256})
	logs := &lockedBuffer{}
	srv, err := server.New(server.Config{Issuer: testIssuer, Store: db, Keys: km, Now: clk.Now, IDTokenAlgorithm: latch.RS256,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, h: srv.Handler(), db: db, keys: km, clock: clk, logs: logs,
		clients: &registry.Clients{Store: db, Now: clk.Now}}
}

func header(t testing.TB, jws string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	mustJSON(t, b, &h)
	return h
}

func TestIDToken_RS256ByDefault_AccessTokenKeepsES256_ClientMayChoose(t *testing.T) {
	e := rsaEnv(t)
	uid := e.alice()
	for _, tc := range []struct {
		clientAlg, want string
	}{{"", "RS256"}, {"ES256", "ES256"}, {"RS256", "RS256"}} {
		c := e.webClient(func(s *registry.ClientSpec) { s.IDTokenAlg = tc.clientAlg })
		code, _ := e.newCode(c, uid)
		status, tr := e.redeem(c, code)
		if status != 200 {
			t.Fatalf("client alg %q: redeem %d %+v", tc.clientAlg, status, tr)
		}
		if h := header(t, tr.IDToken); h["alg"] != tc.want || h["typ"] != "JWT" {
			t.Errorf("client alg %q: ID token header %v, want alg %s", tc.clientAlg, h, tc.want)
		}
		if h := header(t, tr.AccessToken); h["alg"] != "ES256" {
			t.Errorf("client alg %q: access token alg %v, want ES256", tc.clientAlg, h["alg"])
		}
		// at_hash follows the ID token's algorithm: SHA-256 for both.
		if id := payload(t, tr.IDToken); id["at_hash"] == nil {
			t.Errorf("no at_hash")
		}
		// A refresh signs the new ID token the same way.
		if _, rt := e.refresh(c, tr.RefreshToken); rt.IDToken == "" || header(t, rt.IDToken)["alg"] != tc.want {
			t.Errorf("client alg %q: refreshed ID token %q", tc.clientAlg, rt.IDToken)
		}
	}
	// An algorithm no key signs: refused at issuance, not signed otherwise.
	c := e.webClient(func(s *registry.ClientSpec) { s.IDTokenAlg = "EdDSA" })
	code, _ := e.newCode(c, uid)
	if status, tr := e.redeem(c, code); status < 500 || tr.IDToken != "" {
		t.Errorf("EdDSA without an EdDSA key: %d %+v", status, tr)
	}
	if _, _, err := e.clients.Build(registry.ClientSpec{IDTokenAlg: "HS256", Audiences: []string{"api"}}); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("HS256 registered: %v", err)
	}
}

func TestDiscoveryAndJWKS_ListRS256ForIDTokens(t *testing.T) {
	e := rsaEnv(t)
	var md struct {
		IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
	}
	mustJSON(t, e.get("/.well-known/openid-configuration", nil).Body.Bytes(), &md)
	if strings.Join(md.IDTokenAlgs, " ") != "ES256 RS256" {
		t.Errorf("id_token_signing_alg_values_supported = %v", md.IDTokenAlgs)
	}
	var set struct {
		Keys []struct{ Alg, Kty, Use string }
	}
	if err := json.Unmarshal(e.get("/.well-known/jwks.json", nil).Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	var algs []string
	for _, k := range set.Keys {
		algs = append(algs, k.Alg+"/"+k.Kty+"/"+k.Use)
	}
	slices.Sort(algs) // both keys were made at the same instant: store order is by kid
	if strings.Join(algs, " ") != "ES256/EC/sig RS256/RSA/sig" {
		t.Errorf("JWKS keys %v", algs)
	}
}

// go-oidc, a verifier we did not write, accepts only RS256 unless told
// otherwise: the ID token of a client that registered nothing passes it.
func TestIDToken_VerifiesWithGoOIDCDefaults(t *testing.T) {
	e := rsaEnv(t)
	c := e.webClient()
	code, ac := e.newCode(c, e.alice())
	_, tr := e.redeem(c, code)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.get("/.well-known/jwks.json", nil).Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	ks := oidc.StaticKeySet{}
	for _, k := range set.Keys {
		ks.PublicKeys = append(ks.PublicKeys, k.Key)
	}
	v := oidc.NewVerifier(testIssuer, &ks, &oidc.Config{ClientID: c.ID, Now: e.clock.Now})
	tok, err := v.Verify(t.Context(), tr.IDToken)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	if tok.Nonce != ac.Nonce || tok.Subject != ac.UserID {
		t.Errorf("go-oidc read %+v", tok)
	}
}
