package server_test

// In-process benchmarks of the login session lookup, every browser
// request's fixed cost, through the handler on a real SQLite store.
// BenchmarkSession_Lookup is the lookup alone (server.currentSession: one
// store read of the session and one of its user); the page benchmarks put
// it in context: GET / signed in is the lookup plus the account template,
// GET / without a cookie is the handler and redirect without any store
// access, and GET /login without a session is a template render without a
// lookup. The store reads are measured alone too, on the same store.
//
// The clock is fixed, so the once-a-minute touch write never happens here:
// BenchmarkSession_Store/touch is its cost, paid by one request per
// session per minute.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch/server"
)

// quiet drops the env's debug log (a line per request into a buffer that
// would grow with b.N); latch serve logs at info.
func quiet(c *server.Config) { c.Logger = slog.New(slog.DiscardHandler) }

// sessionBench is a server with the user alice signed in: her session
// cookie, as a browser sends it.
type sessionBench struct {
	e      *env
	cookie string // "__Host-latch_session=..."
	idHash []byte
	userID string
}

func newSessionBench(b *testing.B) *sessionBench {
	b.Helper()
	e, _, alice := loginEnv(b, quiet)
	a := newAgent(e)
	raw := a.mustLogin("alice", alicePassword)
	h := sha256.Sum256([]byte(raw)) // the store keys sessions by the ID's hash
	if !sessionExists(b, e, h[:]) {
		b.Fatal("no session stored under the cookie's hash")
	}
	sb := &sessionBench{e: e, cookie: (&http.Cookie{Name: "__Host-latch_session", Value: raw}).String(),
		idHash: h[:], userID: alice.ID}
	// The benchmarks below must measure a signed-in request.
	if w := sb.get("/", true); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="username">alice<`) {
		b.Fatalf("GET / signed in: %d %s", w.Code, w.Body)
	}
	return sb
}

func (sb *sessionBench) request(path string, withCookie bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "192.0.2.10:4711"
	if withCookie {
		r.Header.Set("Cookie", sb.cookie)
	}
	return r
}

func (sb *sessionBench) get(path string, withCookie bool) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	sb.e.h.ServeHTTP(w, sb.request(path, withCookie))
	return w
}

// BenchmarkSession_Lookup is server.currentSession alone: parse and check
// the cookie, SHA-256 it, read the session, read the user, check both.
func BenchmarkSession_Lookup(b *testing.B) {
	sb := newSessionBench(b)
	r := sb.request("/", true)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		_, u, err := server.CurrentSession(sb.e.srv, w, r)
		if err != nil || u == nil {
			b.Fatalf("lookup: %v %v", u, err)
		}
	}
}

// BenchmarkSession_Lookup_Parallel is the lookup from GOMAXPROCS
// goroutines (the store's reader pool shared).
func BenchmarkSession_Lookup_Parallel(b *testing.B) {
	sb := newSessionBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := sb.request("/", true)
		for pb.Next() {
			_, u, err := server.CurrentSession(sb.e.srv, httptest.NewRecorder(), r)
			if err != nil || u == nil {
				b.Errorf("lookup: %v %v", u, err)
				return
			}
		}
	})
}

// BenchmarkSession_Pages: whole requests through the handler.
//
//	account_signed_in   GET / with the session: lookup + account template
//	account_no_cookie   GET / without a cookie: no store access, a 303
//	account_unknown_id  GET / with a well-formed session ID the store does
//	                    not know: one read (a miss), a 303
//	login_no_session    GET /login without a cookie: the login template
//	                    and a fresh CSRF cookie, no store access
func BenchmarkSession_Pages(b *testing.B) {
	sb := newSessionBench(b)
	unknown := (&http.Cookie{Name: "__Host-latch_session", Value: strings.Repeat("A", 43)}).String()
	for _, tc := range []struct {
		name, path string
		cookie     string
		want       int
	}{
		{"account_signed_in", "/", sb.cookie, http.StatusOK},
		{"account_no_cookie", "/", "", http.StatusSeeOther},
		{"account_unknown_id", "/", unknown, http.StatusSeeOther},
		{"login_no_session", "/login", "", http.StatusOK},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, tc.path, nil)
				r.RemoteAddr = "192.0.2.10:4711"
				if tc.cookie != "" {
					r.Header.Set("Cookie", tc.cookie)
				}
				w := httptest.NewRecorder()
				sb.e.h.ServeHTTP(w, r)
				if w.Code != tc.want {
					b.Fatalf("GET %s: %d, want %d", tc.path, w.Code, tc.want)
				}
			}
		})
	}
}

// BenchmarkSession_Store: the store calls of a lookup, alone, on the same
// SQLite store (synchronous=FULL, as latch serve opens it): the session
// read, the user read, and the touch write (one per session per minute).
func BenchmarkSession_Store(b *testing.B) {
	sb := newSessionBench(b)
	ctx := context.Background()
	db := sb.e.db
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Session(ctx, sb.idHash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.User(ctx, sb.userID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("touch", func(b *testing.B) {
		seen := sb.e.clock.Now()
		b.ReportAllocs()
		for b.Loop() {
			seen = seen.Add(time.Microsecond)
			if err := db.TouchSession(ctx, sb.idHash, seen, seen.Add(30*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLogin_Success is a successful POST /login at the parameters
// latch ships (password.DefaultParams, the server's MaxConcurrentLogins
// and throttles at their defaults): the CSRF and Origin checks, the user
// read, one argon2id verification, a new session (one synced write) and
// the 303. BenchmarkLogin_Success_Parallel runs GOMAXPROCS logins at once:
// run with -cpu 1,2 for logins/s per core. B/op is dominated by argon2's
// memory (m = 19 MiB per verification in flight).
func BenchmarkLogin_Success(b *testing.B) { benchLoginSuccess(b, false) }

func BenchmarkLogin_Success_Parallel(b *testing.B) { benchLoginSuccess(b, true) }

func benchLoginSuccess(b *testing.B, parallel bool) {
	e := newEnv(b, quiet) // PasswordParams zero: DefaultParams
	mustCreateUser(b, &registry.Users{Store: e.db, Now: e.clock.Now}, registry.UserSpec{Username: "alice", Password: alicePassword})
	a := newAgent(e)
	form := url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {a.loginToken()}}.Encode()
	loginCookie := a.jar["__Host-latch_login"]
	if loginCookie == nil {
		b.Fatal("GET /login set no __Host-latch_login cookie")
	}
	cookie := (&http.Cookie{Name: loginCookie.Name, Value: loginCookie.Value}).String()
	// A fresh browser each time: the login cookie and the form's token,
	// no session cookie (so no old session to delete).
	login := func() error {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form))
		r.RemoteAddr = "192.0.2.10:4711"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", testIssuer)
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther || !strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), "\n"), "__Host-latch_session=") {
			return fmt.Errorf("login: %d %v", w.Code, w.Header())
		}
		return nil
	}
	if err := login(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := login(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := login(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
