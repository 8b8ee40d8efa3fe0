package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/latchtest"
)

// latchBin is the real latch binary, built once by TestMain, so black-box
// tests run exactly what a user runs.
var latchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "latch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	latchBin = filepath.Join(dir, "latch")
	if out, err := exec.Command("go", "build", "-o", latchBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build latch: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a child process's output while a test reads it.
type syncBuffer = latchtest.LockedBuffer

// latchProc is a running `latch serve`.
type latchProc struct {
	cmd     *exec.Cmd
	Addr    string
	Issuer  string
	DataDir string
	Stdout  *syncBuffer
	Stderr  *syncBuffer
	done    chan struct{}
}

// startLatch runs `latch serve --dev` on a free loopback port over dataDir
// and waits until it logs its address. The process is stopped at cleanup.
func startLatch(t testing.TB, dataDir string, extra ...string) *latchProc {
	t.Helper()
	args := append([]string{"serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"}, extra...)
	p := &latchProc{cmd: exec.Command(latchBin, args...), DataDir: dataDir, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout = p.Stdout
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start latch: %v", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.Stderr.Write([]byte(line + "\n"))
			var rec struct {
				Msg    string `json:"msg"`
				Addr   string `json:"addr"`
				Issuer string `json:"issuer"`
			}
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "latch listening" {
				p.Issuer = rec.Issuer
				addrc <- rec.Addr
				sent = true
			}
		}
	}()
	go func() {
		p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	select {
	case p.Addr = <-addrc:
	case <-p.done:
		t.Fatalf("latch exited before listening:\nstdout: %s\nstderr: %s", p.Stdout, p.Stderr)
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("latch did not start within 30s:\n%s", p.Stderr)
	}
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop ends the process with SIGTERM (a graceful shutdown), or SIGKILL if it
// does not exit in 10s.
func (p *latchProc) Stop(t testing.TB) { stopProcess(t, "latch", p.cmd, p.done) }

// stopProcess ends cmd, started by the test, with SIGTERM (a graceful
// shutdown), or SIGKILL and a test error if it has not exited in 10s;
// done is closed when cmd has exited. A process that exited already is
// left as it is.
func stopProcess(t testing.TB, name string, cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM within 10s", name)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *latchProc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// DevSecret returns the dev client's secret that serve --dev prints on its
// first start. stdout is copied by another goroutine, so it may trail the
// "listening" log line by a moment.
func (p *latchProc) DevSecret(t testing.TB) string {
	t.Helper()
	re := regexp.MustCompile(`client_secret:\s+(\S+)`)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.Stdout.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("dev client secret not printed:\n%s", p.Stdout)
	return ""
}

// URL returns the absolute URL of path on the server.
func (p *latchProc) URL(path string) string { return p.Issuer + path }

// cleanEnv is the environment for child processes without LATCH_ settings
// of the developer's shell leaking into tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// runCLI runs the latch binary with args and returns stdout; it fails the
// test on a non-zero exit.
func runCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := runCLICode(t, nil, args...)
	if code != 0 {
		t.Fatalf("latch %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// runCLICode runs the latch binary and returns stdout, stderr and the exit code.
func runCLICode(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(latchBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run latch: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// testClient is a client registered through the CLI.
type testClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func createClient(t testing.TB, dataDir string, args ...string) testClient {
	t.Helper()
	out := runCLI(t, append([]string{"client", "create", "--data-dir", dataDir, "--json"}, args...)...)
	var c testClient
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create output %q: %v", out, err)
	}
	return c
}

// postForm posts an OAuth form with client_secret_basic authentication.
func postForm(t testing.TB, hc *http.Client, u string, c testClient, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ID != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// issueToken runs client_credentials and returns the access token.
func issueToken(t testing.TB, p *latchProc, c testClient, form url.Values) string {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/token"), c, form)
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", body, err)
	}
	return tr.AccessToken
}

// introspect returns the introspection answer for tok as a map.
func introspect(t testing.TB, p *latchProc, c testClient, tok string) map[string]any {
	t.Helper()
	code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/introspect"), c, url.Values{"token": {tok}})
	if code != 200 {
		t.Fatalf("introspect: %d %s", code, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("introspect body %s: %v", body, err)
	}
	return m
}

// migratedDir returns a new data directory with an empty, current
// database, as `latch migrate` leaves it: the operator commands refuse a
// directory without one.
func migratedDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	runCLI(t, "migrate", "--data-dir", dir)
	return dir
}
