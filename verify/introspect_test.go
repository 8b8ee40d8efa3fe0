package verify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

const (
	rsClientID     = "rs:api"
	rsClientSecret = "s3cr%t/+ &"
)

// introServer is an RFC 7662 endpoint over real HTTP that answers from a
// table and counts its calls.
type introServer struct {
	srv   *httptest.Server
	calls atomic.Int64
	// tagKeys are served at /opaque-token-keys; keyCalls counts them.
	tagKeys  []*token.TagKey
	keyCalls atomic.Int64
	mu       sync.Mutex
	ans      map[string]map[string]any
	down     bool
	delay    time.Duration
}

func newIntroServer(t *testing.T) *introServer {
	s := &introServer{ans: map[string]map[string]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/opaque-token-keys" {
			s.serveTagKeys(w, r)
			return
		}
		s.calls.Add(1)
		s.mu.Lock()
		down, delay := s.down, s.delay
		s.mu.Unlock()
		time.Sleep(delay)
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		id, secret, ok := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if !ok || id != rsClientID || secret != rsClientSecret || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		s.mu.Lock()
		a, ok := s.ans[r.PostForm.Get("token")]
		s.mu.Unlock()
		if !ok {
			a = map[string]any{"active": false}
		}
		json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// issue registers an active opaque token with the given answer changes.
func (s *introServer) issue(t *testing.T, c *clock, mod func(map[string]any)) string {
	tok := must(token.NewOpaque(latch.KindAccess, nil))
	now := c.Now().Unix()
	a := map[string]any{
		"active": true, "iss": s.srv.URL, "aud": []string{testAudience}, "sub": "svc", "client_id": "svc",
		"scope": "read", "exp": now + 600, "iat": now, "jti": must(token.NewID(nil)), "token_type": "Bearer",
	}
	if mod != nil {
		mod(a)
	}
	s.mu.Lock()
	s.ans[tok] = a
	s.mu.Unlock()
	return tok
}

func (s *introServer) revoke(tok string) {
	s.mu.Lock()
	delete(s.ans, tok)
	s.mu.Unlock()
}

func (s *introServer) config(c *clock) IntrospectorConfig {
	return IntrospectorConfig{
		Issuer: s.srv.URL, Endpoint: s.srv.URL + "/introspect", ClientID: rsClientID, ClientSecret: rsClientSecret,
		Audience: testAudience, CacheTTL: time.Minute, NegativeTTL: 5 * time.Second,
		InsecureAllowHTTP: true, Now: c.Now,
	}
}

func mustIntrospector(t *testing.T, cfg IntrospectorConfig) *Introspector {
	t.Helper()
	in, err := NewIntrospector(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestIntrospector_ActiveToken_ClaimsFromAnswer(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	tok := s.issue(t, c, nil)
	cl, err := in.Introspect(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "svc" || cl.ClientID != "svc" || !cl.HasScope("read") || cl.HasScope("write") || cl.Issuer != s.srv.URL {
		t.Fatalf("claims %+v", cl.Claims)
	}
	// Cached: no second call.
	must(in.Introspect(context.Background(), tok))
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

func TestIntrospector_RefusedAnswers(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	for name, tc := range map[string]struct {
		mod  func(map[string]any)
		want error
	}{
		"other issuer":   {func(a map[string]any) { a["iss"] = "https://evil.example" }, token.ErrIssuer},
		"no issuer":      {func(a map[string]any) { delete(a, "iss") }, token.ErrIssuer},
		"other audience": {func(a map[string]any) { a["aud"] = "other" }, token.ErrAudience},
		"no audience":    {func(a map[string]any) { delete(a, "aud") }, token.ErrAudience},
		"refresh token":  {func(a map[string]any) { a["token_type"] = "refresh_token" }, token.ErrType},
		"expired":        {func(a map[string]any) { a["exp"] = c.Now().Unix() - 3600 }, token.ErrExpired},
		"no exp":         {func(a map[string]any) { delete(a, "exp") }, ErrMissingClaim},
		"not yet valid":  {func(a map[string]any) { a["nbf"] = c.Now().Unix() + 3600 }, token.ErrNotYetValid},
		"no jti":         {func(a map[string]any) { delete(a, "jti") }, ErrMissingClaim},
		"active string":  {func(a map[string]any) { a["active"] = "true" }, ErrUnavailable},
		"inactive":       {func(a map[string]any) { a["active"] = false }, ErrInactive},
	} {
		t.Run(name, func(t *testing.T) {
			tok := s.issue(t, c, tc.mod)
			if _, err := in.Introspect(context.Background(), tok); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

// TestIntrospector_Cache_ScopeIsPerToken is the regression test for
// ory/oathkeeper#743: a cached answer for one token never lends its scope
// to another, and the scope is checked on every request.
func TestIntrospector_Cache_ScopeIsPerToken(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	reader := s.issue(t, c, func(a map[string]any) { a["scope"] = "read" })
	writer := s.issue(t, c, func(a map[string]any) { a["scope"] = "read write" })
	h := in.Middleware(RequireScope("write")(echoClaims))
	for range 3 {
		if w := serveWith(h, bearerRequest(writer)); w.Code != 200 {
			t.Fatalf("writer: %d", w.Code)
		}
		if w := serveWith(h, bearerRequest(reader)); w.Code != 403 {
			t.Fatalf("reader on a write endpoint: %d, want 403", w.Code)
		}
	}
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want one per token", n)
	}
}

func TestIntrospector_Cache_NeverOutlivesExp(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	cfg := s.config(c)
	cfg.CacheTTL = time.Hour
	in := mustIntrospector(t, cfg)
	tok := s.issue(t, c, func(a map[string]any) { a["exp"] = c.Now().Unix() + 60 })
	must(in.Introspect(context.Background(), tok))
	c.Advance(61 * time.Second)
	in.Introspect(context.Background(), tok)
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d calls: the cache served an answer past the token's exp", n)
	}
}

func TestIntrospector_Revoked_RefusedAfterTTL_OrAtOnceWithDrop(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c)) // CacheTTL 1m
	ctx := context.Background()
	tok := s.issue(t, c, nil)
	must(in.Introspect(ctx, tok))
	s.revoke(tok)
	if _, err := in.Introspect(ctx, tok); err != nil {
		t.Fatalf("within CacheTTL the cached answer serves: %v", err)
	}
	c.Advance(time.Minute)
	if _, err := in.Introspect(ctx, tok); !errors.Is(err, ErrInactive) {
		t.Fatalf("after CacheTTL: %v, want ErrInactive", err)
	}

	tok2 := s.issue(t, c, nil)
	must(in.Introspect(ctx, tok2))
	s.revoke(tok2)
	in.Drop(token.Hash(tok2))
	if _, err := in.Introspect(ctx, tok2); !errors.Is(err, ErrInactive) {
		t.Fatalf("after Drop: %v, want ErrInactive", err)
	}

	tok3 := s.issue(t, c, nil)
	must(in.Introspect(ctx, tok3))
	s.revoke(tok3)
	in.Flush()
	if _, err := in.Introspect(ctx, tok3); !errors.Is(err, ErrInactive) {
		t.Fatalf("after Flush: %v, want ErrInactive", err)
	}
}

func TestIntrospector_NegativeAnswers_CachedForNegativeTTL(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c)) // NegativeTTL 5s
	tok := must(token.NewOpaque(latch.KindAccess, nil))
	for range 3 {
		if _, err := in.Introspect(context.Background(), tok); !errors.Is(err, ErrInactive) {
			t.Fatal(err)
		}
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d calls for a cached inactive answer", n)
	}
	c.Advance(5 * time.Second)
	in.Introspect(context.Background(), tok)
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d calls after NegativeTTL", n)
	}
}

func TestIntrospector_CacheTTLZero_AsksEveryTime(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	cfg := s.config(c)
	cfg.CacheTTL, cfg.NegativeTTL = 0, 0
	in := mustIntrospector(t, cfg)
	tok := s.issue(t, c, nil)
	for range 3 {
		must(in.Introspect(context.Background(), tok))
	}
	if n := s.calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
}

func TestIntrospector_EndpointDown_503AndNotCached(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	tok := s.issue(t, c, nil)
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
	if _, err := in.Introspect(context.Background(), tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
	if w := serveWith(in.Middleware(echoClaims), bearerRequest(tok)); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("middleware with the endpoint down: %d", w.Code)
	}
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
	if _, err := in.Introspect(context.Background(), tok); err != nil {
		t.Fatalf("a failure was cached: %v", err)
	}
}

func TestIntrospector_WrongClientCredentials_Unavailable(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	cfg := s.config(c)
	cfg.ClientSecret = "wrong"
	in := mustIntrospector(t, cfg)
	if _, err := in.Introspect(context.Background(), s.issue(t, c, nil)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
}

func TestIntrospector_ConcurrentSameToken_OneCall(t *testing.T) {
	s := newIntroServer(t)
	s.delay = 50 * time.Millisecond
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	tok := s.issue(t, c, nil)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if _, err := in.Introspect(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d calls for 200 concurrent requests, want 1", n)
	}
}

func TestIntrospector_MalformedOpaque_NoCall(t *testing.T) {
	s := newIntroServer(t)
	c := newClock()
	in := mustIntrospector(t, s.config(c))
	tok := must(token.NewOpaque(latch.KindAccess, nil))
	bad := tok[:10] + "A" + tok[11:]
	if bad == tok {
		bad = tok[:10] + "B" + tok[11:]
	}
	if _, err := in.Introspect(context.Background(), bad); !errors.Is(err, token.ErrMalformed) {
		t.Fatalf("%v, want ErrMalformed", err)
	}
	if _, err := in.Introspect(context.Background(), must(token.NewOpaque(latch.KindRefresh, nil))); !errors.Is(err, token.ErrType) {
		t.Fatalf("refresh token: %v, want ErrType", err)
	}
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("%d calls for malformed tokens", n)
	}
}

func TestIntrospector_DiscoversEndpoint(t *testing.T) {
	is := newIssuer(t, newKey(t, "k1", latch.ES256))
	in := mustIntrospector(t, IntrospectorConfig{
		Issuer: is.URL, ClientID: "a", ClientSecret: "b", Audience: "api", InsecureAllowHTTP: true,
	})
	if in.endpoint != is.srv.URL+"/introspect" {
		t.Fatalf("endpoint %q", in.endpoint)
	}
}

func TestIntrospectorConfig_Validate(t *testing.T) {
	base := IntrospectorConfig{Issuer: "https://i.example", ClientID: "a", ClientSecret: "b", Audience: "api"}
	for _, tc := range []struct {
		name string
		mod  func(*IntrospectorConfig)
		ok   bool
	}{
		{"base", func(*IntrospectorConfig) {}, true},
		{"http endpoint", func(c *IntrospectorConfig) { c.Endpoint = "http://i.example/introspect" }, false},
		{"https endpoint", func(c *IntrospectorConfig) { c.Endpoint = "https://i.example/introspect" }, true},
		{"no secret", func(c *IntrospectorConfig) { c.ClientSecret = "" }, false},
		{"no audience", func(c *IntrospectorConfig) { c.Audience = "" }, false},
		{"skip audience", func(c *IntrospectorConfig) { c.Audience = ""; c.SkipAudienceCheck = true }, true},
		{"negative ttl", func(c *IntrospectorConfig) { c.CacheTTL = -1 }, false},
		{"negative negative ttl", func(c *IntrospectorConfig) { c.NegativeTTL = -1 }, false},
		{"negative entries", func(c *IntrospectorConfig) { c.MaxEntries = -1 }, false},
		{"leeway", func(c *IntrospectorConfig) { c.Leeway = time.Hour }, false},
		{"negative untagged rate", func(c *IntrospectorConfig) { c.UntaggedRate = -1 }, false},
	} {
		cfg := base
		tc.mod(&cfg)
		if err := cfg.withDefaults().Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestAuthenticator_RoutesJWTAndOpaque(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	s := newIntroServer(t)
	c := newClock()
	a := &Authenticator{Verifier: mustNew(t, is.config(c)), Introspector: mustIntrospector(t, s.config(c))}
	h := a.Middleware(RequireScope("read")(echoClaims))
	if w := serveWith(h, bearerRequest(mustSign(t, k, "at+jwt", claimsAt(is, c)))); w.Code != 200 || w.Body.String() != "user-1" {
		t.Fatalf("JWT: %d %s", w.Code, w.Body)
	}
	if w := serveWith(h, bearerRequest(s.issue(t, c, nil))); w.Code != 200 || w.Body.String() != "svc" {
		t.Fatalf("opaque: %d %s", w.Code, w.Body)
	}
	if s.calls.Load() != 1 {
		t.Fatal("the JWT went to introspection")
	}
}
