package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/password"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/sqlite"
	"github.com/latch-auth/latch/verify"
)

// The end-to-end tests run the BFF against the real authorization server
// (server.New on a real SQLite store, over HTTP on 127.0.0.1), a real
// resource server (verify.New + Middleware) and, in browser_test.go, a
// real headless Chromium. Nothing of the authorization server is faked; the
// only instrument is a transport that counts the BFF's refresh requests on
// their way to the real token endpoint.

const (
	alicePassword = "correct horse battery staple"
	apiAudience   = "api"
)

// cheapParams keep password checks fast in tests (argon2id, 64 KiB).
var cheapParams = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// offsetClock is the BFF's clock: real time plus an offset a test moves,
// so that tokens issued by the real server look expired to the BFF.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// countingTransport counts the refresh_token grants the BFF sends to the
// real token endpoint, and passes every request on unchanged.
type countingTransport struct {
	next      http.RoundTripper
	refreshes atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/token") && r.Body != nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if form, _ := url.ParseQuery(string(body)); form.Get("grant_type") == "refresh_token" {
			c.refreshes.Add(1)
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return c.next.RoundTrip(r)
}

// e2e is an authorization server, a resource server and a BFF in front of
// it, all on loopback.
type e2e struct {
	t        testing.TB
	ctx      context.Context
	issuer   string
	srv      *server.Server
	db       *sqlite.DB
	users    *registry.Users
	client   *registry.ClientView
	apiURL   string
	bffURL   string
	b        *BFF
	clock    *offsetClock
	counter  *countingTransport
	deny     *verify.Denylist
	logs     *lockedBuffer
	apiMu    sync.Mutex
	apiToken []string // the access tokens the API accepted, in order
}

type e2eOptions struct {
	issuerHost string // default 127.0.0.1; the browser test uses localhost, another site
	bffHost    string // default 127.0.0.1
	store      Store  // default SQLite
	spaDir     string // default ../examples/spa
}

