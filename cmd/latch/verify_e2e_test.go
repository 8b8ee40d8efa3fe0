package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// TestVerify_JWT_AgainstRunningServer: package verify discovers the real
// server's metadata and JWKS and verifies the access tokens it issues.
func TestVerify_JWT_AgainstRunningServer(t *testing.T) {
	p := startLatch(t, t.TempDir())
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	v, err := verify.New(context.Background(), verify.Config{
		Issuer: p.Issuer, Audience: "dev-api", InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("verify.New against latch serve: %v", err)
	}
	h := v.Middleware(verify.RequireScope("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		w.Write([]byte(c.ClientID))
	})))
	tok := issueToken(t, p, dev, url.Values{"scope": {"read"}})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != "dev" {
		t.Fatalf("JWT from latch serve: %d %s %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
}

// TestVerify_Introspector_AgainstRunningServer: an opaque-token client's
// tokens are accepted through RFC 7662 introspection with scope enforced
// from the answer, and refused once revoked: after CacheTTL, or at once
// with Drop.
func TestVerify_Introspector_AgainstRunningServer(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)} // the resource server's own credentials
	c := createClient(t, dir, "--format", "opaque", "--audience", "api", "--scope", "read")
	const ttl = 500 * time.Millisecond
	in, err := verify.NewIntrospector(context.Background(), verify.IntrospectorConfig{
		Issuer: p.Issuer, ClientID: dev.ID, ClientSecret: dev.Secret, Audience: "api",
		CacheTTL: ttl, NegativeTTL: time.Second, InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("NewIntrospector against latch serve: %v", err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := verify.ClaimsFromContext(r.Context())
		w.Write([]byte(cl.ClientID))
	})
	read := in.Middleware(verify.RequireScope("read")(ok))
	write := in.Middleware(verify.RequireScope("write")(ok))
	do := func(h http.Handler, tok string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	revoke := func(tok string) {
		if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), c, url.Values{"token": {tok}}); code != 200 {
			t.Fatalf("revoke: %d %s", code, body)
		}
	}

	tok := issueToken(t, p, c, url.Values{"scope": {"read"}})
	if !strings.HasPrefix(tok, token.PrefixAccess) {
		t.Fatalf("opaque client got %q", tok)
	}
	if w := do(read, tok); w.Code != 200 || w.Body.String() != c.ID {
		t.Fatalf("active opaque token: %d %s %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
	if w := do(write, tok); w.Code != 403 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("scope from the introspection answer not enforced: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// Revoked: served from the cache until CacheTTL, refused after.
	revoke(tok)
	deadline := time.Now().Add(ttl + 2*time.Second)
	for do(read, tok).Code == 200 {
		if time.Now().After(deadline) {
			t.Fatal("a revoked token was still accepted well after CacheTTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := do(read, tok); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// Revoked and dropped (what the revocation feed will do): refused at once.
	tok2 := issueToken(t, p, c, url.Values{"scope": {"read"}})
	if w := do(read, tok2); w.Code != 200 {
		t.Fatalf("second token: %d", w.Code)
	}
	revoke(tok2)
	in.Drop(token.Hash(tok2))
	if w := do(read, tok2); w.Code != 401 {
		t.Fatalf("revoked token after Drop: %d, want 401", w.Code)
	}
}
