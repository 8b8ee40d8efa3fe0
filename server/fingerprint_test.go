package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// TestFingerprint_TokenResponse (security invariant 8): a client registered
// with TokenFingerprint gets a __Host- cookie with exactly the OWASP
// attributes, and its JWT's fgp is the hex SHA-256 of the cookie value.
func TestFingerprint_TokenResponse(t *testing.T) {
	e := newEnv(t)
	c := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, TokenFingerprint: true})
	w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}})
	if w.Code != 200 {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	mustJSON(t, w.Body.Bytes(), &tr)
	sc := w.Header().Values("Set-Cookie")
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie = %q, want exactly one", sc)
	}
	value, attrs, ok := strings.Cut(strings.TrimPrefix(sc[0], "__Host-latch_fgp="), ";")
	if !ok || !strings.HasPrefix(sc[0], "__Host-latch_fgp=") {
		t.Fatalf("Set-Cookie = %q", sc[0])
	}
	if want := " Path=/; Max-Age=" + strconv.FormatInt(tr.ExpiresIn, 10) + "; Secure; HttpOnly; SameSite=Strict"; attrs != want {
		t.Errorf("cookie attributes = %q, want %q", attrs, want)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(value); err != nil || len(raw) != 32 {
		t.Errorf("cookie value %q is not 256 bits of base64url: %v", value, err)
	}
	parts := strings.Split(tr.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tr.AccessToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	mustJSON(t, payload, &claims)
	sum := sha256.Sum256([]byte(value))
	if claims["fgp"] != hex.EncodeToString(sum[:]) {
		t.Errorf("fgp = %v, want the lowercase hex SHA-256 of the cookie value %s", claims["fgp"], hex.EncodeToString(sum[:]))
	}

	// Each token gets its own value.
	w2 := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}})
	if got := w2.Header().Get("Set-Cookie"); got == "" || got == sc[0] {
		t.Errorf("second token's cookie %q repeats or lacks the first", got)
	}

	// Introspection still reports the token, without fgp.
	var in map[string]any
	mustJSON(t, []byte(e.introspect(c, tr.AccessToken)), &in)
	if in["active"] != true {
		t.Errorf("introspection of a bound token: %v", in)
	}
	if _, ok := in["fgp"]; ok {
		t.Errorf("introspection answer carries fgp: %v", in)
	}
}

func TestFingerprint_UnboundClient_NoCookie(t *testing.T) {
	e := newEnv(t)
	w := e.do("/oauth2/token", e.jwtClient(), url.Values{"grant_type": {"client_credentials"}})
	if w.Code != 200 || w.Header().Get("Set-Cookie") != "" {
		t.Fatalf("unbound client: %d Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, w.Body.Bytes(), &tr)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tr.AccessToken, ".")[1])
	var claims map[string]any
	mustJSON(t, payload, &claims)
	if _, ok := claims["fgp"]; ok {
		t.Errorf("unbound client's token carries fgp: %s", payload)
	}
}

func TestFingerprint_OpaqueClient_Refused(t *testing.T) {
	e := newEnv(t)
	_, err := e.clients.Create(context.Background(), registry.ClientSpec{Audiences: []string{"api"},
		AccessTokenFormat: "opaque", TokenFingerprint: true})
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("opaque + fingerprint: %v, want EINVALID naming the fingerprint", err)
	}
}

func TestFingerprint_ClientView(t *testing.T) {
	e := newEnv(t)
	v, err := e.clients.Create(context.Background(), registry.ClientSpec{Audiences: []string{"api"}, TokenFingerprint: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if !strings.Contains(string(b), `"token_fingerprint":true`) {
		t.Errorf("view %s lacks token_fingerprint", b)
	}
	got, err := e.db.Client(context.Background(), v.ID)
	if err != nil || !got.TokenFingerprint {
		t.Errorf("stored client: %+v %v", got, err)
	}
	b, _ = json.Marshal(registry.ViewOf(&latch.Client{ID: "x"}))
	if strings.Contains(string(b), "token_fingerprint") {
		t.Errorf("view of an unbound client shows token_fingerprint: %s", b)
	}
}
