package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

// liveLatch is the real authorization server (server.New on SQLite) behind
// an httptest.Server, with its background loop (and feed) running.
type liveLatch struct {
	URL    string
	srv    *httptest.Server
	client struct{ ID, Secret string }
}

func newLiveLatch(t *testing.T, spec registry.ClientSpec) *liveLatch {
	t.Helper()
	ctx := context.Background()
	db := latchtest.Store(t)
	km := latchtest.Keys(t, db, nil)
	var h atomic.Pointer[http.Handler]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	srv, err := server.New(server.Config{Issuer: ts.URL, InsecureAllowHTTP: true, Store: db, Keys: km})
	if err != nil {
		t.Fatal(err)
	}
	handler := srv.Handler()
	h.Store(&handler)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	v := must((&registry.Clients{Store: db}).Create(ctx, spec))
	l := &liveLatch{URL: ts.URL, srv: ts}
	l.client.ID, l.client.Secret = v.ID, v.Secret
	return l
}

func (l *liveLatch) post(t *testing.T, path string, form url.Values) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, l.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(l.client.ID), url.QueryEscape(l.client.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b.String())
	}
	return b.Bytes()
}

func (l *liveLatch) token(t *testing.T) string {
	t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(l.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}), &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

func (l *liveLatch) revoke(t *testing.T, tok string) {
	t.Helper()
	l.post(t, "/oauth2/revoke", url.Values{"token": {tok}})
}

func (l *liveLatch) feedConfig() FeedConfig {
	return FeedConfig{Issuer: l.URL, ClientID: l.client.ID, ClientSecret: l.client.Secret, InsecureAllowHTTP: true}
}

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	var c struct {
		JTI string `json:"jti"`
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || json.Unmarshal(must(enc.DecodeString(parts[1])), &c) != nil {
		t.Fatalf("not a JWT: %q", tok)
	}
	return c.JTI
}

