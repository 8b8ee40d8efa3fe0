package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// adminRequest sends a request to the admin API with the bearer token tok
// and, when body is not nil, that JSON body.
func (e *env) adminRequest(method, path, tok string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = httptest.NewRequest(method, path, strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// reregister deletes the client id through the admin API and registers
// spec under the same id again, as an operator would; it returns the new
// registration's credentials.
func (e *env) reregister(adminTok string, spec registry.ClientSpec) creds {
	e.t.Helper()
	if w := e.adminRequest(http.MethodDelete, "/admin/v1/clients/"+spec.ID, adminTok, nil); w.Code != http.StatusNoContent {
		e.t.Fatalf("admin DELETE: %d %s", w.Code, w.Body)
	}
	w := e.adminRequest(http.MethodPost, "/admin/v1/clients", adminTok, spec)
	if w.Code != http.StatusCreated {
		e.t.Fatalf("admin POST: %d %s", w.Code, w.Body)
	}
	var v registry.ClientView
	mustJSON(e.t, w.Body.Bytes(), &v)
	return creds{v.ID, v.Secret}
}

// TestDeletedClient_ReregisteredSameID_OldTokensStayInactive: a client
// deleted through the admin API and registered again under the same
// client_id, in the same second, does not bring back the tokens of the
// deleted registration: its admin-scoped JWT and opaque token introspect
// exactly {"active":false} (to the new registration too, which may
// introspect tokens of its client_id) and get 401 at the admin API, though
// both were in the server's caches (verified JWTs, opaque tokens, clients)
// before the deletion. The new registration's tokens work.
func TestDeletedClient_ReregisteredSameID_OldTokensStayInactive(t *testing.T) {
	e := newEnv(t)
	e.run()
	operator := e.client(registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	operatorTok := e.token(operator, url.Values{"scope": {latch.ScopeAdmin}})
	rs := e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{latch.AudienceAdmin}})
	adminForm := url.Values{"scope": {latch.ScopeAdmin}, "audience": {latch.AudienceAdmin}}
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			spec := registry.ClientSpec{ID: "reborn-" + format, Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}, AccessTokenFormat: format}
			old := e.client(spec)
			oldTok := e.token(old, adminForm)
			// Into every cache: the client cache, the verified-JWT cache
			// or the opaque token cache, and the admin API's path.
			if format == "opaque" {
				e.cached(rs, oldTok)
			}
			for range 2 {
				if got := e.introspect(old, oldTok); !strings.HasPrefix(got, `{"active":true`) {
					t.Fatalf("the old token before the deletion: %s", got)
				}
				if w := e.adminRequest(http.MethodGet, "/admin/v1/clients", oldTok, nil); w.Code != 200 {
					t.Fatalf("the old token at the admin API before the deletion: %d %s", w.Code, w.Body)
				}
			}

			reborn := e.reregister(operatorTok, spec)
			if reborn.ID != old.ID {
				t.Fatalf("registered again as %q, want %q", reborn.ID, old.ID)
			}
			for name, c := range map[string]creds{"the new registration": reborn, "a resource server": rs} {
				if got := e.introspect(c, oldTok); got != inactive {
					t.Errorf("the deleted registration's token introspected by %s: %s, want exactly %s", name, got, inactive)
				}
			}
			if w := e.adminRequest(http.MethodGet, "/admin/v1/clients", oldTok, nil); w.Code != http.StatusUnauthorized {
				t.Errorf("the deleted registration's token at the admin API: %d %s, want 401", w.Code, w.Body)
			}

			newTok := e.token(reborn, adminForm)
			if got := e.introspect(reborn, newTok); !strings.HasPrefix(got, `{"active":true`) {
				t.Errorf("the new registration's own token: %s", got)
			}
			if w := e.adminRequest(http.MethodGet, "/admin/v1/clients", newTok, nil); w.Code != 200 {
				t.Errorf("the new registration's token at the admin API: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestDeletedClient_ReregisteredSameID_UserTokensDeadEverywhere: the
// tokens a user got through a deleted client stay dead at /userinfo, and
// an opaque token or refresh token of the deleted registration that a
// request in flight stored after the new registration (it authenticated
// the old one just before the deletion) is refused by introspection,
// token exchange and the refresh grant: every check compares
// registrations, not client IDs.
func TestDeletedClient_ReregisteredSameID_UserTokensDeadEverywhere(t *testing.T) {
	e := newEnv(t)
	operator := e.client(registry.ClientSpec{Scope: latch.ScopeAdmin, Audiences: []string{latch.AudienceAdmin}})
	operatorTok := e.token(operator, url.Values{"scope": {latch.ScopeAdmin}})
	spec := registry.ClientSpec{ID: "web", Name: "Web", GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scope: "openid profile read", Audiences: []string{"api"}, RedirectURIs: []string{"https://app.example/cb"}, FirstParty: true}
	old := e.client(spec)
	alice := e.alice()
	code, _ := e.newCode(old, alice)
	status, grant := e.redeem(old, code)
	if status != 200 {
		t.Fatalf("redeem: %d %+v", status, grant)
	}
	bearer := http.Header{"Authorization": {"Bearer " + grant.AccessToken}}
	if w := e.get("/userinfo", bearer); w.Code != 200 {
		t.Fatalf("userinfo before the deletion: %d %s", w.Code, w.Body)
	}
	oldClient, err := e.db.Client(context.Background(), old.ID)
	if err != nil {
		t.Fatal(err)
	}

	spec.AccessTokenFormat = "opaque"
	reborn := e.reregister(operatorTok, spec)
	if w := e.get("/userinfo", bearer); w.Code != http.StatusUnauthorized {
		t.Errorf("userinfo with the deleted registration's token: %d %s, want 401", w.Code, w.Body)
	}

	// Tokens of the old registration stored after the new one exists.
	now := e.clock.Now().Truncate(time.Second)
	access, _ := token.NewOpaque(latch.KindAccess, nil)
	refresh, _ := token.NewOpaque(latch.KindRefresh, nil)
	f := &latch.Family{ID: "fam-late", ClientID: old.ID, UserID: alice, Scope: []string{"read"}, Audience: []string{"api"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	late := latch.Issue{
		Access: &latch.Token{Hash: token.Hash(access), Kind: latch.KindAccess, ID: "late-at", ClientID: old.ID, RegistrationID: oldClient.RegistrationID,
			Subject: f.UserID, Scope: f.Scope, Audience: f.Audience, FamilyID: f.ID, IssuedAt: now, ExpiresAt: now.Add(time.Minute)},
		Refresh: &latch.Token{Hash: token.Hash(refresh), Kind: latch.KindRefresh, ID: "late-rt", ClientID: old.ID, RegistrationID: oldClient.RegistrationID,
			Subject: f.UserID, Scope: f.Scope, Audience: f.Audience, FamilyID: f.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
	}
	if err := e.db.CreateFamily(context.Background(), f, late); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(reborn, access); got != inactive {
		t.Errorf("a late opaque token of the deleted registration introspects as %s", got)
	}
	gw := e.gatewayClient()
	if code, r := e.exchange(gw, exchangeForm(access)); code != 400 || r.Error != "invalid_grant" {
		t.Errorf("token exchange of a late opaque token of the deleted registration: %d %+v, want 400 invalid_grant", code, r)
	}
	if code, r := e.refresh(reborn, refresh); code != 400 || r.Error != "invalid_grant" {
		t.Errorf("refresh with a late refresh token of the deleted registration: %d %+v, want 400 invalid_grant", code, r)
	}
}

// TestDeletedClient_ReregisteredByAnotherProcess_InactiveOnceClientCacheExpires:
// a client deleted and registered again under the same ID by another
// process (the CLI on the same store) leaves the deleted registration's JWT
// inactive here as soon as the server's client cache (1 s) has let go of
// the old registration, though the JWT stays in the verified-JWT cache.
func TestDeletedClient_ReregisteredByAnotherProcess_InactiveOnceClientCacheExpires(t *testing.T) {
	e := newEnv(t)
	spec := registry.ClientSpec{ID: "reborn", Scope: "read", Audiences: []string{"api"}}
	old := e.client(spec)
	tok := e.token(old, nil)
	if got := e.introspect(old, tok); !strings.HasPrefix(got, `{"active":true`) {
		t.Fatalf("before: %s", got)
	}
	if err := e.db.DeleteClient(context.Background(), old.ID); err != nil {
		t.Fatal(err)
	}
	reborn := e.client(spec)
	e.clock.Advance(2 * time.Second)
	if got := e.introspect(reborn, tok); got != inactive {
		t.Errorf("the deleted registration's JWT, introspected by the new one: %s, want exactly %s", got, inactive)
	}
	if got := e.introspect(reborn, e.token(reborn, nil)); !strings.HasPrefix(got, `{"active":true`) {
		t.Errorf("the new registration's JWT: %s", got)
	}
}
