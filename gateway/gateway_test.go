package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/gateway"
	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// TestGateway_OpaqueToken_UpstreamVerifiesForwardedJWT is the phantom-token
// pattern end to end in one process: the client holds an opaque token, the
// upstream, protected by verify alone, sees a JWT with the token's subject,
// client and scope, naming the gateway as actor.
func TestGateway_OpaqueToken_UpstreamVerifiesForwardedJWT(t *testing.T) {
	is := newIssuer(t)
	owner := is.client(registry.ClientSpec{Scope: "read write", Audiences: []string{"api"}, AccessTokenFormat: "opaque"})
	gwc := is.client(registry.ClientSpec{ID: "gateway", GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}, Audiences: []string{"api"}})
	v, err := verify.New(context.Background(), verify.Config{Issuer: is.URL, Audience: "api", InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(verify.RequireScope("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "client_id": c.ClientID, "scope": c.Scope, "act": c.Extra["act"]})
	}))))
	defer api.Close()
	u, _ := url.Parse(api.URL)
	gw, err := gateway.New(context.Background(), gateway.Config{Issuer: is.URL, ClientID: gwc.ID, ClientSecret: gwc.Secret,
		Upstream: u, InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	opaque := is.token(owner, url.Values{"scope": {"read"}})
	r := httptest.NewRequest(http.MethodGet, "/hello", nil)
	r.Header.Set("Authorization", "Bearer "+opaque)
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, r)
	var got map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		t.Fatalf("through the gateway: %d %s %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
	act, _ := got["act"].(map[string]any)
	if got["sub"] != owner.ID || got["client_id"] != owner.ID || got["scope"] != "read" || act["sub"] != "gateway" {
		t.Fatalf("upstream saw %v", got)
	}
	// The opaque token straight at the API is refused: it never was the
	// upstream's business.
	r = httptest.NewRequest(http.MethodGet, api.URL+"/hello", nil)
	r.RequestURI = ""
	r.Header.Set("Authorization", "Bearer "+opaque)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("opaque token at the API directly: %d", resp.StatusCode)
	}
}

func TestGateway_RewritesHeaders_StripsInboundAuthForwardedAndHopByHop(t *testing.T) {
	s := newSetup(t)
	opaque := s.is.token(s.owner, nil)
	w := s.do("Bearer "+opaque, func(r *http.Request) {
		r.Header.Set("X-Forwarded-For", "6.6.6.6")
		r.Header.Set("X-Forwarded-Host", "evil.example")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Forwarded", "for=6.6.6.6")
		r.Header.Set("Connection", "X-Hop")
		r.Header.Set("X-Hop", "secret")
		r.Header.Set("Cookie", "theme=dark")
		r.Header.Set("X-Request-Id", "abc")
	})
	if w.Code != 200 || w.Body.String() != "upstream" || w.Header().Get("X-Upstream") != "yes" {
		t.Fatalf("through the gateway: %d %s", w.Code, w.Body)
	}
	got := s.up.last(t)
	auth := got.Header.Get("Authorization")
	jwt, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.HasPrefix(jwt, token.PrefixAccess) || strings.Count(jwt, ".") != 2 {
		t.Fatalf("upstream Authorization %q, want Bearer <jwt>", auth)
	}
	if c := claims(t, jwt); c["sub"] != s.owner.ID || c["aud"] != "api" {
		t.Fatalf("forwarded JWT claims %v", c)
	}
	for k, want := range map[string]string{
		"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Host": "example.com", "X-Forwarded-Proto": "http",
		"Forwarded": "", "X-Hop": "", "Cookie": "", "X-Request-Id": "abc",
	} {
		if v := strings.Join(got.Header.Values(k), ","); v != want {
			t.Errorf("upstream header %s = %q, want %q", k, v, want)
		}
	}
	if got.Path != "/v1/things" || got.Query != "x=1" || got.Host != strings.TrimPrefix(s.up.URL, "http://") {
		t.Errorf("upstream request %s %s?%s host %s", got.Method, got.Path, got.Query, got.Host)
	}
}

