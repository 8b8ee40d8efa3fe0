package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// TestAdminPatchClient_ChangesRegistrationKeepsSecret: PATCH
// /admin/v1/clients/{id} changes what it names, keeps the rest and the
// secret, takes effect at once on this server, and refuses what create
// refuses with the same 400.
func TestAdminPatchClient_ChangesRegistrationKeepsSecret(t *testing.T) {
	e := newEnv(t)
	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(admin, url.Values{"scope": {"latch:admin"}})
	patch := func(id, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPatch, "/admin/v1/clients/"+id, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	// Registered without an audience: it cannot get a token.
	c := e.client(registry.ClientSpec{Name: "svc", Scope: "read"})
	cc := url.Values{"grant_type": {"client_credentials"}}
	if w := e.do("/oauth2/token", c, cc); w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_target") {
		t.Fatalf("before the patch: %d %s", w.Code, w.Body)
	}
	w := patch(c.ID, `{"audiences":["api"],"scope":"read write"}`)
	if w.Code != 200 {
		t.Fatalf("patch: %d %s", w.Code, w.Body)
	}
	var v registry.ClientView
	mustJSON(t, w.Body.Bytes(), &v)
	if v.Secret != "" || v.Name != "svc" || v.Scope != "read write" || len(v.Audiences) != 1 || v.Audiences[0] != "api" {
		t.Fatalf("patched view: %+v", v)
	}
	if w := e.do("/oauth2/token", c, url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}}); w.Code != 200 {
		t.Fatalf("after the patch, with the old secret: %d %s", w.Code, w.Body)
	}

	for name, tc := range map[string]struct {
		id, body string
		status   int
		detail   string
	}{
		"bad format":              {c.ID, `{"access_token_format":"xml"}`, 400, "must be jwt or opaque"},
		"code without redirect":   {c.ID, `{"grant_types":["authorization_code"]}`, 400, "redirect URI"},
		"password not first-pty":  {c.ID, `{"grant_types":["password"]}`, 400, "first-party"},
		"bad scope":               {c.ID, `{"scope":"a  b"}`, 400, "scope"},
		"id cannot change":        {c.ID, `{"client_id":"other"}`, 400, "unknown field"},
		"unknown client":          {"nobody", `{"scope":"read"}`, 404, ""},
		"public client_credentls": {c.ID, `{"token_endpoint_auth_method":"none"}`, 400, "client_credentials"},
	} {
		w := patch(tc.id, tc.body)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.detail) || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	got, err := e.db.Client(context.Background(), c.ID)
	if err != nil || got.AccessTokenFormat != "jwt" || len(got.GrantTypes) != 1 {
		t.Fatalf("a refused patch changed the client: %+v %v", got, err)
	}
}

// TestClientsUpdate_SecretOnlyWhenNewlyNeeded: moving a public client to
// client_secret_basic gives it a secret, shown once; moving it back drops
// the secret's hash.
func TestClientsUpdate_SecretOnlyWhenNewlyNeeded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pub, err := e.clients.Create(ctx, registry.ClientSpec{AuthMethod: "none", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"http://127.0.0.1:9/cb"}, Audiences: []string{"api"}})
	if err != nil {
		t.Fatal(err)
	}
	basic := "client_secret_basic"
	v, err := e.clients.Update(ctx, pub.ID, registry.ClientPatch{AuthMethod: &basic})
	if err != nil || v.Secret == "" {
		t.Fatalf("to client_secret_basic: %+v %v", v, err)
	}
	none := "none"
	v, err = e.clients.Update(ctx, pub.ID, registry.ClientPatch{AuthMethod: &none})
	if err != nil || v.Secret != "" {
		t.Fatalf("back to none: %+v %v", v, err)
	}
	if c, _ := e.db.Client(ctx, pub.ID); len(c.SecretHash) != 0 {
		t.Fatal("a public client kept a secret hash")
	}
}

func TestClientWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    registry.ClientView
		want string
	}{
		{"no audience", registry.ClientView{ID: "x", GrantTypes: []string{"client_credentials"}}, "no audience"},
		{"code without audience", registry.ClientView{ID: "x", GrantTypes: []string{"authorization_code", "refresh_token"}}, "no audience"},
		{"refresh alone", registry.ClientView{ID: "x", GrantTypes: []string{"refresh_token"}, Audiences: []string{"api"}}, "refresh_token alone"},
		{"fine", registry.ClientView{ID: "x", GrantTypes: []string{"client_credentials"}, Audiences: []string{"api"}}, ""},
	} {
		got := strings.Join(registry.ClientWarnings(&tc.v), "\n")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
