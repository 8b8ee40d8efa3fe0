package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// fakeIssuer publishes metadata and a JWKS with one ES256 key and returns
// its URL and a signer for that key. The end-to-end test in cmd/latch runs
// the API against the real server.
func fakeIssuer(t *testing.T) (string, *token.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	x, y := key.X.FillBytes(make([]byte, 32)), key.Y.FillBytes(make([]byte, 32))
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": base, "jwks_uri": base + "/jwks"})
		case "/jwks":
			json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(x), "y": b64.EncodeToString(y), "kid": "k1", "alg": "ES256", "use": "sig",
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	base = srv.URL
	signer, err := token.NewSigner("k1", latch.ES256, key)
	if err != nil {
		t.Fatal(err)
	}
	return base, signer
}

func TestHello_AnswersTheCallerWithScopeRead(t *testing.T) {
	iss, signer := fakeIssuer(t)
	v, err := verify.New(context.Background(), verify.Config{Issuer: iss, Audience: "api", InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(v)
	now := time.Now().Unix()
	mint := func(scope string) string {
		tok, err := signer.Sign("at+jwt", &token.Claims{Issuer: iss, Subject: "alice", Audience: token.Audience{"api"},
			ExpiresAt: now + 60, IssuedAt: now, ID: "j-" + scope, ClientID: "app", Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/hello", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := get("Bearer " + mint("read"))
	var got map[string]string
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil || got["sub"] != "alice" || got["client_id"] != "app" || got["scope"] != "read" {
		t.Fatalf("GET /hello with scope read: %d %s", w.Code, w.Body)
	}
	if w := get("Bearer " + mint("write")); w.Code != 403 {
		t.Fatalf("without scope read: %d", w.Code)
	}
	if w := get(""); w.Code != 401 {
		t.Fatalf("without a token: %d", w.Code)
	}
	if w := get("Bearer lt_at_notajwt"); w.Code != 401 {
		t.Fatalf("an opaque token: %d", w.Code)
	}
}
