package server_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// TestAdminAPI_UserToken_NeedsAdminRole: a user who signs in through an
// interactive client registered for latch:admin gets that scope only when
// holding the role latch:admin (an application's own "admin" role does
// not count), whether the code comes from /oauth2/authorize or is redeemed
// after the role was taken away; and the admin API refuses a user's
// admin-scoped token as soon as the user loses the role, is disabled or is
// deleted (RFC 9068 §7.2).
func TestAdminAPI_UserToken_NeedsAdminRole(t *testing.T) {
	e, users, alice := loginEnv(t)
	ctx := context.Background()
	if _, err := users.SetRoles(ctx, alice.ID, []string{"admin"}, nil); err != nil {
		t.Fatal(err)
	}
	bob := mustCreateUser(t, users, registry.UserSpec{Username: "bob", Password: alicePassword, Roles: []string{latch.RoleAdmin}})
	console := e.webClient(func(s *registry.ClientSpec) {
		s.Scope = "openid " + latch.ScopeAdmin
		s.Audiences = []string{latch.AudienceAdmin}
	})
	signIn := func(username string) tokenResp {
		t.Helper()
		a := newAgent(e)
		a.mustLogin(username, alicePassword)
		w := a.get(authorizeURL(console, func(v url.Values) { v.Set("scope", "openid "+latch.ScopeAdmin) }))
		if w.Code != http.StatusFound {
			t.Fatalf("%s: authorize: %d %s", username, w.Code, w.Body)
		}
		status, tr := e.redeem(console, callback(t, w).Get("code"))
		if status != 200 {
			t.Fatalf("%s: redeem: %d %+v", username, status, tr)
		}
		return tr
	}
	admin := func(tok string) int {
		return e.adminRequest(http.MethodGet, "/admin/v1/clients", tok, nil).Code
	}

	tr := signIn("alice")
	if slices.Contains(strings.Fields(tr.Scope), latch.ScopeAdmin) {
		t.Errorf("alice, without the role %s, was granted scope %q", latch.RoleAdmin, tr.Scope)
	}
	if code := admin(tr.AccessToken); code != http.StatusForbidden {
		t.Errorf("alice's token at the admin API: %d, want 403", code)
	}

	tr = signIn("bob")
	if !slices.Contains(strings.Fields(tr.Scope), latch.ScopeAdmin) {
		t.Fatalf("bob, with the role, was granted scope %q", tr.Scope)
	}
	if code := admin(tr.AccessToken); code != 200 {
		t.Fatalf("bob's token at the admin API: %d, want 200", code)
	}
	// The role taken away in the store alone: Users.SetRoles also ends
	// bob's sessions and revokes his grants, but tokens outside them
	// (a token-exchange JWT) would live on; the admin API reads the role
	// on every request. A code approved while bob held the role and
	// redeemed after does not grant the scope either.
	code, _ := e.newCode(console, bob.ID, "openid", latch.ScopeAdmin)
	u, err := e.db.User(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.Roles = nil
	if err := e.db.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if code := admin(tr.AccessToken); code != http.StatusForbidden {
		t.Errorf("bob's admin-scoped token after his role was removed: %d, want 403", code)
	}
	if _, late := e.redeem(console, code); late.AccessToken == "" || slices.Contains(strings.Fields(late.Scope), latch.ScopeAdmin) {
		t.Errorf("a code redeemed after the role was removed granted %+v", late)
	}

	// Disabled or deleted: the token is not the user's any more.
	if _, err := users.SetRoles(ctx, bob.ID, []string{latch.RoleAdmin}, nil); err != nil {
		t.Fatal(err)
	}
	tr = signIn("bob")
	if _, err := users.SetDisabled(ctx, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if code := admin(tr.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("a disabled admin's token: %d, want 401", code)
	}

	// A client's own token needs no role.
	ops := e.client(registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	if code := admin(e.token(ops, url.Values{"scope": {latch.ScopeAdmin}})); code != 200 {
		t.Errorf("a client_credentials admin token: %d, want 200", code)
	}
}

// TestClientCreate_InteractiveAdminClient_Warns: registering a client that
// users sign in through (authorization_code, password) with latch:admin
// answers a warning that names the role, through the admin API and
// Clients (the CLI prints it); a client_credentials admin client gets none.
func TestClientCreate_InteractiveAdminClient_Warns(t *testing.T) {
	e := newEnv(t)
	operator := e.client(registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(operator, url.Values{"scope": {latch.ScopeAdmin}})
	interactive := registry.ClientSpec{GrantTypes: []string{"authorization_code"}, Scope: "openid " + latch.ScopeAdmin,
		Audiences: []string{latch.AudienceAdmin}, RedirectURIs: []string{"https://console.example/cb"}}

	w := e.adminRequest(http.MethodPost, "/admin/v1/clients", tok, interactive)
	var v registry.ClientView
	mustJSON(t, w.Body.Bytes(), &v)
	if w.Code != http.StatusCreated || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "role "+latch.RoleAdmin) {
		t.Errorf("admin API, interactive latch:admin client: %d, warnings %q", w.Code, v.Warnings)
	}
	quiet, err := e.clients.Create(context.Background(), registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	if err != nil || len(quiet.Warnings) != 0 {
		t.Errorf("client_credentials latch:admin client: warnings %q, %v", quiet.Warnings, err)
	}
	if w := e.adminRequest(http.MethodGet, "/admin/v1/clients/"+v.ID, tok, nil); strings.Contains(w.Body.String(), "warnings") {
		t.Errorf("a stored client's view carries warnings: %s", w.Body)
	}
}
