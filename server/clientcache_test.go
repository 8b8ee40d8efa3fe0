package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// TestClientCache_ChangesByAnotherProcessWithinTTL: a client deleted or
// re-keyed directly in the store (as the CLI or another node does) stops
// working once the cache TTL has passed, and not a moment later.
func TestClientCache_ChangesByAnotherProcessWithinTTL(t *testing.T) {
	e := newEnv(t) // default TTL 1s on the test clock
	c := e.jwtClient()
	e.token(c, nil) // cached now
	if err := e.db.DeleteClient(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	if w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}}); w.Code != 200 {
		t.Fatalf("within the TTL the cached client still works (documented): %d", w.Code)
	}
	e.clock.Advance(1001 * time.Millisecond)
	if w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}}); w.Code != 401 {
		t.Fatalf("deleted client after the TTL: %d %s", w.Code, w.Body)
	}
}

// TestClientCache_AdminChangesTakeEffectAtOnce: deletion and secret
// rotation through this server's admin API drop the cached client.
func TestClientCache_AdminChangesTakeEffectAtOnce(t *testing.T) {
	e := newEnv(t)
	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(admin, url.Values{"scope": {"latch:admin"}})
	call := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	rotated, deleted := e.jwtClient(), e.jwtClient()
	e.token(rotated, nil)
	e.token(deleted, nil)
	if w := call(http.MethodPost, "/admin/v1/clients/"+rotated.ID+"/rotate-secret"); w.Code != 200 {
		t.Fatalf("rotate: %d", w.Code)
	}
	if w := call(http.MethodDelete, "/admin/v1/clients/"+deleted.ID); w.Code != 204 {
		t.Fatalf("delete: %d", w.Code)
	}
	for name, c := range map[string]creds{"old secret after rotation": rotated, "deleted client": deleted} {
		if w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}}); w.Code != 401 {
			t.Errorf("%s: %d, want 401 at once", name, w.Code)
		}
	}
}
