package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// TestIntrospect_Policy_OnlyOwnerOrResourceServerSeesToken: a client
// learns that an access token is active, and its claims, only when it is
// the token's own client, or is registered for latch:introspect and for
// one of the token's audiences; every other confidential client gets
// exactly {"active":false} (RFC 7662 §2.2), for JWT and opaque tokens.
func TestIntrospect_Policy_OnlyOwnerOrResourceServerSeesToken(t *testing.T) {
	e := newEnv(t)
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			owner := e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}, AccessTokenFormat: format})
			tok := e.token(owner, url.Values{"scope": {"read"}})
			callers := []struct {
				name   string
				c      creds
				active bool
			}{
				{"the token's own client", owner, true},
				{"a resource server of the token's audience", e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{"api"}}), true},
				{"a resource server of another audience", e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect, Audiences: []string{"billing"}}), false},
				{"a client of the same audience without latch:introspect", e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"api"}}), false},
				{"an unrelated confidential client", e.jwtClient(), false},
			}
			for _, c := range callers {
				got := e.introspect(c.c, tok)
				if c.active && !strings.HasPrefix(got, `{"active":true`) {
					t.Errorf("%s: %s, want active", c.name, got)
				}
				if !c.active && got != inactive {
					t.Errorf("%s: %s, want exactly %s", c.name, got, inactive)
				}
			}
		})
	}
}

// introspectBearer introspects tok with Authorization: Bearer caller.
func (e *env) introspectBearer(caller, tok string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer "+caller)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// TestIntrospect_BearerCaller_NeedsIntrospectionScopeAndAudience: a
// resource server may authenticate at the introspection endpoint with an
// access token of its own (RFC 7662 §2.1's example) that has the
// latch:introspect scope and the urn:latch:introspect audience, and then
// sees what its client would; a token without the scope is 403
// insufficient_scope, one without the audience, a user's, an inactive or a
// garbage one 401 invalid_token, each with its challenge.
func TestIntrospect_BearerCaller_NeedsIntrospectionScopeAndAudience(t *testing.T) {
	e := newEnv(t)
	owner := e.opaqueClient()
	tok := e.token(owner, url.Values{"scope": {"read"}})
	rs := e.client(registry.ClientSpec{Scope: latch.ScopeIntrospect + " read", Audiences: []string{"api", latch.AudienceIntrospection}})
	good := e.token(rs, url.Values{"scope": {latch.ScopeIntrospect}, "audience": {latch.AudienceIntrospection}})

	var md struct {
		Methods []string `json:"introspection_endpoint_auth_methods_supported"`
	}
	mustJSON(t, e.get("/.well-known/oauth-authorization-server", nil).Body.Bytes(), &md)
	if !slices.Contains(md.Methods, "Bearer") || !slices.Contains(md.Methods, "client_secret_basic") || slices.Contains(md.Methods, "none") {
		t.Errorf("introspection_endpoint_auth_methods_supported = %q, want the client methods and Bearer (RFC 8414 §2)", md.Methods)
	}

	w := e.introspectBearer(good, tok)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"active":true`) || !strings.Contains(w.Body.String(), `"client_id":"`+owner.ID+`"`) {
		t.Fatalf("bearer caller with scope and audience: %d %s", w.Code, w.Body)
	}
	if w := e.introspectBearer(good, e.token(e.client(registry.ClientSpec{Scope: "read", Audiences: []string{"billing"}}), nil)); w.Code != 200 || strings.TrimSpace(w.Body.String()) != inactive {
		t.Errorf("bearer caller, token of an audience it does not serve: %d %s", w.Code, w.Body)
	}

	noScope := e.token(rs, url.Values{"scope": {"read"}, "audience": {latch.AudienceIntrospection}})
	noAudience := e.token(rs, url.Values{"scope": {latch.ScopeIntrospect}, "audience": {"api"}})
	revoked := e.token(rs, url.Values{"scope": {latch.ScopeIntrospect}, "audience": {latch.AudienceIntrospection}})
	e.do("/oauth2/revoke", rs, url.Values{"token": {revoked}})
	web := e.webClient(func(s *registry.ClientSpec) {
		s.GrantTypes = append(s.GrantTypes, "password")
		s.Scope += " " + latch.ScopeIntrospect
		s.Audiences = []string{latch.AudienceIntrospection}
	})
	e.alice()
	_, users := e.grant(web, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {latch.ScopeIntrospect}, "audience": {latch.AudienceIntrospection}})
	if users.AccessToken == "" {
		t.Fatalf("password grant: %+v", users)
	}
	tests := []struct {
		name   string
		caller string
		status int
		code   string
	}{
		{"without the scope", noScope, 403, "insufficient_scope"},
		{"without the audience", noAudience, 401, "invalid_token"},
		{"revoked", revoked, 401, "invalid_token"},
		{"a user's token", users.AccessToken, 401, "invalid_token"},
		{"garbage", "garbage", 401, "invalid_token"},
	}
	for _, tt := range tests {
		w := e.introspectBearer(tt.caller, tok)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), `"error":"`+tt.code+`"`) ||
			!strings.Contains(w.Header().Get("WWW-Authenticate"), `Bearer realm="latch", error="`+tt.code+`"`) {
			t.Errorf("%s: %d %s %q, want %d %s with its Bearer challenge", tt.name, w.Code, w.Body, w.Header().Values("WWW-Authenticate"), tt.status, tt.code)
		}
	}
}
