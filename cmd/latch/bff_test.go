package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port that was free a moment ago. The BFF's
// redirect URI must be registered before it starts, so its port is chosen
// first; startBFF retries when another process took it meanwhile.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bffAgent is a browser stand-in: a cookie jar, which like browsers sends
// Secure cookies to loopback over http.
type bffAgent struct {
	t      testing.TB
	hc     *http.Client
	issuer string
	bff    string
}

func newBFFAgent(t testing.TB, issuer, bff string) *bffAgent {
	jar, _ := cookiejar.New(nil)
	return &bffAgent{t: t, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}, issuer: issuer, bff: bff}
}

var formField = regexp.MustCompile(`name="(csrf_token|return_to)" value="([^"]*)"`)

// login runs /bff/login, the server's login form (unless the browser is
// still signed in there) and the callback, and returns the page the
// browser lands on.
func (a *bffAgent) login(username, pw string) string {
	t := a.t
	t.Helper()
	resp, err := a.hc.Get(a.bff + "/bff/login?return_to=/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 && resp.Request.URL.String() == a.bff+"/" {
		return string(body) // still signed in at the server: no password asked
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), a.issuer+"/login") {
		t.Fatalf("/bff/login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	form := url.Values{"username": {username}, "password": {pw}}
	for _, m := range formField.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	req, _ := http.NewRequest(http.MethodPost, a.issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.issuer)
	resp, err = a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.String() != a.bff+"/" {
		t.Fatalf("login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	return string(body)
}

// call sends a request as the SPA's fetch would and decodes the JSON answer.
func (a *bffAgent) call(method, path string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.bff+path, nil)
	if method != http.MethodGet {
		req.Header.Set("X-Latch-CSRF", "1")
		req.Header.Set("Origin", a.bff)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// startBFF runs `latch bff --dev` on a free loopback port, registering
// the client for that port's callback first (the redirect URI must be
// registered before the BFF starts, since it follows the revocation feed
// with that client from the start). If another process took the port in
// between, it tries again with another.
func startBFF(t *testing.T, p *latchProc, apiAddr, dataDir string) *proc {
	t.Helper()
	return startBFFWith(t, p, apiAddr, dataDir, nil, nil)
}

// startBFFWith is startBFF with more arguments for `latch client create`
// and for `latch bff`.
func startBFFWith(t *testing.T, p *latchProc, apiAddr, dataDir string, clientArgs, bffArgs []string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		c := createClient(t, p.DataDir, append([]string{"--name", "spa", "--first-party", "--grant", "authorization_code,refresh_token",
			"--redirect-uri", fmt.Sprintf("http://127.0.0.1:%d/bff/callback", port), "--scope", "openid profile read", "--audience", "api"}, clientArgs...)...)
		cmd := exec.Command(latchBin, append([]string{"bff", "--dev", "--issuer", p.Issuer, "--client-id", c.ID, "--upstream", "http://" + apiAddr,
			"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--static", "../../examples/spa",
			"--scope", "openid,profile,read", "--data-dir", dataDir, "--log-format", "json"}, bffArgs...)...)
		cmd.Env = append(cleanEnv(), "LATCH_BFF_CLIENT_SECRET="+c.Secret)
		pr := &proc{cmd: cmd, Stderr: &syncBuffer{}, done: make(chan struct{}), Addr: fmt.Sprintf("127.0.0.1:%d", port)}
		cmd.Stdout, cmd.Stderr = pr.Stderr, pr.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { cmd.Wait(); close(pr.done) }()
		t.Cleanup(func() {
			select {
			case <-pr.done:
			default:
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-pr.done:
				case <-time.After(10 * time.Second):
					cmd.Process.Kill()
					<-pr.done
				}
			}
		})
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if strings.Contains(pr.Stderr.String(), "latch bff listening") {
				return pr
			}
			select {
			case <-pr.done:
				if strings.Contains(pr.Stderr.String(), "address already in use") && attempt < 5 {
					break
				}
				t.Fatalf("latch bff exited:\n%s", pr.Stderr)
			default:
				if time.Now().After(deadline) {
					t.Fatalf("latch bff did not start within 30s:\n%s", pr.Stderr)
				}
				continue
			}
			break
		}
	}
}

// TestBFF_EndToEnd runs the real programs: latch serve, examples/api and
// latch bff serving examples/spa. A user logs in through the BFF, calls the
// API, logs out; logs in again and is signed out everywhere with `latch
// revoke --subject`, which the BFF learns through the revocation feed.
func TestBFF_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	if _, errOut, code := runCLIStdin(t, "correct horse battery staple\n", "user", "create", "alice", "--password-stdin", "--data-dir", dir); code != 0 {
		t.Fatalf("user create: %d %s", code, errOut)
	}
	api := startProc(t, "listening", nil, buildExampleAPI(t),
		"--issuer", p.Issuer, "--audience", "api", "--listen", "127.0.0.1:0", "--insecure-allow-http")
	bffDir := filepath.Join(t.TempDir(), "bff")
	b := startBFF(t, p, api.Addr, bffDir)
	bffURL := "http://" + b.Addr

	// The session key was generated, private to its owner.
	fi, err := os.Stat(filepath.Join(bffDir, "bff.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bff.key: %v, mode %v; want 0600", err, fi)
	}

	a := newBFFAgent(t, p.Issuer, bffURL)
	if page := a.login("alice", "correct horse battery staple"); !strings.Contains(page, "latch BFF example") {
		t.Fatalf("landed on %q, want the example app", page)
	}
	if code, u := a.call("GET", "/bff/user"); code != 200 || u["preferred_username"] != "alice" {
		t.Fatalf("/bff/user: %d %v", code, u)
	}
	code, hello := a.call("GET", "/api/hello")
	if code != 200 || hello["sub"] == "" || hello["scope"] == nil {
		t.Fatalf("/api/hello: %d %v", code, hello)
	}
	if code, body := a.call("POST", "/bff/logout"); code != 200 || body["revoked"] != true {
		t.Fatalf("logout: %d %v", code, body)
	}
	if code, body := a.call("GET", "/api/hello"); code != 401 || body["error"] != "login_required" {
		t.Fatalf("after logout: %d %v", code, body)
	}

	// Sign out everywhere from the CLI: the next API call is 401
	// session_revoked (the hang guard is generous; the latency is in
	// BENCHMARKS.md).
	a.login("alice", "correct horse battery staple")
	if code, _ := a.call("GET", "/api/hello"); code != 200 {
		t.Fatalf("second login: %d", code)
	}
	runCLI(t, "revoke", "--subject", "alice", "--data-dir", dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := a.call("GET", "/api/hello")
		if code == 401 {
			if body["error"] != "session_revoked" {
				t.Fatalf("after revoke --subject: 401 %v, want session_revoked", body)
			}
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("after revoke --subject: %d %v", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBFF_DPoP_EndToEnd runs the real programs with DPoP: latch serve, a
// BFF client that requires DPoP, examples/api --dpop and latch bff --dpop.
// The user's API calls work through the BFF; the API received the token
// under the DPoP scheme; the BFF's key is kept in its store.
func TestBFF_DPoP_EndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := startLatch(t, dir)
	if _, errOut, code := runCLIStdin(t, "correct horse battery staple\n", "user", "create", "alice", "--password-stdin", "--data-dir", dir); code != 0 {
		t.Fatalf("user create: %d %s", code, errOut)
	}
	api := startProc(t, "listening", nil, buildExampleAPI(t),
		"--issuer", p.Issuer, "--audience", "api", "--listen", "127.0.0.1:0", "--insecure-allow-http", "--dpop")
	bffDir := filepath.Join(t.TempDir(), "bff")
	b := startBFFWith(t, p, api.Addr, bffDir, []string{"--dpop", "required"}, []string{"--dpop"})

	a := newBFFAgent(t, p.Issuer, "http://"+b.Addr)
	a.login("alice", "correct horse battery staple")
	for range 3 {
		if code, hello := a.call("GET", "/api/hello"); code != 200 || hello["sub"] == "" {
			t.Fatalf("/api/hello through latch bff --dpop: %d %v\nbff:\n%s\napi:\n%s", code, hello, b.Stderr, api.Stderr)
		}
	}
	jkt := loggedJKT(t, b)

	// A restart on the same data directory signs with the same key, and
	// the session goes on.
	b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.done
	cmd := exec.Command(b.cmd.Path, b.cmd.Args[1:]...)
	cmd.Env = b.cmd.Env
	again := &proc{cmd: cmd, Stderr: &syncBuffer{}, done: make(chan struct{}), Addr: b.Addr}
	cmd.Stdout, cmd.Stderr = again.Stderr, again.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(again.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-again.done
	})
	for !strings.Contains(again.Stderr.String(), "latch bff listening") {
		select {
		case <-again.done:
			t.Fatalf("latch bff exited at restart:\n%s", again.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if got := loggedJKT(t, again); got != jkt {
		t.Fatalf("after a restart the BFF's DPoP key is %s, want %s", got, jkt)
	}
	if code, hello := a.call("GET", "/api/hello"); code != 200 || hello["sub"] == "" {
		t.Fatalf("/api/hello after the restart: %d %v\nbff:\n%s", code, hello, again.Stderr)
	}
}

// loggedJKT returns the dpop_jkt of the BFF's "listening" log line.
func loggedJKT(t *testing.T, b *proc) string {
	t.Helper()
	for _, line := range strings.Split(b.Stderr.String(), "\n") {
		var rec struct {
			Msg  string
			DPoP bool   `json:"dpop"`
			JKT  string `json:"dpop_jkt"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "latch bff listening" {
			if !rec.DPoP || len(rec.JKT) != 43 {
				t.Fatalf("the BFF logs dpop %v dpop_jkt %q; want true and a thumbprint", rec.DPoP, rec.JKT)
			}
			return rec.JKT
		}
	}
	t.Fatalf("no listening line in the BFF's log:\n%s", b.Stderr)
	return ""
}

func TestBFF_RefusesBadInvocations(t *testing.T) {
	dir := t.TempDir()
	base := []string{"bff", "--issuer", "http://127.0.0.1:1", "--client-id", "spa", "--upstream", "http://127.0.0.1:2", "--data-dir", dir}
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no secret", nil, base, 2, "LATCH_BFF_CLIENT_SECRET"},
		{"no issuer", []string{"LATCH_BFF_CLIENT_SECRET=s"}, []string{"bff", "--client-id", "x", "--upstream", "http://a"}, 2, "--issuer is required"},
		{"no redirect without --dev", []string{"LATCH_BFF_CLIENT_SECRET=s"}, base, 2, "--redirect-url is required"},
		{"static is not a directory", []string{"LATCH_BFF_CLIENT_SECRET=s"}, append(base, "--dev", "--static", filepath.Join(dir, "nope")), 2, "not a directory"},
		{"static and spa-upstream", []string{"LATCH_BFF_CLIENT_SECRET=s"}, append(base, "--dev", "--static", dir, "--spa-upstream", "http://127.0.0.1:3"), 2, "exclusive"},
		{"dev off loopback", []string{"LATCH_BFF_CLIENT_SECRET=s"}, append(base, "--dev", "--listen", "0.0.0.0:0"), 2, "loopback"},
		{"redis without a shared key", []string{"LATCH_BFF_CLIENT_SECRET=s"}, append(base, "--dev", "--redis-url", "redis://127.0.0.1:1"), 1, "same key"},
		{"secret file readable by others", nil, append(base, "--dev", "--client-secret-file", worldReadable(t)), 1, "chmod 600"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLICode(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

func worldReadable(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBFFSecret_Precedence: --client-secret on the command line, then
// --client-secret-file, then LATCH_BFF_CLIENT_SECRET, then what
// applyConfig found (LATCH_CLIENT_SECRET or the config file).
func TestBFFSecret_Precedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envWith := func(v string) *env {
		return &env{getenv: func(k string) string {
			if k == "LATCH_BFF_CLIENT_SECRET" {
				return v
			}
			return ""
		}}
	}
	cases := []struct {
		name string
		e    *env
		g    bffFlags
		want string
	}{
		{"argv wins", envWith("from-env"), bffFlags{clientSecret: "from-argv", clientSecretFlag: true, clientSecretFile: file}, "from-argv"},
		{"file before env", envWith("from-env"), bffFlags{clientSecretFile: file}, "from-file"},
		{"env", envWith("from-env"), bffFlags{clientSecret: "from-config"}, "from-env"},
		{"config or LATCH_CLIENT_SECRET", envWith(""), bffFlags{clientSecret: "from-config"}, "from-config"},
	}
	for _, tc := range cases {
		got, err := bffSecret(tc.e, &tc.g)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