func TestGateway_CacheHit_NoSecondExchange_ConcurrentMissesShareOne(t *testing.T) {
	s := newSetup(t)
	opaque := s.is.token(s.owner, nil)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if w := s.do("Bearer " + opaque); w.Code != 200 {
				t.Errorf("concurrent request: %d %s", w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if w := s.do("Bearer " + opaque); w.Code != 200 {
		t.Fatalf("cached: %d", w.Code)
	}
	if n := s.is.exchanges.Load(); n != 1 {
		t.Fatalf("%d exchanges for one token, want 1 (single flight, then the cache)", n)
	}
	if s.up.count() != 51 {
		t.Fatalf("upstream got %d requests, want 51", s.up.count())
	}
}

func TestGateway_CacheEntry_LivesUntilEarlierOfCacheTTLAndExpMinusMargin(t *testing.T) {
	t.Run("CacheTTL", func(t *testing.T) {
		s := newSetup(t, func(c *gateway.Config) { c.CacheTTL = time.Minute })
		opaque := s.is.token(s.owner, nil)
		s.do("Bearer " + opaque)
		s.is.clock.Advance(59 * time.Second)
		s.do("Bearer " + opaque)
		if n := s.is.exchanges.Load(); n != 1 {
			t.Fatalf("%d exchanges within CacheTTL", n)
		}
		s.is.clock.Advance(2 * time.Second)
		if w := s.do("Bearer " + opaque); w.Code != 200 || s.is.exchanges.Load() != 2 {
			t.Fatalf("after CacheTTL: %d, %d exchanges, want a second one", w.Code, s.is.exchanges.Load())
		}
	})
	t.Run("exp", func(t *testing.T) {
		s := newSetup(t, func(c *gateway.Config) { c.CacheTTL = time.Hour })
		owner := s.is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenFormat: "opaque", AccessTokenTTL: 40})
		opaque := s.is.token(owner, nil) // the exchanged JWT expires with it, in 40s
		s.do("Bearer " + opaque)
		s.is.clock.Advance(29 * time.Second)
		s.do("Bearer " + opaque)
		if n := s.is.exchanges.Load(); n != 1 {
			t.Fatalf("%d exchanges before exp minus the margin", n)
		}
		s.is.clock.Advance(2 * time.Second) // 9s before exp: within the 10s margin
		if w := s.do("Bearer " + opaque); w.Code != 200 || s.is.exchanges.Load() != 2 {
			t.Fatalf("within the margin of exp: %d, %d exchanges, want a fresh JWT", w.Code, s.is.exchanges.Load())
		}
		if jwt := strings.TrimPrefix(s.up.last(t).Header.Get("Authorization"), "Bearer "); claims(t, jwt)["exp"] != float64(s.is.clock.Now().Unix()+9) {
			t.Fatalf("fresh JWT exp %v", claims(t, jwt)["exp"])
		}
	})
}

