package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/chromedp/chromedp"
)

// apacheModuleDirs are where distributions install Apache's modules:
// Debian and Ubuntu, then Fedora and RHEL.
var apacheModuleDirs = []string{"/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"}

// apacheConf is a whole Apache configuration: no distribution file is
// read, so the test runs the same on any machine with the binary and the
// modules. mod_auth_openidc's settings are what its README puts in front
// of an OpenID Provider, plus PKCE (latch requires it) and what the test
// checks: the refresh token passed on (OIDCPassRefreshToken), and the
// refresh and logout requests on the redirect URI. The application is
// the test's upstream behind mod_proxy, as a protected app usually is.
const apacheConf = `ServerRoot "{{.Dir}}"
ServerName 127.0.0.1
Listen 127.0.0.1:{{.Port}}
PidFile "{{.Dir}}/httpd.pid"
DefaultRuntimeDir "{{.Dir}}"
ErrorLog "{{.Dir}}/error.log"
LogLevel warn auth_openidc:info
{{if .User}}User {{.User}}
Group {{.Group}}
{{end}}
LoadModule mpm_event_module {{.Modules}}/mod_mpm_event.so
LoadModule authn_core_module {{.Modules}}/mod_authn_core.so
LoadModule authz_core_module {{.Modules}}/mod_authz_core.so
LoadModule authz_user_module {{.Modules}}/mod_authz_user.so
LoadModule proxy_module {{.Modules}}/mod_proxy.so
LoadModule proxy_http_module {{.Modules}}/mod_proxy_http.so
LoadModule auth_openidc_module {{.Modules}}/mod_auth_openidc.so

StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16

OIDCProviderMetadataURL {{.Issuer}}/.well-known/openid-configuration
OIDCClientID {{.ClientID}}
OIDCClientSecret {{.ClientSecret}}
OIDCRedirectURI http://127.0.0.1:{{.Port}}/app/redirect_uri
OIDCCryptoPassphrase {{.Passphrase}}
OIDCScope "{{.Scope}}"
OIDCPKCEMethod S256
OIDCDefaultLoggedOutURL http://127.0.0.1:{{.Port}}/loggedout

<Location /app>
  AuthType openid-connect
  Require valid-user
  OIDCPassRefreshToken On
</Location>

ProxyPass /app/redirect_uri !
ProxyPass /app {{.Upstream}}/app
ProxyPass /loggedout {{.Upstream}}/loggedout
`

// apacheRP is a running Apache with mod_auth_openidc.
type apacheRP struct {
	URL string
	dir string
}

// errorLog is Apache's error log, for failure messages.
func (a *apacheRP) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "error.log"))
	return string(b)
}

// findApache returns the Apache binary and its modules directory, or
// skips (fails with LATCH_TEST_APACHE set) when either or
// mod_auth_openidc is missing.
func findApache(t *testing.T) (bin, modules string) {
	t.Helper()
	const install = "install Apache and mod_auth_openidc (Debian: apt-get install apache2 libapache2-mod-auth-openidc)"
	for _, name := range []string{"apache2", "/usr/sbin/apache2", "httpd", "/usr/sbin/httpd"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		rpToolUnavailable(t, "LATCH_TEST_APACHE", "apache2 (or httpd) is not on PATH nor in /usr/sbin; %s", install)
	}
	for _, dir := range apacheModuleDirs {
		if _, err := os.Stat(filepath.Join(dir, "mod_auth_openidc.so")); err == nil {
			return bin, dir
		}
	}
	rpToolUnavailable(t, "LATCH_TEST_APACHE", "mod_auth_openidc.so is in none of %s; %s", strings.Join(apacheModuleDirs, ", "), install)
	return "", ""
}

// apacheSettings fill apacheConf.
type apacheSettings struct {
	Dir, Modules, User, Group string
	Port                      int
	Issuer                    string
	ClientID, ClientSecret    string
	Passphrase                string
	Scope                     string
	Upstream                  string
}

