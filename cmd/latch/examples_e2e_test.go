//go:build unix

package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"
)

// helpExamples returns every command line shown in the --help of every
// command: the Example section, and the indented `latch ...` lines of the
// long description. Lines ending in a backslash are joined, as a shell does.
func helpExamples(root *cobra.Command) []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, text := range []string{c.Long, c.Example} {
			var cur string
			for _, line := range strings.Split(text, "\n") {
				if !strings.HasPrefix(line, "  ") && cur == "" {
					continue
				}
				line = strings.TrimSpace(line)
				if cur == "" && (strings.HasPrefix(line, "#") || !strings.Contains(line, "latch ")) {
					continue
				}
				if strings.HasSuffix(line, `\`) {
					cur += strings.TrimSuffix(line, `\`)
					continue
				}
				out = append(out, cur+line)
				cur = ""
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// example is one --help command line and how the test runs it.
type example struct {
	cmd    string
	stdin  string
	server string // a long-running command: wait for this log message, then stop it
	after  func(t *testing.T, stdout string)
}

// TestHelpExamples_RunAsWritten runs every command line of every --help,
// in order, as a user would paste them into a shell next to `latch serve
// --dev`: with `latch` on PATH, in a directory holding the files they name,
// and the variables they read set. Only the documented addresses are
// replaced by the ports this test got (127.0.0.1:8080 by the dev server's,
// 127.0.0.1:8082 by a free one for the BFF) and a "..." secret by the one
// printed just before. An example added to --help without a line here
// fails the test: every example is run.
func TestHelpExamples_RunAsWritten(t *testing.T) {
	dataDir := t.TempDir()
	p := startLatch(t, dataDir)
	work := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "examples"), filepath.Join(work, "examples")); err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(work, "api-enc.pub.jwk"), jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "api-enc-1", Use: "enc", Algorithm: string(jose.ECDH_ES_A256KW)})
	bffAddr := freeAddr(t)
	vars := map[string]string{"PASSWORD": "correct horse battery staple"}
	var secret string // the last client_secret printed
	secretRE := regexp.MustCompile(`client_secret:\s+(\S+)`)
	captureSecret := func(t *testing.T, out string) {
		m := secretRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no client_secret in %q", out)
		}
		secret = m[1]
	}
	writeVar := func(name, file string) func(*testing.T, string) {
		return func(t *testing.T, out string) {
			vars[name] = strings.TrimSpace(out)
			if file != "" {
				if err := os.WriteFile(filepath.Join(work, file), []byte(vars[name]+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	examples := []example{
		{cmd: `latch client create --id billing --name Billing --scope "read write" --audience https://api.example.com`},
		{cmd: `latch client create --format opaque --access-token-ttl 5m --audience api`},
		{cmd: `latch client create --audience api --encrypt-to api-enc.pub.jwk`},
		{cmd: `latch client update billing --audience https://api.example.com`},
		{cmd: `latch client update billing --scope "read write" --access-token-ttl 5m`},
		{cmd: `TOKEN=$(latch token issue --client billing --scope read)`, after: writeVar("TOKEN", "token.txt")},
		{cmd: `latch token issue --client dev --audience dev-api --ttl 1m --json`},
		{cmd: `printf '%s\n' "$TOKEN" | latch token inspect`},
		{cmd: `latch token inspect --json < token.txt`},
		{cmd: `printf '%s\n' "$LEAKED" | latch token revoke`},
		{cmd: `latch token revoke --json - < leaked.txt`},
		{cmd: `printf '%s\n' "$TOKEN" | latch token revoke`},
		{cmd: `latch user create alice --role admin --group eng        # prompts for the password`, stdin: vars["PASSWORD"] + "\n"},
		{cmd: `printf '%s\n' "$PASSWORD" | latch user create bob --password-stdin`},
		{cmd: `latch user set-roles alice --role admin,ops`},
		{cmd: `latch user set-roles alice --group=`},
		{cmd: `latch user create carol --email carol@example.com --email-verified --name "Carol Danvers"`, stdin: vars["PASSWORD"] + "\n"},
		{cmd: `latch user set-profile alice --email alice@example.com --email-verified --name "Alice Liddell"`},
		{cmd: `latch user set-profile alice --picture=`},
		{cmd: `latch revoke --subject alice`},
		{cmd: `latch backup --to latch-backup.db`},
		{cmd: `latch restore --from latch-backup.db --data-dir restored`},
		{cmd: `latch client create --id app --name "My app" --first-party --grant authorization_code,refresh_token --redirect-uri https://app.example.com/bff/callback --scope "openid profile email read" --audience api`},
		{cmd: `latch client create --id spa --first-party --grant authorization_code,refresh_token --redirect-uri http://127.0.0.1:8082/bff/callback --scope "openid profile read" --audience api`, after: captureSecret},
		{cmd: `LATCH_BFF_CLIENT_SECRET=... latch bff --dev --issuer http://127.0.0.1:8080 --client-id spa --scope "openid profile read" --upstream http://127.0.0.1:9000 --static examples/spa`, server: "latch bff listening"},
		{cmd: `latch client create --id gateway --audience api --grant urn:ietf:params:oauth:grant-type:token-exchange`, after: captureSecret},
		{cmd: `LATCH_CLIENT_SECRET=... latch gateway --issuer http://127.0.0.1:8080 --insecure-allow-http --client-id gateway --upstream http://127.0.0.1:9000`, server: "latch gateway listening"},
	}
	shown := helpExamples(newRoot(&env{getenv: func(string) string { return "" }}))
	var listed []string
	for _, ex := range examples {
		listed = append(listed, ex.cmd)
	}
	for _, cmd := range shown {
		if !slices.Contains(listed, cmd) {
			t.Errorf("--help shows an example this test does not run:\n%s", cmd)
		}
	}
	for _, cmd := range listed {
		if !slices.Contains(shown, cmd) {
			t.Errorf("this test runs an example --help no longer shows:\n%s", cmd)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A leaked token for the revoke examples.
	leaked := runCLI(t, "token", "issue", "--data-dir", dataDir, "--client", "dev")
	writeVar("LEAKED", "leaked.txt")(t, leaked)

	for _, ex := range examples {
		cmd := strings.NewReplacer("127.0.0.1:8080", p.Addr, "127.0.0.1:8082", bffAddr, "=... ", "="+secret+" ").Replace(ex.cmd)
		script := cmd
		if strings.HasPrefix(cmd, "TOKEN=") {
			script += `; printf '%s' "$TOKEN"`
		}
		sh := exec.Command("sh", "-c", script)
		sh.Dir = work
		sh.Env = append(cleanEnv(), "PATH="+filepath.Dir(latchBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "LATCH_DATA_DIR="+dataDir)
		for k, v := range vars {
			sh.Env = append(sh.Env, k+"="+v)
		}
		if ex.server != "" {
			sh.Env = append(sh.Env, "LATCH_LISTEN="+bffAddr)
			runExampleServer(t, sh, ex.server)
			if strings.Contains(cmd, "latch bff") {
				checkBFFLogin(t, "http://"+bffAddr, p.Issuer)
			}
			stopExampleServer(t, sh)
			continue
		}
		sh.Stdin = strings.NewReader(ex.stdin)
		var stdout, stderr strings.Builder
		sh.Stdout, sh.Stderr = &stdout, &stderr
		if err := sh.Run(); err != nil {
			t.Fatalf("%s\n%v\nstdout: %s\nstderr: %s", ex.cmd, err, stdout.String(), stderr.String())
		}
		if ex.after != nil {
			ex.after(t, stdout.String())
		}
	}
}

// runExampleServer starts sh and waits for msg in its log.
func runExampleServer(t *testing.T, sh *exec.Cmd, msg string) {
	t.Helper()
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	sh.Stderr = pw
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopExampleServer(t, sh) })
	found := make(chan bool, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), msg) {
				found <- true
				sent = true
			}
		}
		if !sent {
			found <- false
		}
	}()
	go func() { sh.Wait(); pw.Close() }()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("%s exited before %q:\n%s", sh.Args, msg, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not log %q within 30s", sh.Args, msg)
	}
}

func stopExampleServer(t *testing.T, sh *exec.Cmd) {
	if sh.Process != nil && sh.ProcessState == nil {
		syscall.Kill(-sh.Process.Pid, syscall.SIGTERM)
		for deadline := time.Now().Add(10 * time.Second); sh.ProcessState == nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkBFFLogin follows /bff/login to the issuer's authorization endpoint,
// which must answer with its login page: the client, its redirect URI and
// the scopes the BFF asks for are all registered.
func checkBFFLogin(t *testing.T, bff, issuer string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(bff + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, issuer+"/oauth2/authorize?") {
		t.Fatalf("/bff/login: %d to %q", resp.StatusCode, loc)
	}
	for i := 0; i < 5; i++ {
		resp, err = hc.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if !strings.Contains(string(body), "password") {
				t.Fatalf("the authorization request ends on a page without a login form:\n%s", body)
			}
			return
		}
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the BFF's authorization request: %d\n%s", resp.StatusCode, body)
		}
		next, err := resp.Location()
		if err != nil || !strings.HasPrefix(next.String(), issuer) {
			t.Fatalf("the BFF's authorization request is redirected to %v (%v): an error for its client", next, err)
		}
		loc = next.String()
	}
	t.Fatal("too many redirects")
}

// freeAddr returns a loopback address nothing listens on just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
