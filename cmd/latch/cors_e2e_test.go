package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClientWebOrigin_CLIRegistersItAndServeAnswersItsPreflight: `latch
// client create --web-origin` stores the origin as browsers send it,
// refuses what is not an origin, and the running server answers a
// preflight from it (after its client cache's TTL) and from no other.
func TestClientWebOrigin_CLIRegistersItAndServeAnswersItsPreflight(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	out := runCLI(t, "client", "create", "--data-dir", dir, "--json", "--auth-method", "none",
		"--grant", "authorization_code", "--scope", "openid", "--audience", "api",
		"--redirect-uri", "https://spa.example.com/cb", "--web-origin", "HTTPS://SPA.example.com:443",
		"--web-origin", "http://127.0.0.1:5173")
	var v struct {
		WebOrigins []string `json:"web_origins"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://spa.example.com", "http://127.0.0.1:5173"}; !slices.Equal(v.WebOrigins, want) {
		t.Errorf("web_origins = %v, want %v", v.WebOrigins, want)
	}
	_, stderr, code := runCLICode(t, nil, "client", "create", "--data-dir", dir, "--scope", "read", "--audience", "api",
		"--web-origin", "https://spa.example.com/")
	if code == 0 || !strings.Contains(stderr, "web origin") || !strings.Contains(stderr, "trailing /") {
		t.Errorf("--web-origin with a path: exit %d %q", code, stderr)
	}

	preflight := func(origin string) string {
		req, err := http.NewRequest(http.MethodOptions, p.URL("/oauth2/token"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight from %s: %d", origin, resp.StatusCode)
		}
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	// The server reads clients again within its client cache's TTL (1 s).
	deadline := time.Now().Add(3 * time.Second)
	for preflight("https://spa.example.com") != "https://spa.example.com" {
		if time.Now().After(deadline) {
			t.Fatal("the registered origin's preflight is never allowed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := preflight("https://evil.example"); got != "" {
		t.Errorf("an unregistered origin's preflight: Access-Control-Allow-Origin %q", got)
	}
}
