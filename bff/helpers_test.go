package bff

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/sqlite"

	"github.com/latch-auth/latch/internal/latchtest"
)

type clock = latchtest.Clock
type lockedBuffer = latchtest.LockedBuffer

func newClock() *clock { return latchtest.NewClock(time.Now().Truncate(time.Second)) }

// upstream is a real HTTP server standing for the API: it records what
// reached it and answers 200 with the path it saw.
type upstream struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.got = append(u.got, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.got...)
}

func (u *upstream) url(t testing.TB, path string) *url.URL {
	p, err := url.Parse(u.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// unitEnv is a BFF for the tests that do not involve the authorization
// server: its metadata names endpoints no test contacts, and sessions are
// written to the real store directly.
type unitEnv struct {
	t     testing.TB
	b     *BFF
	h     http.Handler
	up    *upstream
	clock *clock
	store *sqlite.BFFStore
	logs  *lockedBuffer
}

const (
	unitOrigin   = "https://app.test"
	unitIssuer   = "https://auth.test"
	unitRedirect = unitOrigin + "/bff/callback"
)

func newUnitEnv(t testing.TB, mutate ...func(*Config)) *unitEnv {
	t.Helper()
	e := &unitEnv{t: t, clock: newClock(), store: newSQLiteStore(t), logs: &lockedBuffer{}}
	e.up = newUpstream(t, nil)
	cfg := Config{
		Issuer: unitIssuer, ClientID: "bff", ClientSecret: "secret",
		RedirectURL: unitRedirect, Upstream: e.up.url(t, "/base"),
		Store: e.store, Key: randBytes(t, KeySize), Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	iss := &issuer{md: metadata{
		Issuer:                unitIssuer,
		AuthorizationEndpoint: unitIssuer + "/oauth2/authorize",
		TokenEndpoint:         unitIssuer + "/oauth2/token",
		JWKSURI:               unitIssuer + "/.well-known/jwks.json",
	}}
	b, err := build(cfg, iss)
	if err != nil {
		t.Fatal(err)
	}
	e.b, e.h = b, b.Handler()
	return e
}

// newSession stores s as a logged-in session and returns its cookie value.
func (e *unitEnv) newSession(s session) string {
	e.t.Helper()
	now := e.clock.Now()
	if s.Subject == "" {
		s.Subject = "alice"
	}
	if s.CreatedAt == 0 {
		s.CreatedAt = now.Unix()
	}
	if s.ExpiresAt == 0 {
		s.ExpiresAt = now.Add(e.b.cfg.SessionMaxAge).Unix()
	}
	if s.AccessExp == 0 {
		s.AccessExp = now.Add(10 * time.Minute).Unix()
	}
	value, err := e.b.random(32)
	if err != nil {
		e.t.Fatal(err)
	}
	key := sha256.Sum256([]byte(value))
	sealed, err := e.b.sealSession(key, &s)
	if err != nil {
		e.t.Fatal(err)
	}
	exp := min(now.Add(e.b.cfg.SessionIdle).Unix(), s.ExpiresAt)
	if err := e.store.CreateSession(context.Background(), key[:], sealed, time.Unix(exp, 0), now); err != nil {
		e.t.Fatal(err)
	}
	return value
}

// do serves one request to the BFF, as a browser on its origin would
// send it when header is nil.
func (e *unitEnv) do(method, target, cookie string, header http.Header, body io.Reader) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, unitOrigin+target, body)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: e.b.cfg.CookieName, Value: cookie})
	}
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// sameOrigin are the headers a browser's fetch from the SPA sends on a
// POST, with the SPA's CSRF header.
func sameOrigin() http.Header {
	h := http.Header{}
	h.Set("Origin", unitOrigin)
	h.Set("Sec-Fetch-Site", "same-origin")
	h.Set(CSRFHeader, "1")
	return h
}

// findCookie returns the Set-Cookie of w named name.
func findCookie(t testing.TB, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// rawSetCookie returns the raw Set-Cookie header line for name.
func rawSetCookie(w *httptest.ResponseRecorder, name string) string {
	for _, v := range w.Header().Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}
