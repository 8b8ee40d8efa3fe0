package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestServe_Login_OverDevHTTP logs in to the real `latch serve --dev` over
// http on loopback: the cookies keep their Secure and __Host- attributes
// (docs/login.md), and the login flags reach the server.
func TestServe_Login_OverDevHTTP(t *testing.T) {
	dir := t.TempDir()
	runCLI(t, "migrate", "--data-dir", dir)
	if _, errOut, code := runCLIStdin(t, "correct horse battery\n", "user", "create", "alice", "--password-stdin", "--data-dir", dir); code != 0 {
		t.Fatalf("user create: exit %d: %s", code, errOut)
	}
	p := startLatch(t, dir, "--login-account-threshold", "2", "--session-idle-timeout", "5m")
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookies := map[string]string{}
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, p.URL(path), body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", p.Issuer)
		}
		for k, v := range cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				delete(cookies, c.Name)
			} else {
				cookies[c.Name] = c.Value
			}
		}
		return resp, string(b)
	}
	token := func() string {
		t.Helper()
		resp, body := do("GET", "/login?prompt=login", nil)
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("GET /login: %d\n%s", resp.StatusCode, body)
		}
		return m[1]
	}

	resp, body := do("POST", "/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "csrf_token": {token()}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var set string
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "__Host-latch_session=") {
			set = h
		}
	}
	if !strings.HasSuffix(set, "; Path=/; HttpOnly; Secure; SameSite=Lax") {
		t.Fatalf("session cookie over --dev http: %q, want the same attributes as over https", set)
	}
	if resp, body := do("GET", "/", nil); resp.StatusCode != 200 || !strings.Contains(body, `<strong id="username">alice</strong>`) {
		t.Fatalf("account page: %d\n%s", resp.StatusCode, body)
	}

	// --login-account-threshold 2: the second failure starts the back-off.
	tok := token()
	for i, want := range []int{422, 422, 429} {
		resp, _ := do("POST", "/login", url.Values{"username": {"alice"}, "password": {"wrong password"}, "csrf_token": {tok}})
		if resp.StatusCode != want {
			t.Fatalf("failure %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

func TestServe_LoginFlags_Refused(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"zero idle timeout", nil, []string{"--session-idle-timeout", "0s"}, "--session-idle-timeout"},
		{"idle above max age", nil, []string{"--session-idle-timeout", "13h"}, "exceeds SessionMaxAge"},
		{"zero threshold from the environment", []string{"LATCH_LOGIN_ACCOUNT_THRESHOLD=0"}, nil, "--login-account-threshold"},
		{"tiny back-off cap", nil, []string{"--login-backoff-max", "10ms"}, "--login-backoff-max"},
		{"negative concurrency", nil, []string{"--max-concurrent-logins", "-1"}, "--max-concurrent-logins"},
		{"bad proxy", nil, []string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, `"proxy.example"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
			_, errOut, code := runCLICode(t, tc.env, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and a message with %s", code, errOut, tc.want)
			}
		})
	}
}