func newE2E(t testing.TB, o e2eOptions) *e2e {
	t.Helper()
	if o.issuerHost == "" {
		o.issuerHost = "127.0.0.1"
	}
	if o.bffHost == "" {
		o.bffHost = "127.0.0.1"
	}
	if o.spaDir == "" {
		o.spaDir = "../examples/spa"
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &e2e{t: t, ctx: ctx, clock: &offsetClock{}, logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// The authorization server.
	e.db = latchtest.Store(t)
	km := latchtest.Keys(t, e.db, nil)
	issLn := listen(t)
	e.issuer = "http://" + o.issuerHost + ":" + port(issLn)
	srv, err := server.New(server.Config{
		Issuer: e.issuer, InsecureAllowHTTP: true, Store: e.db, Keys: km,
		PasswordParams: cheapParams, Logger: logger.With("component", "server"),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	serve(t, issLn, srv.Handler())
	go srv.Run(ctx)
	e.users = &registry.Users{Store: e.db, Params: cheapParams}
	if _, err := e.users.Create(ctx, registry.UserSpec{Username: "alice", Password: alicePassword, Roles: []string{"admin"}, Groups: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}

	// The resource server: verify, as any Go API behind latch would.
	v, err := verify.New(ctx, verify.Config{Issuer: e.issuer, Audience: apiAudience, InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		e.apiMu.Lock()
		e.apiToken = append(e.apiToken, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		e.apiMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject, "method": r.Method, "path": r.URL.Path, "jti": c.ID})
	})))
	apiLn := listen(t)
	e.apiURL = "http://127.0.0.1:" + port(apiLn)
	serve(t, apiLn, mux)

	// The BFF's client, registered for its callback.
	bffLn := listen(t)
	e.bffURL = "http://" + o.bffHost + ":" + port(bffLn)
	e.client, err = (&registry.Clients{Store: e.db}).Create(ctx, registry.ClientSpec{
		Name: "spa", FirstParty: true, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scope: "openid profile email read", Audiences: []string{apiAudience},
		RedirectURIs: []string{e.bffURL + "/bff/callback"},
	})
	if err != nil {
		t.Fatal(err)
	}

	e.deny, err = verify.FollowRevocations(ctx, verify.FeedConfig{
		Issuer: e.issuer, ClientID: e.client.ID, ClientSecret: e.client.Secret,
		InsecureAllowHTTP: true, Logger: logger.With("component", "feed"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.deny.Close)

	if o.store == nil {
		o.store = newSQLiteStore(t)
	}
	e.counter = &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	up, _ := url.Parse(e.apiURL)
	e.b, err = New(ctx, Config{
		Issuer: e.issuer, ClientID: e.client.ID, ClientSecret: e.client.Secret,
		RedirectURL: e.bffURL + "/bff/callback", Upstream: up, Audience: apiAudience,
		Scopes: []string{"openid", "profile", "email", "read"},
		SPA:    http.FileServer(http.Dir(o.spaDir)),
		Store:  o.store, Key: randBytes(t, KeySize), InsecureAllowHTTP: true,
		IsRevoked: e.deny.IsRevoked, Ready: e.deny.Healthy,
		HTTPClient: &http.Client{
			Transport:     e.counter,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Logger: logger.With("component", "bff"), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("bff.New: %v", err)
	}
	serve(t, bffLn, e.b.Handler())
	go e.b.Run(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
	})
	return e
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) string { return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) }

func serve(t testing.TB, ln net.Listener, h http.Handler) {
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	hs.Start()
	t.Cleanup(hs.Close)
}

// agent is a browser stand-in for the tests that do not need Chromium: a
// cookie jar (which, like browsers, sends Secure cookies to loopback over
// http) and the headers a browser adds.
type agent struct {
	e      *e2e
	jar    *cookiejar.Jar
	client *http.Client
}

func (e *e2e) newAgent() *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{e: e, jar: jar, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

var (
	csrfField     = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	returnToField = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
)

// login runs the whole flow: /bff/login, the server's login form, the
// callback, and lands on the app.
func (a *agent) login(username, pw string) {
	t := a.e.t
	t.Helper()
	resp, body := a.get(a.e.bffURL + "/bff/login?return_to=/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), a.e.issuer+"/login") {
		t.Fatalf("GET /bff/login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	m, r := csrfField.FindStringSubmatch(body), returnToField.FindStringSubmatch(body)
	if m == nil || r == nil {
		t.Fatalf("login form without csrf_token or return_to: %s", body)
	}
	form := url.Values{"csrf_token": {m[1]}, "return_to": {html.UnescapeString(r[1])}, "username": {username}, "password": {pw}}
	req, _ := http.NewRequest(http.MethodPost, a.e.issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.e.issuer)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != a.e.bffURL+"/" {
		t.Fatalf("login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, b)
	}
}

func (a *agent) get(u string) (*http.Response, string) {
	a.e.t.Helper()
	resp, err := a.client.Get(u)
	if err != nil {
		a.e.t.Fatalf("GET %s: %v", u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// api calls the BFF as the SPA's fetch would.
func (a *agent) api(method, path string) (int, map[string]any) {
	req, _ := http.NewRequest(method, a.e.bffURL+path, nil)
	if method != http.MethodGet {
		req.Header.Set(CSRFHeader, "1")
		req.Header.Set("Origin", a.e.bffURL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.e.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (a *agent) sessionCookie() *http.Cookie {
	u, _ := url.Parse(a.e.bffURL)
	for _, c := range a.jar.Cookies(u) {
		if c.Name == DefaultCookieName {
			return c
		}
	}
	return nil
}

func TestE2E_LoginCallLogout(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	a := e.newAgent()
	a.login("alice", alicePassword)
	if a.sessionCookie() == nil {
		t.Fatal("no session cookie after login")
	}
	code, user := a.api("GET", "/bff/user")
	if code != 200 || user["sub"] == "" || user["roles"] == nil {
		t.Fatalf("/bff/user: %d %v", code, user)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if _, ok := user[k]; ok {
			t.Fatalf("/bff/user holds %s", k)
		}
	}
	code, body := a.api("GET", "/api/hello")
	if code != 200 || body["sub"] != user["sub"] || body["path"] != "/hello" {
		t.Fatalf("GET /api/hello: %d %v", code, body)
	}
	code, body = a.api("POST", "/api/items")
	if code != 200 || body["method"] != "POST" {
		t.Fatalf("POST /api/items: %d %v", code, body)
	}
	e.apiMu.Lock()
	tok := e.apiToken[0]
	e.apiMu.Unlock()

	code, body = a.api("POST", "/bff/logout")
	if code != 200 || body["logged_out"] != true || body["revoked"] != true {
		t.Fatalf("logout: %d %v", code, body)
	}
	if a.sessionCookie() != nil {
		t.Fatal("session cookie kept after logout")
	}
	if code, body := a.api("GET", "/api/hello"); code != 401 || body["error"] != CodeLoginRequired {
		t.Fatalf("API after logout: %d %v", code, body)
	}
	// The refresh family was revoked at the server: the access token the
	// API saw is denylisted by the feed (security invariant 7).
	waitFor(t, 5*time.Second, "access token denylisted after logout", func() bool {
		jti, _ := jwtIDAndExp(tok)
		return e.deny.IsRevoked(context.Background(), e.issuer, jti)
	})
}

// TestE2E_RedisStore runs login, a refresh and logout with sessions in
// Redis (LATCH_TEST_REDIS).
func TestE2E_RedisStore(t *testing.T) {
	store := newRedisStore(t)
	e := newE2E(t, e2eOptions{store: store})
	a := e.newAgent()
	a.login("alice", alicePassword)
	if code, body := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("call: %d %v", code, body)
	}
	e.clock.Advance(11 * time.Minute)
	if code, body := a.api("GET", "/api/hello"); code != 200 || e.counter.refreshes.Load() != 1 {
		t.Fatalf("call after expiry: %d %v, %d refreshes", code, body, e.counter.refreshes.Load())
	}
	if code, body := a.api("POST", "/bff/logout"); code != 200 || body["revoked"] != true {
		t.Fatalf("logout: %d %v", code, body)
	}
	if code, _ := a.api("GET", "/api/hello"); code != 401 {
		t.Fatalf("after logout: %d", code)
	}
}

// TestE2E_InjectedCode_Refused: a code obtained in one login (the
// attacker's) and injected into another browser's callback, with that
// browser's own valid state, is refused: the authorization server checks
// it against this login's PKCE verifier (and the ID token's nonce would
// not match either). No session is created.
func TestE2E_InjectedCode_Refused(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	callback := e.bffURL + "/bff/callback"
	stopAtCallback := func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callback) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	// The attacker logs in at the server but keeps the code.
	attacker := e.newAgent()
	attacker.client.CheckRedirect = stopAtCallback
	resp, body := attacker.get(e.bffURL + "/bff/login")
	m, r := csrfField.FindStringSubmatch(body), returnToField.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || r == nil {
		t.Fatalf("attacker's login form: %d %s", resp.StatusCode, body)
	}
	form := url.Values{"csrf_token": {m[1]}, "return_to": {html.UnescapeString(r[1])}, "username": {"alice"}, "password": {alicePassword}}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.issuer)
	resp, err := attacker.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != http.StatusFound || code == "" {
		t.Fatalf("attacker got no code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The victim's browser starts its own login; the attacker's code is
	// delivered to its callback with the victim's state.
	victim := e.newAgent()
	victim.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = victim.get(e.bffURL + "/bff/login")
	vloc, _ := url.Parse(resp.Header.Get("Location"))
	state := vloc.Query().Get("state")
	if state == "" {
		t.Fatalf("victim's login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = victim.get(callback + "?" + url.Values{"code": {code}, "state": {state}, "iss": {e.issuer}}.Encode())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, CodeLoginFailed) || !strings.Contains(body, "refused the code") {
		t.Fatalf("injected code: %d %s, want 400 %s", resp.StatusCode, body, CodeLoginFailed)
	}
	if c, _ := victim.api("GET", "/bff/user"); c != 401 {
		t.Fatalf("the victim got a session from the attacker's code: %d", c)
	}
}

// waitFor polls cond (a hang guard, not a timing assertion).
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

// TestSingleFlight_50ConcurrentCalls_OneRefresh is the single
// flight test: 50 API calls at once on a session whose access token has
// expired cause exactly one refresh at the authorization server; every
// call is answered with the new token, and the family stays valid (no
// reuse was detected).
func TestSingleFlight_50ConcurrentCalls_OneRefresh(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	a := e.newAgent()
	a.login("alice", alicePassword)
	if code, _ := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("first call: %d", code)
	}
	if n := e.counter.refreshes.Load(); n != 0 {
		t.Fatalf("%d refreshes before the token expired", n)
	}
	e.apiMu.Lock()
	oldTok := e.apiToken[0]
	e.apiToken = nil
	e.apiMu.Unlock()

	// The access token (10 minutes) is now expired for the BFF.
	e.clock.Advance(11 * time.Minute)
	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			method := "GET"
			if i%2 == 1 {
				method = "POST" // tabs doing different things
			}
			codes[i], _ = a.api(method, fmt.Sprintf("/api/items/%d", i))
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("call %d: status %d", i, c)
		}
	}
	if got := e.counter.refreshes.Load(); got != 1 {
		t.Fatalf("50 concurrent calls with an expired token caused %d refreshes, want exactly 1", got)
	}
	e.apiMu.Lock()
	seen := append([]string(nil), e.apiToken...)
	e.apiMu.Unlock()
	if len(seen) != n {
		t.Fatalf("API saw %d calls", len(seen))
	}
	for _, tok := range seen {
		if tok == oldTok || tok != seen[0] {
			t.Fatal("calls were forwarded with different or expired access tokens")
		}
	}
	// The rotated family is healthy: a later refresh works (a reuse would
	// have revoked it).
	e.clock.Advance(11 * time.Minute)
	if code, body := a.api("GET", "/api/hello"); code != 200 {
		t.Fatalf("call after a second expiry: %d %v", code, body)
	}
	if got := e.counter.refreshes.Load(); got != 2 {
		t.Fatalf("%d refreshes after the second expiry, want 2", got)
	}
}

// TestRevocation_LogoutEverywhere_Next401 is the revocation test:
// logging the user out everywhere at the server makes the BFF's next API
// call answer 401 session_revoked, through the revocation feed. Two ways of
// signing out: the admin API (inside the server, which wakes its feed at
// once) and Users.LogoutEverywhere on the store from outside the server,
// as `latch revoke --subject` in another process does (the feed finds it at
// its next poll of the store). Each measures revoke→401 over 20 trials and
// logs p50 and p99; it asserts only a hang guard (each within 5s), since
// timings are not asserted in tests (the numbers go to BENCHMARKS.md).
func TestRevocation_LogoutEverywhere_Next401(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	admin, err := (&registry.Clients{Store: e.db}).Create(e.ctx, registry.ClientSpec{Name: "admin", Scope: "latch:admin", Audiences: []string{"urn:latch:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	adminToken := func() string {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=latch:admin&audience=urn:latch:admin"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(admin.ID, admin.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr tokenResponse
		if json.NewDecoder(resp.Body).Decode(&tr); tr.AccessToken == "" {
			t.Fatalf("admin token: %d", resp.StatusCode)
		}
		return tr.AccessToken
	}()
	ways := []struct {
		name   string
		revoke func()
	}{
		{"admin_api", func() {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/admin/v1/users/alice/logout", nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("admin logout: %d", resp.StatusCode)
			}
		}},
		{"store_from_outside", func() {
			if _, err := e.users.LogoutEverywhere(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			const trials = 20
			lat := make([]time.Duration, 0, trials)
			for i := range trials {
				a := e.newAgent()
				a.login("alice", alicePassword)
				if code, body := a.api("GET", "/api/hello"); code != 200 {
					t.Fatalf("trial %d: call before revocation: %d %v", i, code, body)
				}
				start := time.Now()
				way.revoke()
				for {
					code, body := a.api("GET", "/api/hello")
					if code == 401 {
						if body["error"] != CodeSessionRevoked {
							t.Fatalf("trial %d: 401 %v, want %s", i, body, CodeSessionRevoked)
						}
						break
					}
					if code != 200 {
						t.Fatalf("trial %d: %d %v while waiting for the revocation", i, code, body)
					}
					if time.Since(start) > 5*time.Second {
						t.Fatalf("trial %d: the BFF still forwards 5s after logout everywhere", i)
					}
					time.Sleep(time.Millisecond)
				}
				lat = append(lat, time.Since(start))
				// The session is gone: the next call is login_required.
				if code, body := a.api("GET", "/api/hello"); code != 401 || body["error"] != CodeLoginRequired {
					t.Fatalf("trial %d: after revocation: %d %v", i, code, body)
				}
			}
			p50, p99, maxLat := percentiles(lat)
			t.Logf("%s: logout everywhere → BFF 401 session_revoked over %d trials: p50 %v, p99 %v, max %v", way.name, trials, p50, p99, maxLat)
		})
	}
}

func percentiles(d []time.Duration) (p50, p99, maxD time.Duration) {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	idx := func(p float64) int { return min(len(s)-1, int(float64(len(s))*p+0.5)-1) }
	return s[max(0, idx(0.50))], s[max(0, idx(0.99))], s[len(s)-1]
}
