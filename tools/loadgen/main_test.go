package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/server"
)

// The tests drive the refresh and login modes against a real server
// (server.New on SQLite, over loopback HTTP). Runs are bounded by -n, not
// by time (-d is only a hang guard), so they do the same work however
// slow the machine is, and nothing about speed is asserted.

const testPassword = "loadgen test password 0123"

var cheap = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

type testServer struct {
	url          string
	id, secret   string // first-party client: password + refresh_token, scope "openid read"
	pwOnly       string // first-party client with the password grant only
	pwOnlySecret string
	pwFile       string
}

// newTestServer runs latch on 127.0.0.1 with refresh grace 0, so that a
// refresh token used twice (a loadgen that did not follow its chain)
// breaks the chain at once.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	db := latchtest.Store(t)
	km := latchtest.Keys(t, db, nil)
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	srv, err := server.New(server.Config{Issuer: issuer, InsecureAllowHTTP: true, Store: db, Keys: km,
		PasswordParams: cheap, RefreshGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)

	users := &registry.Users{Store: db, Params: cheap}
	if _, err := users.Create(ctx, registry.UserSpec{Username: "bob", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	clients := &registry.Clients{Store: db}
	full, err := clients.Create(ctx, registry.ClientSpec{GrantTypes: []string{"password", "refresh_token"},
		Scope: "openid read", Audiences: []string{"api"}, FirstParty: true})
	if err != nil {
		t.Fatal(err)
	}
	pwOnly, err := clients.Create(ctx, registry.ClientSpec{GrantTypes: []string{"password"},
		Scope: "read", Audiences: []string{"api"}, FirstParty: true})
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testServer{url: ts.URL, id: full.ID, secret: full.Secret, pwOnly: pwOnly.ID,
		pwOnlySecret: pwOnly.Secret, pwFile: pwFile}
}

func (s *testServer) opts(mode string, c int, n int64) options {
	return options{url: s.url, mode: mode, c: c, d: 2 * time.Minute, n: n, clientID: s.id, clientSecret: s.secret,
		scope: "read", format: "jwt", timeout: 30 * time.Second, username: "bob", passwordFile: s.pwFile}
}

func TestRun_Refresh_EveryChainRotates(t *testing.T) {
	s := newTestServer(t)
	for _, scope := range []string{"read", "openid read"} {
		o := s.opts("refresh", 3, 30)
		o.scope = scope
		res, err := run(o)
		if err != nil {
			t.Fatalf("scope %q: %v", scope, err)
		}
		// With grace 0, a token sent twice would be refused: 30 answers
		// without errors mean every request carried its chain's newest token
		// and every answer had an id_token exactly when openid was asked.
		if !res.OK || res.Requests != 30 || res.Errors != 0 || res.ChainsBroken != 0 || !res.StoppedByN {
			t.Fatalf("scope %q: %+v", scope, res)
		}
		if res.Scope != scope || res.URL != s.url+"/oauth2/token" {
			t.Fatalf("scope %q: result says scope %q, url %q", scope, res.Scope, res.URL)
		}
	}
}

func TestRefreshConn_ReusedTokenBreaksTheChain(t *testing.T) {
	s := newTestServer(t)
	o := s.opts("refresh", 1, 1)
	u, _ := url.Parse(s.url + "/oauth2/token")
	hc := &http.Client{Timeout: 30 * time.Second}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.id)+":"+url.QueryEscape(s.secret)))}}
	c, err := refreshConn(hc, u.String(), h, o, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	buf := new(bytes.Buffer)
	if kind, stop, body := do(hc, u.String(), c, buf); kind != "" || stop {
		t.Fatalf("first refresh: %q stop=%v %s", kind, stop, body)
	}
	// Someone else spends the chain's current token (as a second loadgen
	// on the same chain would): the connection's next refresh is a reuse.
	theft, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(c.next()))
	if err != nil {
		t.Fatal(err)
	}
	theft.Header = h.Clone()
	resp, err := hc.Do(theft)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("out-of-band refresh: %d", resp.StatusCode)
	}
	kind, stop, body := do(hc, u.String(), c, buf)
	if kind != "http_400_invalid_grant" || !stop {
		t.Fatalf("refresh with a spent token: kind %q stop=%v %s; want http_400_invalid_grant and stop", kind, stop, body)
	}
}

func TestRun_Refresh_SeedingFailsClearly(t *testing.T) {
	s := newTestServer(t)
	o := s.opts("refresh", 2, 10)
	o.clientID, o.clientSecret = s.pwOnly, s.pwOnlySecret
	if _, err := run(o); err == nil || !strings.Contains(err.Error(), "no_refresh_token") {
		t.Fatalf("client without the refresh_token grant: %v; want a no_refresh_token seeding error", err)
	}
	o = s.opts("refresh", 2, 10)
	o.passwordFile = filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(o.passwordFile, []byte("not the password at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(o); err == nil || !strings.Contains(err.Error(), "http_400_invalid_grant") {
		t.Fatalf("wrong password: %v; want http_400_invalid_grant", err)
	}
	o = s.opts("refresh", 2, 10)
	o.passwordFile = ""
	if _, err := run(o); err == nil || !strings.Contains(err.Error(), "-password-file") {
		t.Fatalf("no password file: %v", err)
	}
}

func TestRun_Login_EveryAnswerIsASession(t *testing.T) {
	s := newTestServer(t)
	o := s.opts("login", 2, 8)
	res, err := run(o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Requests != 8 || res.Errors != 0 || res.URL != s.url+"/login" {
		t.Fatalf("%+v", res)
	}
	// A wrong password is refused in the preflight with the server's
	// status, not measured as logins.
	o.passwordFile = filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(o.passwordFile, []byte("not the password at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(o); err == nil || !strings.Contains(err.Error(), "http_422") {
		t.Fatalf("wrong password: %v; want a preflight http_422", err)
	}
}
