package bff

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch/dpop"
)

// TestRFC9449_BFF_TokensCopiedOutOfTheStoreAreUseless runs the BFF with
// DPoP against the real server and a real resource server (verify with
// DPoP): the login and every refresh bind the tokens to the BFF's key
// (cnf.jkt), API calls through the BFF work, and the access token copied
// out of the store is refused by verify as a Bearer token, as a DPoP token
// without a proof, and with a proof of another key. A second BFF on the
// same store (a restart, another node) serves the session with the same
// key, without a new login or a refresh. It runs on both stores (Redis
// when LATCH_TEST_REDIS is set).
func TestRFC9449_BFF_TokensCopiedOutOfTheStoreAreUseless(t *testing.T) {
	t.Run("store=sqlite", func(t *testing.T) { testTokensCopiedOut(t, newSQLiteStore(t)) })
	t.Run("store=redis", func(t *testing.T) { testTokensCopiedOut(t, newRedisStore(t)) })
}

func testTokensCopiedOut(t *testing.T, store Store) {
	e := newE2E(t, e2eOptions{dpop: true, store: store})
	a := e.newAgent()
	a.login("alice", alicePassword)
	if code, body := a.api("GET", "/api/hello"); code != 200 || body["sub"] == "" {
		t.Fatalf("/api/hello through the BFF: %d %v", code, body)
	}

	// The attacker's copy: the session record, opened.
	key := sha256.Sum256([]byte(a.sessionCookie().Value))
	s, _, err := e.b.readSession(context.Background(), key, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.JKT == "" || s.JKT != e.b.jkt() {
		t.Fatalf("the session's token is bound to %q, want the BFF's key %q", s.JKT, e.b.jkt())
	}
	if got := cnfJKT(t, s.AccessToken); got != e.b.jkt() {
		t.Fatalf("the access token's cnf.jkt is %q, want the BFF's key %q", got, e.b.jkt())
	}

	hello := e.apiURL + "/hello"
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	thief, err := dpop.NewProver(other)
	if err != nil {
		t.Fatal(err)
	}
	otherProof, err := thief.Proof("GET", hello, s.AccessToken, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		authorization string
		proof         string
	}{
		{"Bearer", "Bearer " + s.AccessToken, ""},
		{"DPoP without a proof", "DPoP " + s.AccessToken, ""},
		{"DPoP with another key's proof", "DPoP " + s.AccessToken, otherProof},
	} {
		req, _ := http.NewRequest("GET", hello, nil)
		req.Header.Set("Authorization", tc.authorization)
		if tc.proof != "" {
			req.Header.Set(dpop.HeaderName, tc.proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the copied token, %s: %d, want 401", tc.name, resp.StatusCode)
		}
	}

	// A session from before --dpop (its token unbound) is refreshed at
	// its next call, and the refresh binds the new token to the key. (The
	// proofs take their iat from the BFF's clock, so the test cannot move
	// that clock past the token's expiry as the other refresh tests do.)
	unbound := *s
	unbound.JKT = ""
	sealed, err := e.b.sealSession(key, &unbound)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.cfg.Store.UpdateSession(context.Background(), key[:], sealed, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	refreshes := e.counter.refreshes.Load()
	if code, body := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("/api/hello after expiry: %d %v", code, body)
	}
	if e.counter.refreshes.Load() != refreshes+1 {
		t.Fatalf("%d refreshes, want 1", e.counter.refreshes.Load()-refreshes)
	}
	s2, _, err := e.b.readSession(context.Background(), key, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s2.AccessToken == s.AccessToken || s2.JKT != e.b.jkt() || cnfJKT(t, s2.AccessToken) != e.b.jkt() {
		t.Fatalf("after the refresh: a new token %v, bound to %q (cnf %q), want the BFF's key %q", s2.AccessToken != s.AccessToken, s2.JKT, cnfJKT(t, s2.AccessToken), e.b.jkt())
	}

	// Another BFF on the same store and Key: the same DPoP key, the
	// session works at once.
	b2, err := New(context.Background(), e.b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b2.jkt() != e.b.jkt() {
		t.Fatalf("a second BFF on the store has key %s, want %s", b2.jkt(), e.b.jkt())
	}
	r := httptest.NewRequest("GET", e.bffURL+"/api/hello", nil)
	r.AddCookie(a.sessionCookie())
	w := httptest.NewRecorder()
	b2.Handler().ServeHTTP(w, r)
	if w.Code != 200 || e.counter.refreshes.Load() != refreshes+1 {
		t.Fatalf("the session on the second BFF: %d %s, %d refreshes; want 200 without a refresh", w.Code, w.Body, e.counter.refreshes.Load()-refreshes)
	}
}

// cnfJKT returns the cnf.jkt of a JWT access token, without checking it.
func cnfJKT(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Cnf.JKT
}

// TestRFC9449_8_BFF_FollowsTheServerNonce: against a server that requires
// its nonce in every proof, the BFF's first token request is answered
// use_dpop_nonce and sent once more with the nonce, which the BFF keeps:
// the refresh that follows needs one request.
func TestRFC9449_8_BFF_FollowsTheServerNonce(t *testing.T) {
	e := newE2E(t, e2eOptions{dpop: true, dpopNonces: true})
	a := e.newAgent()
	a.login("alice", alicePassword)
	if n := e.counter.posts.Load(); n != 2 {
		t.Fatalf("the login made %d token requests, want 2 (use_dpop_nonce, then with the nonce)", n)
	}
	if code, body := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("/api/hello: %d %v", code, body)
	}
	// Force a refresh: the session's token looks unbound.
	key := sha256.Sum256([]byte(a.sessionCookie().Value))
	s, _, err := e.b.readSession(context.Background(), key, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.JKT = ""
	sealed, err := e.b.sealSession(key, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.cfg.Store.UpdateSession(context.Background(), key[:], sealed, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if code, body := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("/api/hello after the refresh: %d %v", code, body)
	}
	if n, r := e.counter.posts.Load(), e.counter.refreshes.Load(); n != 3 || r != 1 {
		t.Fatalf("%d token requests and %d refreshes in all, want 3 and 1: the kept nonce serves the refresh", n, r)
	}
}
