package server_test

// In-process benchmarks of the refresh_token grant with rotation,
// through the handler on a real SQLite store: client authentication, the
// store reads of the token, its family and the user, one JWT signature
// (ES256) for the access token, a second for the ID token when the scope
// has openid, and the RotateRefresh write transaction (synchronous=FULL:
// one fsync). Compare with BenchmarkToken_ClientCredentials_JWT of the
// same run (authentication and one signature, no store write).
//
// Each chain is seeded with one password grant (the user's hash uses cheap
// argon2 parameters: the seed is not what is measured) and then rotated:
// every request carries the refresh token of the previous answer, so a
// reuse, which would revoke the family, fails the benchmark.

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/cputime"
	"github.com/latch-auth/latch/registry"
)

// refreshBench is a server with a first-party client for the password and
// refresh_token grants, in one access-token format, and the user alice.
type refreshBench struct {
	e *env
	c creds
}

func newRefreshBench(b *testing.B, format string) *refreshBench {
	b.Helper()
	e, _, _ := loginEnv(b, quiet)
	c := e.client(registry.ClientSpec{GrantTypes: []string{"password", "refresh_token"}, Scope: "openid read",
		Audiences: []string{"api"}, AccessTokenFormat: format, FirstParty: true})
	return &refreshBench{e: e, c: c}
}

// seed runs a password grant and returns its refresh token.
func (rb *refreshBench) seed(b *testing.B, scope string) string {
	b.Helper()
	w := rb.e.do("/oauth2/token", rb.c, url.Values{"grant_type": {"password"}, "username": {"alice"},
		"password": {alicePassword}, "scope": {scope}})
	if w.Code != http.StatusOK {
		b.Fatalf("password grant: %d %s", w.Code, w.Body)
	}
	rt := refreshTokenOf(w.Body.Bytes())
	if rt == "" {
		b.Fatalf("password grant without a refresh token: %s", w.Body)
	}
	return rt
}

var refreshKey = []byte(`"refresh_token":"`)

// refreshTokenOf cuts the refresh_token out of a token response without a
// JSON decode, so that the benchmark loop measures the server.
func refreshTokenOf(body []byte) string {
	i := bytes.Index(body, refreshKey)
	if i < 0 {
		return ""
	}
	rest := body[i+len(refreshKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// rotate sends one refresh request and returns the answer's refresh token,
// checking the answer as a client would: 200, a new refresh token, and an
// ID token exactly when wantID.
func (rb *refreshBench) rotate(rt string, wantID bool, auth string) (string, string) {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token",
		strings.NewReader("grant_type=refresh_token&refresh_token="+url.QueryEscape(rt)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	rb.e.h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return "", w.Body.String()
	}
	body := w.Body.Bytes()
	next := refreshTokenOf(body)
	if next == "" || next == rt || bytes.Contains(body, []byte(`"id_token"`)) != wantID {
		return "", w.Body.String()
	}
	return next, ""
}

func basicAuth(c creds) string {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	return r.Header.Get("Authorization")
}

// BenchmarkRefresh rotates one refresh chain b.N times.
//
//	jwt         access token a JWT (one signature), scope "read"
//	jwt_openid  scope "openid read": an ID token too (a second signature)
//	opaque      access token opaque: stored in the same transaction
func BenchmarkRefresh(b *testing.B) {
	for _, tc := range []struct{ name, format, scope string }{
		{"jwt", "jwt", "read"},
		{"jwt_openid", "jwt", "openid read"},
		{"opaque", "opaque", "read"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rb := newRefreshBench(b, tc.format)
			wantID := strings.Contains(tc.scope, "openid")
			auth := basicAuth(rb.c)
			rt := rb.seed(b, tc.scope)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			for b.Loop() {
				var bad string
				if rt, bad = rb.rotate(rt, wantID, auth); bad != "" {
					b.Fatalf("refresh: %s", bad)
				}
			}
			reportProcessCPU(b, cpu0)
		})
	}
}

// BenchmarkRefresh_Parallel rotates GOMAXPROCS chains at once (JWT, no
// openid): the reads and signatures run in parallel, the RotateRefresh
// transactions queue for SQLite's one writer. The chains are seeded before
// the timer starts, one per goroutine.
func BenchmarkRefresh_Parallel(b *testing.B) {
	rb := newRefreshBench(b, "jwt")
	auth := basicAuth(rb.c)
	const maxGoroutines = 256 // RunParallel starts GOMAXPROCS × parallelism (1)
	chains := make(chan string, maxGoroutines)
	for range min(maxGoroutines, runtime.GOMAXPROCS(0)) {
		chains <- rb.seed(b, "read")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var rt string
		select {
		case rt = <-chains:
		default:
			b.Error("more goroutines than seeded chains")
			return
		}
		for pb.Next() {
			var bad string
			if rt, bad = rb.rotate(rt, false, auth); bad != "" {
				b.Errorf("refresh: %s", bad)
				return
			}
		}
	})
}
