package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// TestInvariant8_Fingerprint_E2E (security invariant 8): a client registered with
// `latch client create --token-fingerprint` gets its token with a
// __Host-latch_fgp cookie, the token's fgp is the cookie's hash, and
// verify.Middleware refuses the token alone and accepts it with the cookie.
func TestInvariant8_Fingerprint_E2E(t *testing.T) {
	dir := migratedDir(t)
	c := createClient(t, dir, "--token-fingerprint", "--audience", "api", "--scope", "read", "--access-token-ttl", "5m")
	if out := runCLI(t, "client", "get", c.ID, "--data-dir", dir, "--json"); !strings.Contains(out, `"token_fingerprint": true`) &&
		!strings.Contains(out, `"token_fingerprint":true`) {
		t.Fatalf("client get does not show token_fingerprint: %s", out)
	}
	p := startLatch(t, dir)

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	req, err := http.NewRequest(http.MethodPost, p.URL("/oauth2/token"), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", body, err)
	}
	sc := resp.Header.Values("Set-Cookie")
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie = %q, want one", sc)
	}
	name, rest, _ := strings.Cut(sc[0], "=")
	value, attrs, _ := strings.Cut(rest, ";")
	if name != "__Host-latch_fgp" || len(value) != 43 {
		t.Fatalf("Set-Cookie = %q, want __Host-latch_fgp=<43 base64url chars>", sc[0])
	}
	if want := " Path=/; Max-Age=300; Secure; HttpOnly; SameSite=Strict"; attrs != want {
		t.Errorf("cookie attributes = %q, want %q", attrs, want)
	}
	parts := strings.Split(tr.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS: %q", tr.AccessToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims token.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("token payload %s: %v", payload, err)
	}
	sum := sha256.Sum256([]byte(value))
	if got := claims.Extra["fgp"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("fgp = %v, want hex SHA-256 of the cookie value", got)
	}

	v, err := verify.New(context.Background(), verify.Config{
		Issuer: p.Issuer, Audience: "api", InsecureAllowHTTP: true,
		FingerprintCookie: verify.DefaultFingerprintCookie,
	})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})))
	defer srv.Close()
	call := func(cookie string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		if cookie != "" {
			r.Header.Set("Cookie", "__Host-latch_fgp="+cookie)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if code, _ := call(value); code != 200 {
		t.Fatalf("token + cookie: %d, want 200", code)
	}
	if code, chal := call(""); code != 401 || !strings.Contains(chal, "token fingerprint missing or wrong") {
		t.Errorf("token alone: %d %q, want 401 token fingerprint missing or wrong", code, chal)
	}
	if code, _ := call(strings.Repeat("A", 43)); code != 401 {
		t.Errorf("token + wrong cookie: %d, want 401", code)
	}
	if code, _ := call(value); code != 200 {
		t.Errorf("token + cookie again (cache hit): %d, want 200", code)
	}
}
