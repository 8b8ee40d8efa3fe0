package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
)

const spaOrigin = "https://spa.example.com"

func (e *env) preflight(path, origin, method string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodOptions, path, nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	r.Header.Set("Access-Control-Request-Headers", "authorization, dpop")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestCORS_DiscoveryAndJWKS_ReadableFromAnyOrigin(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
		w := e.get(p, http.Header{"Origin": {"https://anyone.example"}})
		if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: %d, Access-Control-Allow-Origin %q; want 200, *", p, w.Code, w.Header().Get("Access-Control-Allow-Origin"))
		}
		w = e.preflight(p, "https://anyone.example", "GET")
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("preflight %s: %d, %v", p, w.Code, w.Header())
		}
		if w.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s allows credentials", p)
		}
	}
}

func TestCORS_Preflight_OnlyForOriginsRegisteredOnSomeClient(t *testing.T) {
	e := newEnv(t)
	e.client(registry.ClientSpec{Scope: "read", WebOrigins: []string{"HTTPS://SPA.example.com:443"}})
	for _, p := range []string{"/oauth2/token", "/oauth2/revoke", "/userinfo"} {
		w := e.preflight(p, spaOrigin, "POST")
		h := w.Header()
		if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Fatalf("preflight %s from %s: %d %v", p, spaOrigin, w.Code, h)
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, DPoP" ||
			h.Get("Access-Control-Max-Age") == "" || h.Get("Access-Control-Allow-Credentials") != "" ||
			!slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("preflight %s: headers %v", p, h)
		}
		for _, other := range []string{"https://evil.example", "https://spa.example.com:8443", "null", "http://spa.example.com"} {
			w := e.preflight(p, other, "POST")
			if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "" ||
				w.Header().Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("preflight %s from unregistered %s: %d %v", p, other, w.Code, w.Header())
			}
		}
	}
	// Introspection is for resource servers, never for pages.
	if w := e.preflight("/oauth2/introspect", spaOrigin, "POST"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("introspection preflight allowed %s", spaOrigin)
	}
}

func TestCORS_ActualRequest_OnlyTheAuthenticatedClientsOrigins(t *testing.T) {
	e := newEnv(t)
	mine := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, WebOrigins: []string{spaOrigin}})
	e.client(registry.ClientSpec{Scope: "read", WebOrigins: []string{"https://other.example"}})
	send := func(origin string, c creds) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}}
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	w := send(spaOrigin, mine)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != spaOrigin ||
		w.Header().Get("Access-Control-Allow-Credentials") != "" || !slices.Contains(w.Header().Values("Vary"), "Origin") {
		t.Fatalf("token from the client's own origin: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("Access-Control-Expose-Headers = %q", w.Header().Get("Access-Control-Expose-Headers"))
	}
	// Registered, but on another client: the page may not read the answer.
	if w := send("https://other.example", mine); w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("token from another client's origin: %d, Access-Control-Allow-Origin %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}
	// A failed client authentication names no client: nothing is allowed.
	if w := send(spaOrigin, creds{mine.ID, "wrong"}); w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("bad secret: %d, Access-Control-Allow-Origin %q", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}
	// Without Origin (not a browser's cross-origin request), no CORS headers at all.
	if w := e.do("/oauth2/token", mine, url.Values{"grant_type": {"client_credentials"}}); w.Header().Get("Access-Control-Allow-Origin") != "" || len(w.Header().Values("Vary")) != 0 {
		t.Errorf("no Origin: CORS headers %v", w.Header())
	}
}

func TestCORS_Preflight_SeesAnotherProcesssNewOriginWithinTheClientCacheTTL(t *testing.T) {
	e := newEnv(t)
	c := e.client(registry.ClientSpec{Scope: "read"})
	if w := e.preflight("/oauth2/token", spaOrigin, "POST"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("allowed before registration")
	}
	if _, err := e.clients.Update(context.Background(), c.ID, registry.ClientPatch{WebOrigins: &[]string{spaOrigin}}); err != nil {
		t.Fatal(err)
	}
	// Another process's change: seen once the cache's TTL has passed.
	e.clock.Advance(server.DefaultClientCacheTTL)
	if w := e.preflight("/oauth2/token", spaOrigin, "POST"); w.Header().Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Errorf("not allowed after registration: %v", w.Header())
	}
}

func TestClientSpec_WebOrigins_ValidatedAndCanonical(t *testing.T) {
	e := newEnv(t)
	v, err := e.clients.Create(context.Background(), registry.ClientSpec{Scope: "read",
		WebOrigins: []string{"HTTPS://App.Example.com:443", "https://app.example.com", "http://127.0.0.1:5173"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://app.example.com", "http://127.0.0.1:5173"}; !slices.Equal(v.WebOrigins, want) {
		t.Errorf("WebOrigins = %v, want %v", v.WebOrigins, want)
	}
	for _, bad := range []string{"https://app.example.com/", "http://app.example.com", "app.example.com", "*"} {
		_, err := e.clients.Create(context.Background(), registry.ClientSpec{Scope: "read", WebOrigins: []string{bad}})
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "web origin") {
			t.Errorf("web origin %q: err = %v, want EINVALID naming it", bad, err)
		}
	}
}