func TestGateway_RevokedToken_RefusedAfterDropOrFlushOrCacheTTL(t *testing.T) {
	s := newSetup(t, func(c *gateway.Config) { c.CacheTTL = 10 * time.Second })
	a, b, c := s.is.token(s.owner, nil), s.is.token(s.owner, nil), s.is.token(s.owner, nil)
	for _, tok := range []string{a, b, c} {
		if w := s.do("Bearer " + tok); w.Code != 200 {
			t.Fatalf("active: %d", w.Code)
		}
		s.is.revoke(s.owner, tok)
	}
	// Cached: still forwarded until the feed drops it or CacheTTL passes.
	if w := s.do("Bearer " + a); w.Code != 200 {
		t.Fatalf("cached revoked token: %d", w.Code)
	}
	s.gw.Drop(token.Hash(a))
	w := s.do("Bearer " + a)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="api", error="invalid_token", error_description="the token is not active"` {
		t.Fatalf("after Drop: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := s.do("Bearer " + b); w.Code != 200 {
		t.Fatalf("Drop of one token dropped another: %d", w.Code)
	}
	s.gw.Flush()
	if w := s.do("Bearer " + b); w.Code != 401 {
		t.Fatalf("after Flush: %d", w.Code)
	}
	s.is.clock.Advance(11 * time.Second)
	if w := s.do("Bearer " + c); w.Code != 401 {
		t.Fatalf("after CacheTTL: %d", w.Code)
	}
}

func TestGateway_RefusesWithoutForwarding(t *testing.T) {
	s := newSetup(t)
	opaque := s.is.token(s.owner, nil)
	jwtClient := s.is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	otherAPI := s.is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"other-api"}, AccessTokenFormat: "opaque"})
	bad := opaque[:len(opaque)-2] + "AA"
	if bad == opaque {
		bad = opaque[:len(opaque)-2] + "BB"
	}
	for _, tc := range []struct {
		name   string
		auth   string
		mutate func(*http.Request)
		status int
		header string
	}{
		{"no token", "", nil, 401, `Bearer realm="api"`},
		{"another scheme", "Basic YTpi", nil, 401, `Bearer realm="api"`},
		{"refresh token", "Bearer lt_rt_" + opaque[len("lt_at_"):], nil, 401, `error_description="a refresh token is not an access token"`},
		{"bad checksum", "Bearer " + bad, nil, 401, `error_description="the token is malformed"`},
		{"JWT from outside", "Bearer " + s.is.token(jwtClient, nil), nil, 401, `error_description="only opaque access tokens are accepted here"`},
		{"token for another API", "Bearer " + s.is.token(otherAPI, nil), nil, 401, `error_description="the token is not for this API"`},
		{"not a b64token", "Bearer a b", nil, 400, `error="invalid_request"`},
		{"two Authorization headers", "Bearer " + opaque, func(r *http.Request) { r.Header.Add("Authorization", "Bearer "+opaque) }, 400, `error="invalid_request"`},
		{"token in the query", "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + opaque }, 400, `error="invalid_request"`},
	} {
		var m []func(*http.Request)
		if tc.mutate != nil {
			m = append(m, tc.mutate)
		}
		w := s.do(tc.auth, m...)
		if w.Code != tc.status || !strings.Contains(w.Header().Get("WWW-Authenticate"), tc.header) {
			t.Errorf("%s: %d %q, want %d with %s", tc.name, w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.header)
		}
	}
	if n := s.up.count(); n != 0 {
		t.Fatalf("the upstream got %d refused requests", n)
	}
	if n := s.is.exchanges.Load(); n != 1 {
		t.Fatalf("%d exchanges, want 1 (only the other API's token is asked about)", n)
	}
}

func TestGateway_AcceptJWT_ForwardsOutsideJWTAsIs_RefusesInternalOnes(t *testing.T) {
	s := newSetup(t, func(c *gateway.Config) { c.AcceptJWT = true; c.Audience = "api"; c.Now = nil })
	jwtClient := s.is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api", "other-api"}})
	outside := s.is.token(jwtClient, nil)
	if w := s.do("Bearer " + outside); w.Code != 200 {
		t.Fatalf("outside JWT with AcceptJWT: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if got := s.up.last(t).Header.Get("Authorization"); got != "Bearer "+outside {
		t.Fatalf("outside JWT not forwarded as is: %q", got)
	}
	wrongAud := s.is.token(jwtClient, url.Values{"audience": {"other-api"}})
	if w := s.do("Bearer " + wrongAud); w.Code != 401 {
		t.Fatalf("JWT for another audience: %d", w.Code)
	}
	// A JWT the gateway minted, leaked by the upstream and replayed from
	// outside.
	s.do("Bearer " + s.is.token(s.owner, nil))
	internal := strings.TrimPrefix(s.up.last(t).Header.Get("Authorization"), "Bearer ")
	w := s.do("Bearer " + internal)
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "an internal token is not accepted from outside") {
		t.Fatalf("internal JWT from outside: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestGateway_IssuerDownOrRefusingGateway_Is503_UpstreamDownIs502(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }), nil))
	s := newSetup(t, func(c *gateway.Config) { c.Logger = logger })

	wrong := s.cfg
	wrong.ClientSecret = "not-the-secret"
	// Discovering the issuer, New fetches the tag keys with the
	// credentials: a wrong secret shows at start-up.
	if _, err := gateway.New(context.Background(), wrong); err == nil || !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("New with a wrong secret: %v", err)
	}
	// With the token endpoint configured and no key endpoint, it shows at
	// the first exchange.
	wrong.TokenEndpoint = s.is.URL + "/oauth2/token"
	gw, err := gateway.New(context.Background(), wrong)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+s.is.token(s.owner, nil))
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, r)
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if w.Code != 503 || !strings.Contains(logged, "refuses this gateway's client") || strings.Contains(logged, "not-the-secret") {
		t.Fatalf("wrong gateway secret: %d; logs:\n%s", w.Code, logged)
	}

	opaque := s.is.token(s.owner, nil)
	if w := s.do("Bearer " + opaque); w.Code != 200 {
		t.Fatalf("before the outage: %d", w.Code)
	}
	s.up.Close()
	if w := s.do("Bearer " + opaque); w.Code != 502 {
		t.Fatalf("upstream down: %d", w.Code)
	}
	s.is.srv.Close()
	fresh := freshOpaque(t)
	if w := s.do("Bearer " + fresh); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("issuer down: %d %v", w.Code, w.Header())
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), opaque) || strings.Contains(logs.String(), fresh) {
		t.Fatal("a token was logged")
	}
}

// freshOpaque is a well-formed opaque token no issuer knows.
func freshOpaque(t testing.TB) string {
	tok, err := token.NewOpaque("access", strings.NewReader(strings.Repeat("z", 64)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestGateway_Ready_FalseIs503_NothingExchangedOrForwarded: while Ready
// (the revocation feed's health) is false, every token is answered 503,
// cached ones included, and the gateway serves again once it is true.
func TestGateway_Ready_FalseIs503_NothingExchangedOrForwarded(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	s := newSetup(t, func(c *gateway.Config) { c.Ready = ready.Load })
	cached, fresh := s.is.token(s.owner, nil), s.is.token(s.owner, nil)
	if w := s.do("Bearer " + cached); w.Code != 200 {
		t.Fatalf("ready: %d", w.Code)
	}
	ready.Store(false)
	for _, tok := range []string{cached, fresh} {
		w := s.do("Bearer " + tok)
		if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "revocation feed") {
			t.Fatalf("not ready: %d %v %q, want 503 with Retry-After", w.Code, w.Header(), w.Body)
		}
	}
	if w := s.do(""); w.Code != 401 {
		t.Fatalf("no token while not ready: %d, want the bare 401 challenge", w.Code)
	}
	if n, x := s.up.count(), s.is.exchanges.Load(); n != 1 || x != 1 {
		t.Fatalf("while not ready: %d forwarded, %d exchanges; want 1 and 1 (from before)", n, x)
	}
	ready.Store(true)
	if w := s.do("Bearer " + fresh); w.Code != 200 {
		t.Fatalf("ready again: %d", w.Code)
	}
}

// TestGateway_AcceptJWT_IsRevokedRefusesOutsideJWT: Config.IsRevoked reaches
// the verifier of outside JWTs.
func TestGateway_AcceptJWT_IsRevokedRefusesOutsideJWT(t *testing.T) {
	var revoked sync.Map // jti -> struct{}
	var asked atomic.Int64
	s := newSetup(t, func(c *gateway.Config) {
		c.AcceptJWT, c.Audience, c.Now = true, "api", nil
		c.IsRevoked = func(_ context.Context, iss, jti string) bool {
			asked.Add(1)
			_, ok := revoked.Load(iss + " " + jti)
			return ok
		}
	})
	jwtClient := s.is.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	a, b := s.is.token(jwtClient, nil), s.is.token(jwtClient, nil)
	revoked.Store(s.is.URL+" "+claims(t, a)["jti"].(string), struct{}{})
	if w := s.do("Bearer " + a); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked outside JWT: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := s.do("Bearer " + b); w.Code != 200 {
		t.Fatalf("outside JWT not revoked: %d", w.Code)
	}
	if asked.Load() != 2 {
		t.Fatalf("IsRevoked asked %d times, want 2", asked.Load())
	}
}

// TestGateway_MalformedBearerRequest_400: the gateway reads the
// Authorization header with verify.BearerToken, so it answers malformed
// requests exactly as the verify middleware does (RFC 6750 §3.1).
func TestGateway_MalformedBearerRequest_400(t *testing.T) {
	s := newSetup(t)
	for name, tc := range map[string]struct {
		auth   string
		mutate func(*http.Request)
	}{
		"empty Bearer credentials": {"Bearer", nil},
		"not a b64token":           {"Bearer a,b", nil},
		"token in the query":       {"", func(r *http.Request) { r.URL.RawQuery = "access_token=lt_at_x" }},
		"two Authorization headers": {"Bearer a", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer b")
		}},
	} {
		var w *httptest.ResponseRecorder
		if tc.mutate != nil {
			w = s.do(tc.auth, tc.mutate)
		} else {
			w = s.do(tc.auth)
		}
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if w := s.do("Basic dXNlcjpwdw=="); w.Code != http.StatusUnauthorized {
		t.Errorf("another scheme is no token: %d, want 401", w.Code)
	}
}
