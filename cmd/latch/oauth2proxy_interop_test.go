package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oauth2ProxyModDir is the module that pins the oauth2-proxy the tests
// run; .ci/run builds it from there.
const oauth2ProxyModDir = "../../interop/oauth2-proxy"

// oauth2ProxyModule is oauth2-proxy's Go module path.
const oauth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7"

// pinnedOAuth2ProxyVersion reads the version interop/oauth2-proxy/go.mod
// requires.
func pinnedOAuth2ProxyVersion(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(oauth2ProxyModDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == oauth2ProxyModule {
			return fields[1]
		}
	}
	t.Fatalf("%s/go.mod does not require %s", oauth2ProxyModDir, oauth2ProxyModule)
	return ""
}

// findOAuth2Proxy returns the oauth2-proxy binary named by
// LATCH_TEST_OAUTH2_PROXY, after checking from its embedded build
// information that it is the pinned version; without the variable it
// skips.
func findOAuth2Proxy(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("LATCH_TEST_OAUTH2_PROXY")
	if bin == "" {
		t.Skipf("LATCH_TEST_OAUTH2_PROXY is not set; build oauth2-proxy with `cd interop/oauth2-proxy && go build -o /tmp/oauth2-proxy %s` and set LATCH_TEST_OAUTH2_PROXY=/tmp/oauth2-proxy to run this test (as .ci/run does)", oauth2ProxyModule)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("LATCH_TEST_OAUTH2_PROXY=%s: not a Go binary with build information: %v", bin, err)
	}
	var version string
	if info.Main.Path == oauth2ProxyModule {
		version = info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == oauth2ProxyModule {
			version = d.Version
		}
	}
	if want := pinnedOAuth2ProxyVersion(t); version != want {
		t.Fatalf("LATCH_TEST_OAUTH2_PROXY=%s is oauth2-proxy %q, but %s pins %s; rebuild it there", bin, version, oauth2ProxyModDir, want)
	}
	return bin
}

// oauth2Proxy is a running oauth2-proxy.
type oauth2Proxy struct {
	URL string
	Out *syncBuffer
}

// startOAuth2Proxy runs oauth2-proxy on port with args until the test
// ends, and waits until its /ping answers.
func startOAuth2Proxy(t *testing.T, bin string, port int, args ...string) *oauth2Proxy {
	t.Helper()
	o := &oauth2Proxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Out: &syncBuffer{}}
	cmd := exec.Command(bin, append([]string{fmt.Sprintf("--http-address=127.0.0.1:%d", port)}, args...)...)
	// Its configuration is all on the command line: none of the
	// developer's OAUTH2_PROXY_ variables.
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "OAUTH2_PROXY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = o.Out, o.Out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start oauth2-proxy: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { stopProcess(t, "oauth2-proxy", cmd, done) })
	hc := &http.Client{Timeout: 2 * time.Second}
	// A hang guard, not a timing assertion.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("oauth2-proxy exited at start:\n%s", o.Out)
		default:
		}
		if resp, err := hc.Get(o.URL + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not answer /ping within 30s:\n%s", o.Out)
		}
	}
}

// TestInterop_OAuth2Proxy_Login puts oauth2-proxy, built from its Go
// module at the version interop/oauth2-proxy pins, in front of a test
// upstream with its OIDC provider settings as its documentation gives
// them plus PKCE, against a real latch, and signs in through it in
// headless Chromium, with oauth2-proxy's default scope and with the
// groups scope other providers need. The upstream must receive the
// user's identity, email and groups in oauth2-proxy's X-Forwarded-
// headers, and nothing before the user signed in.
func TestInterop_OAuth2Proxy_Login(t *testing.T) {
	bin := findOAuth2Proxy(t)
	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	alice := createRPAlice(t, dataDir)
	up := newUpstream(t)

	for _, tc := range []struct {
		name, path string
		scope      []string // oauth2-proxy's --scope flag, if any
	}{
		// oauth2-proxy's default for the oidc provider: openid email profile.
		{"default_scope", "/default", nil},
		// What guides for Dex, Keycloak or Authentik add for the groups
		// claim: latch knows no groups scope (groups are in every token)
		// and leaves it out of the grant instead of refusing the login.
		{"groups_scope", "/groups", []string{"--scope=openid email profile groups"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := newRPBrowser(t)
			// The redirect URI is registered before oauth2-proxy starts,
			// so its port is chosen first. oauth2-proxy is the operator's
			// own gateway: a first-party client.
			port := freePort(t)
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			c := createClient(t, dataDir, "--name", "oauth2-proxy", "--first-party",
				"--grant", "authorization_code,refresh_token", "--redirect-uri", base+"/oauth2/callback",
				"--scope", "openid", "--audience", "app")
			o := startOAuth2Proxy(t, bin, port, append([]string{
				"--provider=oidc",
				"--oidc-issuer-url=" + p.Issuer,
				"--client-id=" + c.ID,
				"--client-secret=" + c.Secret,
				"--redirect-url=" + base + "/oauth2/callback",
				"--upstream=" + up.URL + "/",
				"--email-domain=*",
				"--cookie-secret=" + randomHex(t)[:32],
				// The test serves over http on loopback.
				"--cookie-secure=false",
				"--code-challenge-method=S256",
				"--skip-provider-button",
			}, tc.scope...)...)
			diag := func() string {
				return "oauth2-proxy output:\n" + o.Out.String() + "latch stderr:\n" + p.Stderr.String()
			}

			loc := br.signIn(o.URL+tc.path, p.Issuer, alice.Username, alice.Password, diag)
			if loc != o.URL+tc.path {
				t.Fatalf("after login the browser is at %s, want %s%s\n%s", loc, o.URL, tc.path, diag())
			}
			for _, r := range up.all() {
				if r.Header.Get("X-Forwarded-User") != alice.ID {
					t.Errorf("the upstream received %s for someone else than alice (X-Forwarded-User %q)", r.Path, r.Header.Get("X-Forwarded-User"))
				}
			}
			got := up.last(t, tc.path).Header
			for name, want := range map[string]string{
				"X-Forwarded-User":               alice.ID,
				"X-Forwarded-Email":              alice.Email,
				"X-Forwarded-Groups":             strings.Join(alice.Groups, ","),
				"X-Forwarded-Preferred-Username": alice.Username,
			} {
				if v := strings.Join(got.Values(name), ","); v != want {
					t.Errorf("the upstream got %s %q, want %q", name, v, want)
				}
			}
			if t.Failed() {
				t.Fatalf("headers the upstream received:\n%s\n%s", headerDump(got), diag())
			}
		})
	}
}
