package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildExample builds examples/NAME into a directory removed after the test.
func buildExample(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build examples/%s: %v\n%s", name, err, out)
	}
	return bin
}

// TestExampleWebapp_EndToEnd runs examples/webapp against latch serve:
// a browser signs in through latch's login page, lands on the app with the
// app's own session cookie (and no token), signs out with the CSRF token,
// and a forged sign-out or a callback the browser did not start is refused.
func TestExampleWebapp_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	const password = "correct horse battery staple"
	alice := createAlice(t, dir, password)
	addr := freeAddr(t)
	base := "http://" + addr
	c := createClient(t, dir, "--id", "webapp", "--first-party", "--grant", "authorization_code",
		"--redirect-uri", base+"/callback", "--scope", "openid profile", "--audience", "api")
	startProc(t, "webapp listening", []string{"LATCH_CLIENT_SECRET=" + c.Secret}, buildExample(t, "webapp"),
		"--issuer", p.Issuer, "--insecure-allow-http", "--client-id", "webapp", "--listen", addr)

	b := newAuthBrowser(t)
	// A session ID planted before login (fixation) must not survive it.
	b.cookies[addr] = map[string]string{"__Host-webapp_session": "planted"}
	pg := b.visit(base+"/login", "alice", password)
	if pg.Status != 200 || pg.URL.Host != addr || !strings.Contains(pg.Body, "Signed in as <strong>alice</strong>") || !strings.Contains(pg.Body, alice.ID) {
		t.Fatalf("after login: %d at %s\n%s", pg.Status, pg.URL, pg.Body)
	}
	sid := b.cookies[addr]["__Host-webapp_session"]
	if sid == "" || sid == "planted" || len(sid) < 43 {
		t.Fatalf("session cookie after login: %q", sid)
	}
	for name := range b.cookies[addr] {
		if name != "__Host-webapp_session" {
			t.Errorf("the app left cookie %s in the browser", name)
		}
	}
	if strings.Contains(pg.Body, "lt_") || strings.Contains(pg.Body, "eyJ") {
		t.Fatalf("a token reached the page:\n%s", pg.Body)
	}
	if pg.Header.Get("Cache-Control") != "no-store" || !strings.Contains(pg.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("page headers: %v", pg.Header)
	}
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(pg.Body)
	if csrf == nil {
		t.Fatalf("no CSRF token in the page:\n%s", pg.Body)
	}
	logout := mustParseURL(t, base+"/logout")
	if r := b.do(http.MethodPost, logout, url.Values{"csrf_token": {"wrong"}}, base); r.Status != http.StatusForbidden {
		t.Fatalf("logout with a wrong CSRF token: %d", r.Status)
	}
	if r := b.do(http.MethodPost, logout, url.Values{"csrf_token": {csrf[1]}}, "http://evil.example"); r.Status != http.StatusForbidden {
		t.Fatalf("cross-origin logout: %d", r.Status)
	}
	if r := b.do(http.MethodPost, logout, url.Values{"csrf_token": {csrf[1]}}, base); r.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	b.cookies[addr]["__Host-webapp_session"] = sid // an old copy of the cookie
	if r := b.do(http.MethodGet, mustParseURL(t, base+"/"), nil, ""); !strings.Contains(r.Body, "not signed in") {
		t.Fatalf("the session outlived its logout:\n%s", r.Body)
	}
	// A callback this browser did not start (login CSRF) is refused.
	other := newAuthBrowser(t)
	if r := other.do(http.MethodGet, mustParseURL(t, base+"/callback?code=x&state=y"), nil, ""); r.Status != http.StatusBadRequest {
		t.Fatalf("unsolicited callback: %d", r.Status)
	}
}

// TestExampleService_EndToEnd runs examples/service against latch serve:
// keygen, registration of the public key, a client_credentials token got
// with private_key_jwt and used at examples/api; a key latch does not know
// is refused.
func TestExampleService_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	work := t.TempDir()
	svc := buildExample(t, "service")
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(svc, args...)
		cmd.Dir = work
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}
	if out, errOut, code := run("keygen", "--out", "svc"); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	createClient(t, dir, "--id", "svc", "--auth-method", "private_key_jwt", "--jwks-file", filepath.Join(work, "svc.jwks.json"),
		"--audience", "api", "--scope", "read")
	api := startProc(t, "listening", nil, buildExampleAPI(t),
		"--issuer", p.Issuer, "--audience", "api", "--insecure-allow-http", "--listen", "127.0.0.1:0")

	out, errOut, code := run("--issuer", p.Issuer, "--insecure-allow-http", "--client-id", "svc", "--key", "svc.key.jwk",
		"--scope", "read", "--call", "http://"+api.Addr+"/hello")
	if code != 0 {
		t.Fatalf("service: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		TokenType string `json:"token_type"`
		Scope     string `json:"scope"`
		Call      struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		} `json:"call"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("service output %q: %v", out, err)
	}
	if res.TokenType != "Bearer" || res.Scope != "read" || res.Call.Status != 200 || !strings.Contains(res.Call.Body, "svc") {
		t.Fatalf("service result: %+v", res)
	}

	// Another key for the same client id: latch refuses the assertion.
	if _, _, code := run("keygen", "--out", "other"); code != 0 {
		t.Fatal("keygen other")
	}
	_, errOut, code = run("--issuer", p.Issuer, "--insecure-allow-http", "--client-id", "svc", "--key", "other.key.jwk")
	if code != 1 || !strings.Contains(errOut, "invalid_client") {
		t.Fatalf("an unregistered key: exit %d, %s", code, errOut)
	}
	// The public key is not a signing key.
	_, errOut, code = run("--issuer", p.Issuer, "--insecure-allow-http", "--client-id", "svc", "--key", "svc.jwks.json")
	if code != 1 {
		t.Fatalf("a JWK Set as --key: exit %d, %s", code, errOut)
	}
}
