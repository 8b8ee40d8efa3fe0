package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"
)

// TestServe_Tour is the README's five-minute tour: the dev client gets a JWT
// with golang.org/x/oauth2, go-oidc verifies it against the live JWKS, and
// it is introspected, revoked, and then inactive.
func TestServe_Tour(t *testing.T) {
	p := startLatch(t, t.TempDir())
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	ctx := context.Background()

	cc := clientcredentials.Config{ClientID: dev.ID, ClientSecret: dev.Secret, TokenURL: p.URL("/oauth2/token"), Scopes: []string{"read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("x/oauth2 client credentials: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.Expiry.Before(time.Now().Add(9*time.Minute)) {
		t.Fatalf("token type %q, expiry %v; want Bearer, ~10 minutes", tok.TokenType, tok.Expiry)
	}

	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "dev-api", SupportedSigningAlgs: []string{"ES256"}})
	idt, err := verifier.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("go-oidc verify against the live JWKS: %v", err)
	}
	var claims struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		JTI      string `json:"jti"`
	}
	if err := idt.Claims(&claims); err != nil || claims.ClientID != "dev" || claims.Scope != "read" || claims.JTI == "" || idt.Subject != "dev" {
		t.Fatalf("claims %+v sub %q: %v", claims, idt.Subject, err)
	}

	if got := introspect(t, p, dev, tok.AccessToken); got["active"] != true || got["jti"] != claims.JTI {
		t.Fatalf("introspection before revocation: %v", got)
	}
	if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), dev, url.Values{"token": {tok.AccessToken}}); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	got := introspect(t, p, dev, tok.AccessToken)
	if b, _ := json.Marshal(got); string(b) != `{"active":false}` {
		t.Fatalf("introspection after revocation = %s, want exactly {\"active\":false}", b)
	}
}

// TestServe_OpaqueClientCreatedWhileRunning registers an opaque-token client
// with the CLI on the data directory of a running server, and uses it.
func TestServe_OpaqueClientCreatedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	c := createClient(t, dir, "--format", "opaque", "--audience", "api", "--scope", "read write")
	tok := issueToken(t, p, c, url.Values{"scope": {"write"}})
	if !strings.HasPrefix(tok, "lt_at_") {
		t.Fatalf("opaque client got %q", tok)
	}
	got := introspect(t, p, c, tok)
	if got["active"] != true || got["scope"] != "write" || got["client_id"] != c.ID || got["iss"] != p.Issuer {
		t.Fatalf("introspection: %v", got)
	}
	postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), c, url.Values{"token": {tok}})
	if got := introspect(t, p, c, tok); len(got) != 1 || got["active"] != false {
		t.Fatalf("after revoke: %v", got)
	}

	// The CLI lists and removes it while the server keeps running.
	var list []testClient
	if err := json.Unmarshal([]byte(runCLI(t, "client", "list", "--json", "--data-dir", dir)), &list); err != nil || len(list) != 2 {
		t.Fatalf("client list: %v %v", list, err)
	}
	// A client deleted by another process stops working within the
	// server's client cache TTL (1s).
	runCLI(t, "client", "delete", c.ID, "--data-dir", dir)
	deleted := time.Now()
	for {
		code, _ := postForm(t, http.DefaultClient, p.URL("/oauth2/token"), c, url.Values{"grant_type": {"client_credentials"}})
		if code == 401 {
			break
		}
		if time.Since(deleted) > 3*time.Second {
			t.Fatalf("client deleted by the CLI still gets %d after 3s", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInvariant10_KillDashNine_AcknowledgedWritesSurvive kills the real server with
// SIGKILL while clients issue and revoke opaque tokens, restarts it on the
// same data directory, and checks that every revocation it acknowledged is
// still in force and every token it issued (and did not revoke) still works
// (security invariant 10).
func TestInvariant10_KillDashNine_AcknowledgedWritesSurvive(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	c := createClient(t, dir, "--format", "opaque", "--audience", "api", "--access-token-ttl", "1h")

	var (
		mu       sync.Mutex
		revoked  []string // acknowledged revocations
		issued   []string // acknowledged issuance, not revoked
		stop     atomic.Bool
		wg       sync.WaitGroup
		hc       = &http.Client{Timeout: 5 * time.Second}
		requests atomic.Int64
	)
	post := func(path string, form url.Values) (int, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, p.URL(path), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, c.Secret)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, b, err
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 2000; i++ {
				requests.Add(1)
				code, body, err := post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
				if err != nil || code != 200 {
					continue
				}
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				if json.Unmarshal(body, &tr) != nil {
					continue
				}
				if i%2 == 0 {
					mu.Lock()
					issued = append(issued, tr.AccessToken)
					mu.Unlock()
					continue
				}
				code, _, err = post("/oauth2/revoke", url.Values{"token": {tr.AccessToken}})
				if err == nil && code == 200 {
					mu.Lock()
					revoked = append(revoked, tr.AccessToken)
					mu.Unlock()
				}
			}
		}()
	}
	// Let the load run, then crash the server in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(revoked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(revoked) < 50 || len(issued) < 50 {
		t.Fatalf("load too small to prove anything: %d revoked, %d issued in %d requests", len(revoked), len(issued), requests.Load())
	}

	p2 := startLatch(t, dir)
	for _, tok := range revoked {
		if got := introspect(t, p2, c, tok); got["active"] != false {
			t.Fatalf("acknowledged revocation lost after kill -9: %v", got)
		}
	}
	for _, tok := range issued {
		if got := introspect(t, p2, c, tok); got["active"] != true {
			t.Fatalf("acknowledged token lost after kill -9: %v", got)
		}
	}
	t.Logf("after kill -9: %d acknowledged revocations and %d acknowledged tokens all intact", len(revoked), len(issued))
}

