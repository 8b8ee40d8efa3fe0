package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/token"
)

func withTokenCacheSize(n int) func(*server.Config) {
	return func(c *server.Config) { c.TokenCacheSize = n }
}

// tokenCacheHits reads latch_token_cache_lookups_total{result="hit"} from
// /metrics.
func (e *env) tokenCacheHits() int {
	e.t.Helper()
	w := e.get("/metrics", nil)
	m := regexp.MustCompile(`(?m)^latch_token_cache_lookups_total\{result="hit"\} (\d+)$`).FindStringSubmatch(w.Body.String())
	if m == nil {
		e.t.Fatalf("no token cache hit counter in /metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// cachedOpaque issues an opaque token to owner and caches it (cached).
func (e *env) cachedOpaque(owner, rs creds) string {
	e.t.Helper()
	tok := e.token(owner, nil)
	e.cached(rs, tok)
	return tok
}

// cached introspects tok as rs until an answer comes from the token cache
// (the feed's first read of the log must have completed first).
func (e *env) cached(rs creds, tok string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for before := e.tokenCacheHits(); ; {
		if got := e.introspect(rs, tok); !strings.HasPrefix(got, `{"active":true`) {
			e.t.Fatalf("introspection of a fresh token: %s", got)
		}
		if e.tokenCacheHits() > before {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the token cache never answered within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventuallyInactive introspects tok until it is inactive, failing after
// within; it returns how long that took.
func (e *env) eventuallyInactive(rs creds, tok string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		if e.introspect(rs, tok) == `{"active":false}` {
			return time.Since(start)
		}
		if time.Since(start) > within {
			e.t.Fatalf("token still active %v after it was deleted from the store", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTokenCache_RevokedThroughServer_InactiveAtOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	owner, rs := e.opaqueClient(), e.resourceServer()
	tok := e.cachedOpaque(owner, rs)

	if w := e.do("/oauth2/revoke", owner, url.Values{"token": {tok}}); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("introspection right after the revocation was acknowledged = %s, want exactly {\"active\":false}", got)
	}
	if code, r := e.exchange(e.gatewayClient(), exchangeForm(tok)); code != 400 || r.Error != "invalid_grant" {
		t.Fatalf("token exchange of a revoked token: %d %q, want 400 invalid_grant", code, r.Error)
	}
}

func TestTokenCache_DeletedClientThroughAdmin_InactiveAtOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	owner, rs := e.opaqueClient(), e.resourceServer()
	tok := e.cachedOpaque(owner, rs)

	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	r := httptest.NewRequest(http.MethodDelete, "/admin/v1/clients/"+owner.ID, nil)
	r.Header.Set("Authorization", "Bearer "+e.token(admin, url.Values{"scope": {"latch:admin"}}))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 204 {
		t.Fatalf("admin delete: %d %s", w.Code, w.Body)
	}
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("introspection right after the client's deletion = %s, want exactly {\"active\":false}", got)
	}
}

// A family revoked through this server (code reuse, refresh-token reuse,
// sign-out everywhere) takes its cached opaque access tokens with it at
// once.
func TestTokenCache_FamilyRevokedThroughServer_InactiveAtOnce(t *testing.T) {
	opaqueWeb := func(s *registry.ClientSpec) { s.AccessTokenFormat = "opaque" }
	for _, tc := range []struct {
		name string
		// revoke revokes the family of the tokens it returns, which it
		// has cached.
		run func(e *env, web, rs creds, user string) (access string)
	}{
		{"authorization code reused", func(e *env, web, rs creds, user string) string {
			code, _ := e.newCode(web, user, "read")
			_, tr := e.redeem(web, code)
			e.cached(rs, tr.AccessToken)
			if status, _ := e.redeem(web, code); status != 400 {
				e.t.Fatalf("second redemption of a code: %d, want 400", status)
			}
			return tr.AccessToken
		}},
		{"refresh token reused after the grace window", func(e *env, web, rs creds, user string) string {
			code, _ := e.newCode(web, user, "read")
			_, tr1 := e.redeem(web, code)
			_, tr2 := e.refresh(web, tr1.RefreshToken)
			e.clock.Advance(time.Minute)
			e.cached(rs, tr2.AccessToken)
			if status, _ := e.refresh(web, tr1.RefreshToken); status != 400 {
				e.t.Fatalf("reuse of a rotated refresh token: %d, want 400", status)
			}
			return tr2.AccessToken
		}},
		{"signed out everywhere by the admin API", func(e *env, web, rs creds, user string) string {
			code, _ := e.newCode(web, user, "read")
			_, tr := e.redeem(web, code)
			e.cached(rs, tr.AccessToken)
			admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
			r := httptest.NewRequest(http.MethodPost, "/admin/v1/users/"+user+"/logout", nil)
			r.Header.Set("Authorization", "Bearer "+e.token(admin, url.Values{"scope": {"latch:admin"}}))
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code != 200 {
				e.t.Fatalf("admin logout: %d %s", w.Code, w.Body)
			}
			return tr.AccessToken
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.run()
			web, rs := e.webClient(opaqueWeb), e.resourceServer()
			access := tc.run(e, web, rs, e.alice())
			if !strings.HasPrefix(access, "lt_at_") {
				t.Fatalf("access token %q is not opaque", access)
			}
			if got := e.introspect(rs, access); got != `{"active":false}` {
				t.Fatalf("introspection right after the family's revocation = %s, want exactly {\"active\":false}", got)
			}
		})
	}
}

// Another process (the CLI, another node) writes to the store directly;
// the feed's reads of the revocation log keep the cache in step.
func TestTokenCache_DeletedByAnotherProcess_InactiveWithinAPollOfTheLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delete func(e *env, owner creds, tok string) error
	}{
		{"RFC 7009 revocation", func(e *env, _ creds, tok string) error {
			return e.db.Revoke(context.Background(), &latch.Revocation{Kind: latch.RevokeOpaque,
				TokenHash: token.Hash(tok), ExpiresAt: e.clock.Now().Add(time.Hour), RevokedAt: e.clock.Now()})
		}},
		{"client deleted", func(e *env, owner creds, _ string) error {
			return e.db.DeleteClient(context.Background(), owner.ID)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.run()
			owner, rs := e.opaqueClient(), e.resourceServer()
			tok := e.cachedOpaque(owner, rs)
			if err := tc.delete(e, owner, tok); err != nil {
				t.Fatal(err)
			}
			took := e.eventuallyInactive(rs, tok, 5*time.Second)
			t.Logf("inactive %v after the other process's write", took)
		})
	}
}

// When the feed stops reading the log, the cache stops answering: a
// deletion it cannot learn of must not leave the token active.
func TestTokenCache_FeedStopped_CacheBypassed(t *testing.T) {
	e := newEnv(t)
	stop := e.run()
	owner, rs := e.opaqueClient(), e.resourceServer()
	tok := e.cachedOpaque(owner, rs)

	stop()
	e.clock.Advance(2 * time.Second)
	if err := e.db.Revoke(context.Background(), &latch.Revocation{Kind: latch.RevokeOpaque,
		TokenHash: token.Hash(tok), ExpiresAt: e.clock.Now().Add(time.Hour), RevokedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("with the feed stopped, introspection after another process's revocation = %s, want exactly {\"active\":false}", got)
	}
}

func TestTokenCache_Disabled_EveryIntrospectionReadsTheStore(t *testing.T) {
	e := newEnv(t, withTokenCacheSize(-1))
	e.run()
	owner, rs := e.opaqueClient(), e.resourceServer()
	tok := e.token(owner, nil)
	e.introspect(rs, tok)
	if err := e.db.Revoke(context.Background(), &latch.Revocation{Kind: latch.RevokeOpaque,
		TokenHash: token.Hash(tok), ExpiresAt: e.clock.Now().Add(time.Hour), RevokedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(rs, tok); got != `{"active":false}` {
		t.Fatalf("with the cache disabled, introspection after another process's revocation = %s", got)
	}
	if w := e.get("/metrics", nil); regexp.MustCompile(`latch_token_cache_`).MatchString(w.Body.String()) {
		t.Error("a disabled cache still exports its series")
	}
}

// A JWT verified once is not verified again, but a key retired with
// `latch keys retire --now` (a compromise) takes its tokens with it at
// once, cached or not.
func TestVerifiedJWTCache_KeyRetiredNow_TokensInactiveAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	ctx := context.Background()
	tok := e.token(c, nil)
	for range 3 {
		if got := e.introspect(c, tok); !strings.HasPrefix(got, `{"active":true`) {
			t.Fatalf("fresh JWT: %s", got)
		}
	}
	h, _, _ := segments(t, tok)
	if _, err := e.keys.Rotate(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Retire(ctx, h["kid"].(string), true); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(c, tok); got != `{"active":false}` {
		t.Fatalf("JWT of a key retired with --now, verified before = %s, want exactly {\"active\":false}", got)
	}
}

// The cache holds verifications, never the denylist: a JWT revoked by
// another process after it was verified is inactive at the next request.
func TestVerifiedJWTCache_RevokedByAnotherProcess_InactiveAtOnce(t *testing.T) {
	for _, size := range []int{0, -1} {
		e := newEnv(t, withTokenCacheSize(size))
		c := e.jwtClient()
		tok := e.token(c, nil)
		for range 3 {
			if got := e.introspect(c, tok); !strings.HasPrefix(got, `{"active":true`) {
				t.Fatalf("fresh JWT: %s", got)
			}
		}
		if err := e.db.Revoke(context.Background(), &latch.Revocation{Kind: latch.RevokeJWT, Issuer: testIssuer,
			JTI: jtiOf(t, tok), ExpiresAt: e.clock.Now().Add(time.Hour), RevokedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if got := e.introspect(c, tok); got != `{"active":false}` {
			t.Fatalf("cache size %d: JWT revoked by another process, verified before = %s, want exactly {\"active\":false}", size, got)
		}
		// Past its exp it is inactive too, whatever was cached.
		e.clock.Advance(time.Hour)
		if got := e.introspect(c, e.token(c, nil)); !strings.HasPrefix(got, `{"active":true`) {
			t.Fatalf("a new JWT an hour later: %s", got)
		}
	}
}

func TestVerifiedJWTCache_ExpiredTokenInactive(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	tok := e.token(c, nil)
	if got := e.introspect(c, tok); !strings.HasPrefix(got, `{"active":true`) {
		t.Fatalf("fresh JWT: %s", got)
	}
	e.clock.Advance(10 * time.Minute) // the default lifetime
	if got := e.introspect(c, tok); got != `{"active":false}` {
		t.Fatalf("JWT at its exp, verified before = %s, want exactly {\"active\":false}", got)
	}
}
