package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/server"
)

type clock = latchtest.Clock
type lockedBuffer = latchtest.LockedBuffer

// issuer is a real latch authorization server on loopback.
type issuer struct {
	t       testing.TB
	URL     string
	srv     *httptest.Server
	clients *registry.Clients
	clock   *clock
	// exchanges counts token-exchange requests.
	exchanges atomic.Int64
}

type creds struct{ ID, Secret string }

func newIssuer(t testing.TB, mutate ...func(*server.Config)) *issuer {
	t.Helper()
	db := latchtest.Store(t)
	clk := latchtest.NewClock(time.Now().Truncate(time.Second))
	km := latchtest.Keys(t, db, clk.Now)
	is := &issuer{t: t, clients: &registry.Clients{Store: db, Now: clk.Now}, clock: clk}
	is.srv = httptest.NewUnstartedServer(nil)
	is.URL = "http://" + is.srv.Listener.Addr().String()
	cfg := server.Config{Issuer: is.URL, InsecureAllowHTTP: true, Store: db, Keys: km, Now: clk.Now, ClientCacheTTL: -1}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" && r.ParseForm() == nil && r.PostForm.Get("grant_type") == latch.GrantTokenExchange {
			is.exchanges.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	is.srv.Start()
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) client(spec registry.ClientSpec) creds {
	is.t.Helper()
	v, err := is.clients.Create(context.Background(), spec)
	if err != nil {
		is.t.Fatalf("create client: %v", err)
	}
	return creds{v.ID, v.Secret}
}

// post sends an OAuth form with client_secret_basic.
func (is *issuer) post(path string, c creds, form url.Values) (int, map[string]any) {
	is.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, is.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		is.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func (is *issuer) token(c creds, form url.Values) string {
	is.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	code, m := is.post("/oauth2/token", c, form)
	tok, _ := m["access_token"].(string)
	if code != 200 || tok == "" {
		is.t.Fatalf("token: %d %v", code, m)
	}
	return tok
}

func (is *issuer) revoke(c creds, tok string) {
	is.t.Helper()
	if code, m := is.post("/oauth2/revoke", c, url.Values{"token": {tok}}); code != 200 {
		is.t.Fatalf("revoke: %d %v", code, m)
	}
}

// seen is what the upstream received.
type seen struct {
	Method, Path, Query, Host string
	Header                    http.Header
	URI                       string // the request target as received
}

// upstream records the requests it gets and answers 200 "upstream".
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Clone(), r.RequestURI})
		u.mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t testing.TB) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// setup is an issuer, an opaque-token client for audience "api", a gateway
// client registered for token exchange in front of "api", an upstream and
// a gateway to it.
type setup struct {
	is    *issuer
	owner creds
	gwc   creds
	up    *upstream
	gw    *gateway.Gateway
	cfg   gateway.Config
}

func newSetup(t testing.TB, mutate ...func(*gateway.Config)) *setup {
	t.Helper()
	is := newIssuer(t)
	s := &setup{
		is:    is,
		owner: is.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api"}, AccessTokenFormat: "opaque"}),
		gwc:   is.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{latch.GrantTokenExchange}, Audiences: []string{"api"}}),
		up:    newUpstream(t),
	}
	u, _ := url.Parse(s.up.URL)
	s.cfg = gateway.Config{Issuer: is.URL, ClientID: s.gwc.ID, ClientSecret: s.gwc.Secret, Upstream: u,
		InsecureAllowHTTP: true, Now: is.clock.Now}
	for _, m := range mutate {
		m(&s.cfg)
	}
	gw, err := gateway.New(context.Background(), s.cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	s.gw = gw
	return s
}

// do sends a request through the gateway with the given Authorization.
func (s *setup) do(auth string, mutate ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/v1/things?x=1", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, m := range mutate {
		m(r)
	}
	w := httptest.NewRecorder()
	s.gw.ServeHTTP(w, r)
	return w
}

// claims decodes a JWT's payload without verifying it.
func claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