func mustFollow(t *testing.T, cfg FeedConfig) *Denylist {
	t.Helper()
	d, err := FollowRevocations(context.Background(), cfg)
	if err != nil {
		t.Fatalf("FollowRevocations: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestFollowRevocations_RealServer_BacklogThenLive(t *testing.T) {
	l := newLiveLatch(t, registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	before, live, kept := l.token(t), l.token(t), l.token(t)
	l.revoke(t, before)

	d := mustFollow(t, l.feedConfig())
	// The first sync is complete when FollowRevocations returns.
	if !d.IsRevoked(t.Context(), l.URL, jtiOf(t, before)) {
		t.Fatal("a token revoked before FollowRevocations is not denylisted when it returns")
	}
	if d.IsRevoked(t.Context(), l.URL, jtiOf(t, live)) || !d.Healthy() {
		t.Fatal("an unrevoked token is denylisted, or the feed is not healthy")
	}
	l.revoke(t, live)
	waitFor(t, "the live revocation", func() bool { return d.IsRevoked(t.Context(), l.URL, jtiOf(t, live)) })
	if d.IsRevoked(t.Context(), l.URL, jtiOf(t, kept)) {
		t.Error("an unrevoked token is denylisted")
	}
	if d.Len() != 2 {
		t.Errorf("Len = %d, want 2", d.Len())
	}
}

func TestFollowRevocations_RealServer_OpaqueCallsOnOpaque(t *testing.T) {
	l := newLiveLatch(t, registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenFormat: "opaque"})
	var mu sync.Mutex
	var dropped [][]byte
	cfg := l.feedConfig()
	cfg.OnOpaque = func(h []byte) { mu.Lock(); dropped = append(dropped, h); mu.Unlock() }
	mustFollow(t, cfg)
	tok := l.token(t)
	l.revoke(t, tok)
	waitFor(t, "OnOpaque", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(dropped) == 1 && bytes.Equal(dropped[0], token.Hash(tok))
	})
}

func TestFollowRevocations_FirstSyncFails_IsAnError(t *testing.T) {
	l := newLiveLatch(t, registry.ClientSpec{Scope: "read", Audiences: []string{"api"}})
	cfg := l.feedConfig()
	cfg.ClientSecret = "wrong"
	if _, err := FollowRevocations(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "ClientSecret") {
		t.Errorf("wrong secret: err = %v, want a 401 that names the credentials", err)
	}
	cfg = l.feedConfig()
	cfg.Endpoint = "http://127.0.0.1:1/oauth2/revocations"
	if _, err := FollowRevocations(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "first sync") {
		t.Errorf("unreachable feed: err = %v", err)
	}
}

// fakeFeed is a scripted revocation feed: entries, an outage switch and a
// reset switch, honouring after and wait like the real one.
type fakeFeed struct {
	srv *httptest.Server

	mu      sync.Mutex
	entries []map[string]any // seq = index + 1
	down    bool
	reset   bool
	changed chan struct{}
	polls   atomic.Int64
}

func newFakeFeed(t *testing.T) *fakeFeed {
	f := &fakeFeed{changed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeFeed) add(e map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e["seq"] = len(f.entries) + 1
	f.entries = append(f.entries, e)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeFeed) set(fn func(f *fakeFeed)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeFeed) serve(w http.ResponseWriter, r *http.Request) {
	f.polls.Add(1)
	if u, p, ok := r.BasicAuth(); !ok || u != "rs" || p != "secret" {
		http.Error(w, "who", http.StatusUnauthorized)
		return
	}
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timeout := time.After(wait)
	for {
		f.mu.Lock()
		down, reset, changed := f.down, f.reset, f.changed
		var page []map[string]any
		if after < len(f.entries) {
			page = f.entries[after:]
		}
		next := max(after, len(f.entries))
		f.mu.Unlock()
		switch {
		case down:
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case reset && after > 0:
			json.NewEncoder(w).Encode(map[string]any{"entries": []any{}, "next": 0, "reset": true})
			return
		case len(page) > 0:
			json.NewEncoder(w).Encode(map[string]any{"entries": page, "next": next})
			return
		}
		select {
		case <-changed:
		case <-timeout:
			json.NewEncoder(w).Encode(map[string]any{"entries": []any{}, "next": next})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeFeed) config() FeedConfig {
	return FeedConfig{Issuer: "http://issuer.test", Endpoint: f.srv.URL + "/oauth2/revocations",
		ClientID: "rs", ClientSecret: "secret", InsecureAllowHTTP: true}
}

func jwtEntry(jti string, exp time.Time) map[string]any {
	return map[string]any{"kind": "jwt", "iss": "http://issuer.test", "jti": jti, "exp": exp.Unix()}
}

// The failure mode of docs/revocation-feed.md: the feed goes down; the
// denylist answers from its last state for MaxStale, then refuses every
// token (fail closed), and recovers when the feed is back.
func TestDenylist_FeedDown_FailsClosedAfterMaxStale_RecoversAfterReconnect(t *testing.T) {
	f := newFakeFeed(t)
	f.add(jwtEntry("gone", time.Now().Add(time.Hour)))
	cfg := f.config()
	cfg.MaxStale = 400 * time.Millisecond
	d := mustFollow(t, cfg)
	ctx := t.Context()
	if !d.IsRevoked(ctx, "http://issuer.test", "gone") || d.IsRevoked(ctx, "http://issuer.test", "ok") {
		t.Fatal("wrong initial state")
	}

	f.set(func(f *fakeFeed) { f.down = true })
	downAt := time.Now()
	// Within MaxStale of the last answer: the last state.
	if d.IsRevoked(ctx, "http://issuer.test", "ok") {
		t.Fatal("failed closed at once")
	}
	waitFor(t, "fail closed", func() bool { return d.IsRevoked(ctx, "http://issuer.test", "ok") })
	if el := time.Since(downAt); el < cfg.MaxStale-cfg.MaxStale/2 {
		// The last answer can precede the outage by up to the wait.
		t.Errorf("failed closed %v after the outage, before MaxStale allows", el)
	}
	if d.Healthy() {
		t.Error("Healthy while failing closed")
	}

	f.set(func(f *fakeFeed) { f.down = false })
	waitFor(t, "recovery", func() bool { return !d.IsRevoked(ctx, "http://issuer.test", "ok") })
	if !d.Healthy() || !d.IsRevoked(ctx, "http://issuer.test", "gone") {
		t.Error("after recovery: not healthy, or an entry was lost")
	}
	// Revocations made during the outage arrive after the reconnect.
	f.add(jwtEntry("later", time.Now().Add(time.Hour)))
	waitFor(t, "a new revocation", func() bool { return d.IsRevoked(ctx, "http://issuer.test", "later") })
}

func TestDenylist_FailOpen_KeepsLastStateButIsUnhealthy(t *testing.T) {
	f := newFakeFeed(t)
	f.add(jwtEntry("gone", time.Now().Add(time.Hour)))
	cfg := f.config()
	cfg.MaxStale, cfg.FailOpen = 200*time.Millisecond, true
	d := mustFollow(t, cfg)
	f.set(func(f *fakeFeed) { f.down = true })
	waitFor(t, "unhealthy", func() bool { return !d.Healthy() })
	if d.IsRevoked(t.Context(), "http://issuer.test", "ok") || !d.IsRevoked(t.Context(), "http://issuer.test", "gone") {
		t.Error("FailOpen: the last state should still answer")
	}
}

func TestDenylist_Close_StopsFollowing(t *testing.T) {
	f := newFakeFeed(t)
	cfg := f.config()
	cfg.MaxStale = 200 * time.Millisecond
	d := mustFollow(t, cfg)
	d.Close()
	d.Close() // idempotent
	n := f.polls.Load()
	time.Sleep(300 * time.Millisecond)
	if f.polls.Load() != n {
		t.Error("still polling after Close")
	}
	if d.Healthy() || !d.IsRevoked(t.Context(), "http://issuer.test", "x") {
		t.Error("a closed denylist past MaxStale should be unhealthy and fail closed")
	}
}

func TestDenylist_Reset_CallsOnResetKeepsEntriesAndRereads(t *testing.T) {
	f := newFakeFeed(t)
	f.add(jwtEntry("a", time.Now().Add(time.Hour)))
	resets := make(chan struct{}, 10)
	cfg := f.config()
	cfg.OnReset = func() { resets <- struct{}{} }
	d := mustFollow(t, cfg)
	if d.Cursor() != 1 {
		t.Fatalf("cursor %d, want 1", d.Cursor())
	}
	// The server's log is replaced by one without "a" but with "b".
	f.set(func(f *fakeFeed) {
		f.reset = true
		f.entries = []map[string]any{}
	})
	select {
	case <-resets:
	case <-time.After(5 * time.Second):
		t.Fatal("OnReset not called")
	}
	f.set(func(f *fakeFeed) { f.reset = false })
	f.add(jwtEntry("b", time.Now().Add(time.Hour)))
	waitFor(t, "entry after the reset", func() bool { return d.IsRevoked(t.Context(), "http://issuer.test", "b") })
	if !d.IsRevoked(t.Context(), "http://issuer.test", "a") {
		t.Error("a reset dropped an entry: denylisting more is safe, less is not")
	}
}

func TestDenylist_PurgesAfterExpPlusGrace_IgnoresUnknownKinds(t *testing.T) {
	f := newFakeFeed(t)
	clk := newClock()
	f.add(jwtEntry("short", clk.Now().Add(time.Minute)))
	f.add(jwtEntry("long", clk.Now().Add(time.Hour)))
	f.add(map[string]any{"kind": "session", "sid": "s1", "exp": clk.Now().Add(time.Hour).Unix()})
	f.add(map[string]any{"kind": "opaque", "token_hash": "not base64url!", "exp": clk.Now().Add(time.Hour).Unix()})
	cfg := f.config()
	cfg.Now = clk.Now
	cfg.FailOpen = true // the clock jumps by minutes: staleness is not under test
	d := mustFollow(t, cfg)
	if d.Len() != 2 || d.Cursor() != 4 {
		t.Fatalf("Len %d cursor %d, want 2 and 4 (unknown kinds skipped, cursor past them)", d.Len(), d.Cursor())
	}
	// Past exp but within the grace a larger verifier leeway may need.
	clk.Advance(time.Minute + feedPurgeInterval)
	f.add(jwtEntry("tick", clk.Now().Add(time.Hour)))
	waitFor(t, "tick", func() bool { return d.IsRevoked(t.Context(), "http://issuer.test", "tick") })
	if !d.IsRevoked(t.Context(), "http://issuer.test", "short") {
		t.Fatal("purged within the grace period")
	}
	clk.Advance(feedPurgeGrace + feedPurgeInterval)
	f.add(jwtEntry("tock", clk.Now().Add(time.Hour)))
	waitFor(t, "tock", func() bool { return d.IsRevoked(t.Context(), "http://issuer.test", "tock") })
	if d.Len() != 3 || d.IsRevoked(t.Context(), "http://issuer.test", "short") || !d.IsRevoked(t.Context(), "http://issuer.test", "long") {
		t.Error("purged the wrong entry")
	}
}

// A follower must not give up for long: its back-off is capped.
func TestDenylist_Reconnects_WithCappedBackoff(t *testing.T) {
	f := newFakeFeed(t)
	cfg := f.config()
	cfg.FailOpen = true
	d := mustFollow(t, cfg)
	f.set(func(f *fakeFeed) { f.down = true })
	time.Sleep(3 * time.Second) // about 100+200+400+800+1600ms of back-off, jittered
	f.set(func(f *fakeFeed) { f.down = false })
	start := time.Now()
	f.add(jwtEntry("back", time.Now().Add(time.Hour)))
	waitFor(t, "reconnect", func() bool { return d.IsRevoked(t.Context(), "http://issuer.test", "back") })
	if el := time.Since(start); el > feedBackoffMax+time.Second {
		t.Errorf("reconnected after %v, want within the %v back-off cap", el, feedBackoffMax)
	}
}

func TestFeedConfig_Validate(t *testing.T) {
	ok := FeedConfig{Issuer: "https://auth.example", ClientID: "rs", ClientSecret: "s"}
	for _, tc := range []struct {
		name string
		mod  func(*FeedConfig)
		want string // "" = valid
	}{
		{"defaults", func(*FeedConfig) {}, ""},
		{"no issuer", func(c *FeedConfig) { c.Issuer = "" }, "Issuer is required"},
		{"http issuer", func(c *FeedConfig) { c.Issuer = "http://auth.example" }, "InsecureAllowHTTP"},
		{"http endpoint", func(c *FeedConfig) { c.Endpoint = "http://auth.example/feed" }, "InsecureAllowHTTP"},
		{"no secret", func(c *FeedConfig) { c.ClientSecret = "" }, "ClientSecret are required"},
		{"MaxStale too small", func(c *FeedConfig) { c.MaxStale = 30 }, "MaxStale"},
		{"negative MaxStale", func(c *FeedConfig) { c.MaxStale = -time.Second }, "MaxStale"},
		{"negative bytes", func(c *FeedConfig) { c.MaxResponseBytes = -1 }, "MaxResponseBytes"},
	} {
		c := ok
		tc.mod(&c)
		err := c.withDefaults().Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	c := ok.withDefaults()
	if c.Endpoint != "https://auth.example/oauth2/revocations" || c.MaxStale != DefaultMaxStale || c.HTTPClient == nil || c.HTTPClient.Timeout != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func BenchmarkDenylist_IsRevoked(b *testing.B) {
	d := &Denylist{cfg: FeedConfig{MaxStale: time.Hour, Now: time.Now}.withDefaults(), start: time.Now(), jwts: map[denyKey]int64{}}
	for i := range 100_000 {
		d.jwts[denyKey{"https://auth.example", fmt.Sprint("jti-", i)}] = 1 << 40
	}
	jti := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if d.IsRevoked(ctx, "https://auth.example", jti) {
				b.Fatal("revoked")
			}
		}
	})
}