// startApache runs Apache in the foreground with the configuration s (Dir
// and Port are filled in here) until the test ends.
func startApache(t *testing.T, bin string, port int, s apacheSettings) *apacheRP {
	t.Helper()
	s.Dir, s.Port = t.TempDir(), port
	if os.Geteuid() == 0 {
		// Apache started as root serves as another user; nobody needs
		// nothing from the directory once the parent has opened its
		// files.
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root, Apache needs a user to serve as: %v", err)
		}
		g, err := user.LookupGroupId(nobody.Gid)
		if err != nil {
			t.Fatalf("group of nobody: %v", err)
		}
		s.User, s.Group = nobody.Username, g.Name
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("httpd.conf").Parse(apacheConf)).Execute(&conf, s); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(s.Dir, "httpd.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &apacheRP{URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: s.Dir}
	if out, err := exec.Command(bin, "-t", "-f", confPath).CombinedOutput(); err != nil {
		t.Fatalf("apache2 -t refuses the configuration: %v\n%s\n%s", err, out, conf.String())
	}
	cmd := exec.Command(bin, "-f", confPath, "-DFOREGROUND")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start apache: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	// SIGTERM stops Apache and its children at once.
	t.Cleanup(func() { stopProcess(t, "apache", cmd, done) })
	// Ready when it answers; a hang guard, not a timing assertion.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("apache exited at start:\n%s\n%s", out, a.errorLog())
		default:
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apache did not listen on %d within 30s:\n%s\n%s", port, out, a.errorLog())
		}
	}
	return a
}