func TestServe_WithoutDev_RequiresIssuerAndKEK(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLICode(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "--issuer is required without --dev") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLICode(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--issuer", "https://auth.example.com")
	if code != 1 || !strings.Contains(stderr, "key-encryption key") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLICode(t, []string{"LATCH_KEK=tooshort"}, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--issuer", "https://auth.example.com")
	if code == 0 || !strings.Contains(stderr, "LATCH_KEK") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLICode(t, nil, "serve", "--bogus")
	if code != 2 || !strings.Contains(stderr, "unknown flag") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestServe_IntrospectionRateMustBePositive(t *testing.T) {
	for _, r := range []string{"0", "-5"} {
		_, stderr, code := runCLICode(t, nil, "serve", "--dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--introspection-rate", r)
		if code != 2 || !strings.Contains(stderr, "--introspection-rate must be positive") {
			t.Errorf("rate %s: exit %d, stderr %q", r, code, stderr)
		}
	}
}

func TestServe_TokenCacheSizeMustNotBeNegative(t *testing.T) {
	_, stderr, code := runCLICode(t, nil, "serve", "--dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--token-cache-size", "-1")
	if code != 2 || !strings.Contains(stderr, "--token-cache-size must be 0 (off) or a number of entries") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestServe_DevOnlyOnLoopback(t *testing.T) {
	_, stderr, code := runCLICode(t, nil, "serve", "--dev", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "--dev listens on loopback only") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestConfig_KEKFileFlagBeatsEnvironment: --kek-file on the command line
// wins over LATCH_KEK, as every flag wins over its environment variable.
func TestConfig_KEKFileFlagBeatsEnvironment(t *testing.T) {
	dir := migratedDir(t)
	kek := filepath.Join(dir, "kek")
	runCLI(t, "keys", "new-kek", "--out", kek)
	runCLI(t, "keys", "rotate", "--data-dir", dir, "--kek-file", kek) // first key, sealed under kek
	if out, stderr, code := runCLICode(t, []string{"LATCH_KEK=bogus"}, "keys", "list", "--json", "--data-dir", dir, "--kek-file", kek); code != 0 {
		t.Fatalf("--kek-file with a bogus LATCH_KEK: exit %d %s %s", code, out, stderr)
	}
	if _, stderr, code := runCLICode(t, []string{"LATCH_KEK=bogus"}, "keys", "list", "--data-dir", dir); code == 0 || !strings.Contains(stderr, "LATCH_KEK") {
		t.Fatalf("LATCH_KEK without the flag must be used (and refused): exit %d %q", code, stderr)
	}
	if out, stderr, code := runCLICode(t, []string{"LATCH_KEK_FILE=" + kek}, "keys", "list", "--json", "--data-dir", dir); code != 0 {
		t.Fatalf("LATCH_KEK_FILE: exit %d %s %s", code, out, stderr)
	}
}

// TestConfig_Precedence checks flag > LATCH_* env > config file > default,
// through the real binary (client create registers in the database
// --data-dir points at).
func TestConfig_Precedence(t *testing.T) {
	base := t.TempDir()
	fileDir, envDir, flagDir := filepath.Join(base, "file"), filepath.Join(base, "env"), filepath.Join(base, "flag")
	for _, d := range []string{fileDir, envDir, flagDir} {
		runCLI(t, "migrate", "--data-dir", d)
	}
	cfg := filepath.Join(base, "latch.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+fileDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	list := func(env []string, args ...string) {
		t.Helper()
		if out, errOut, code := runCLICode(t, env, append([]string{"client", "create", "--json", "--audience", "a"}, args...)...); code != 0 {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
	}
	list(nil, "--config", cfg)
	list([]string{"LATCH_DATA_DIR=" + envDir}, "--config", cfg)
	list([]string{"LATCH_DATA_DIR=" + envDir, "LATCH_CONFIG=" + cfg}, "--data-dir", flagDir)
	for _, d := range []string{fileDir, envDir, flagDir} {
		var clients []any
		if out := runCLI(t, "client", "list", "--json", "--data-dir", d); json.Unmarshal([]byte(out), &clients) != nil || len(clients) != 1 {
			t.Errorf("expected one client in %s: %s", d, out)
		}
	}
	if err := os.WriteFile(cfg, []byte("data_dri: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLICode(t, nil, "client", "list", "--config", cfg); code == 0 || !strings.Contains(stderr, "unknown setting(s) data_dri") {
		t.Fatalf("typo in config file: exit %d, %q", code, stderr)
	}
}

func TestCLI_ClientLifecycle(t *testing.T) {
	dir := migratedDir(t)
	c := createClient(t, dir, "--id", "billing", "--scope", "read", "--audience", "api", "--format", "opaque")
	if c.ID != "billing" || len(c.Secret) < 40 {
		t.Fatalf("created %+v", c)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, "client", "get", "billing", "--json", "--data-dir", dir)), &got); err != nil {
		t.Fatal(err)
	}
	if got["access_token_format"] != "opaque" || got["client_secret"] != nil {
		t.Fatalf("client get must show the format and never a secret: %v", got)
	}
	var rotated testClient
	json.Unmarshal([]byte(runCLI(t, "client", "rotate-secret", "billing", "--json", "--data-dir", dir)), &rotated)
	if rotated.Secret == "" || rotated.Secret == c.Secret {
		t.Fatalf("rotate-secret gave %q", rotated.Secret)
	}
	if _, stderr, code := runCLICode(t, nil, "client", "create", "--id", "billing", "--data-dir", dir); code != 1 || !strings.Contains(stderr, "exists") {
		t.Fatalf("duplicate id: exit %d %q", code, stderr)
	}
	if _, stderr, code := runCLICode(t, nil, "client", "create", "--format", "paper", "--data-dir", dir); code != 1 || !strings.Contains(stderr, "jwt or opaque") {
		t.Fatalf("bad format: exit %d %q", code, stderr)
	}
	runCLI(t, "client", "delete", "billing", "--data-dir", dir)
	if _, stderr, code := runCLICode(t, nil, "client", "get", "billing", "--data-dir", dir); code != 1 || !strings.Contains(stderr, "not found") {
		t.Fatalf("get deleted: exit %d %q", code, stderr)
	}
	if _, _, code := runCLICode(t, nil, "client", "get", "--data-dir", dir); code != 2 {
		t.Fatalf("missing argument: exit %d, want 2", code)
	}
}