// oidcHeader returns the value mod_auth_openidc passed in the header
// named name (it names them OIDC_CLAIM_<claim>, OIDC_access_token, ...,
// which Go's header map stores under another case).
func oidcHeader(h http.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// TestInterop_ModAuthOpenIDC_LoginRefreshLogout runs Apache with Debian's
// mod_auth_openidc in front of a test upstream, against a real latch, and
// drives it in headless Chromium: the protected page sends the browser to
// latch, the user signs in, and the upstream receives the user's claims;
// then mod_auth_openidc's refresh request rotates the refresh token at
// latch, and its logout request revokes the tokens and ends the latch
// session through RP-initiated logout.
func TestInterop_ModAuthOpenIDC_LoginRefreshLogout(t *testing.T) {
	bin, modules := findApache(t)
	br := newRPBrowser(t)

	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	alice := createRPAlice(t, dataDir)
	up := newUpstream(t)

	// The redirect URI is registered before Apache starts, so its port is
	// chosen first.
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := createClient(t, dataDir, "--name", "Apache", "--grant", "authorization_code,refresh_token",
		"--redirect-uri", base+"/app/redirect_uri", "--redirect-uri", base+"/loggedout",
		"--scope", "openid", "--audience", "app")
	ap := startApache(t, bin, port, apacheSettings{
		Modules: modules, Issuer: p.Issuer, ClientID: c.ID, ClientSecret: c.Secret,
		Passphrase: randomHex(t), Scope: "openid email profile",
		Upstream: up.URL,
	})
	diag := func() string {
		return "apache error.log:\n" + ap.errorLog() + "latch stderr:\n" + p.Stderr.String()
	}

	// Login.
	loc := br.signIn(ap.URL+"/app/page", p.Issuer, alice.Username, alice.Password, diag)
	if loc != ap.URL+"/app/page" {
		t.Fatalf("after login the browser is at %s, want %s/app/page\n%s", loc, ap.URL, diag())
	}
	got := up.last(t, "/app/page").Header
	if sub := oidcHeader(got, "OIDC_CLAIM_sub"); sub != alice.ID {
		t.Fatalf("the upstream got OIDC_CLAIM_sub %q, want alice's %s; headers:\n%s", sub, alice.ID, headerDump(got))
	}
	for claim, want := range map[string]string{
		"email":              alice.Email,
		"email_verified":     "1",
		"name":               alice.Name,
		"preferred_username": alice.Username,
		"groups":             strings.Join(alice.Groups, ","),
	} {
		if v := oidcHeader(got, "OIDC_CLAIM_"+claim); v != want {
			t.Errorf("the upstream got OIDC_CLAIM_%s %q, want %q", claim, v, want)
		}
	}
	if t.Failed() {
		t.Fatalf("headers the upstream received:\n%s", headerDump(got))
	}
	at1, rt1 := oidcHeader(got, "OIDC_access_token"), oidcHeader(got, "OIDC_refresh_token")
	if at1 == "" || rt1 == "" {
		t.Fatalf("the upstream got no OIDC_access_token or OIDC_refresh_token; headers:\n%s", headerDump(got))
	}
	// A client registered for openid alone gets the standard scopes it
	// asks for.
	if in := introspect(t, p, c, at1); in["active"] != true || in["sub"] != alice.ID || in["client_id"] != c.ID ||
		!sameScopes(in["scope"], "openid email profile") {
		t.Fatalf("introspection of the access token Apache holds: %v", in)
	}

	// Refresh: mod_auth_openidc's refresh request on its redirect URI,
	// which it guards by asking for the session's current access token.
	refresh := ap.URL + "/app/redirect_uri?" + url.Values{"refresh": {ap.URL + "/app/refreshed"}, "access_token": {at1}}.Encode()
	br.run("mod_auth_openidc's refresh request", diag,
		chromedp.Navigate(refresh),
		chromedp.WaitVisible(`//p[@id="upstream" and text()="/app/refreshed"]`, chromedp.BySearch),
	)
	got = up.last(t, "/app/refreshed").Header
	at2, rt2 := oidcHeader(got, "OIDC_access_token"), oidcHeader(got, "OIDC_refresh_token")
	if at2 == "" || at2 == at1 || rt2 == "" || rt2 == rt1 {
		t.Fatalf("after the refresh request the upstream got the same or no tokens (access changed: %v, refresh changed: %v)\n%s",
			at2 != at1, rt2 != rt1, diag())
	}
	if in := introspect(t, p, c, rt2); in["active"] != true || in["sub"] != alice.ID {
		t.Fatalf("introspection of the refresh token Apache got on refresh: %v", in)
	}

	// Logout: mod_auth_openidc revokes its tokens at latch (the
	// discovered revocation_endpoint) and sends the browser to latch's
	// end_session_endpoint with its id_token_hint, which ends the latch
	// session and comes back to the post-logout page.
	br.run("mod_auth_openidc's logout request", diag,
		chromedp.Navigate(ap.URL+"/app/redirect_uri?logout="+url.QueryEscape(ap.URL+"/loggedout")),
		chromedp.WaitVisible(`//p[@id="upstream" and text()="/loggedout"]`, chromedp.BySearch),
	)
	if got := up.last(t, "/loggedout").Header; oidcHeader(got, "OIDC_CLAIM_sub") != "" {
		t.Errorf("the post-logout page got claims; headers:\n%s", headerDump(got))
	}
	for name, tok := range map[string]string{"refresh token": rt2, "refresh token before the refresh": rt1, "access token": at2} {
		if in := introspect(t, p, c, tok); in["active"] != false {
			t.Errorf("the %s Apache held is still active after logout: %v", name, in)
		}
	}
	// The latch session ended too: the protected page asks for the
	// password again instead of signing alice straight back in.
	br.run("the protected page after logout", diag,
		chromedp.Navigate(ap.URL+"/app/page"),
		chromedp.WaitVisible("#password", chromedp.ByID),
	)
	if loc := br.location(diag); !strings.HasPrefix(loc, p.Issuer+"/") {
		t.Fatalf("after logout the protected page led to %s, want latch's login form", loc)
	}
}

// randomHex is a fresh secret for a test's configuration.
func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// sameScopes reports whether scope, a space-separated list from a JSON
// answer, holds exactly the scopes of want, in any order.
func sameScopes(scope any, want string) bool {
	got, _ := scope.(string)
	g, w := strings.Fields(got), strings.Fields(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
