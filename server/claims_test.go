package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/throttle"
)

// elodie creates a user with an email and every profile claim.
func (e *env) elodie() *registry.UserView {
	e.t.Helper()
	return mustCreateUser(e.t, newUsers(e), registry.UserSpec{Username: "elodie", Password: "correct horse battery",
		Groups: []string{"staff"}, ProfileSpec: registry.ProfileSpec{Email: "Elodie@Example.com", EmailVerified: true,
			Profile: latch.Profile{Name: "Élodie Martin", GivenName: "Élodie", FamilyName: "Martin", Nickname: "lo",
				Picture: "https://img.example/e.png", Website: "https://elodie.example", Locale: "fr-FR", Zoneinfo: "Europe/Paris"}}})
}

var (
	emailClaims   = []string{"email", "email_verified"}
	profileClaims = []string{"preferred_username", "name", "given_name", "family_name", "nickname", "picture",
		"website", "locale", "zoneinfo", "updated_at"}
)

func TestIDTokenAndUserinfo_ReleaseEmailAndProfileClaimsByScope(t *testing.T) {
	e := newEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Scope = "openid read" })
	u := e.elodie()
	for _, tc := range []struct {
		scope      []string
		want, none []string
	}{
		{[]string{"openid"}, nil, append(emailClaims, profileClaims...)},
		{[]string{"openid", "email"}, emailClaims, profileClaims},
		{[]string{"openid", "profile"}, profileClaims, emailClaims},
		{[]string{"openid", "profile", "email", "read"}, append(emailClaims, profileClaims...), nil},
	} {
		code, _ := e.newCode(c, u.ID, tc.scope...)
		status, tr := e.redeem(c, code)
		if status != 200 {
			t.Fatalf("%v: redeem: %d %+v", tc.scope, status, tr)
		}
		w := e.get("/userinfo", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
		var info map[string]any
		mustJSON(t, w.Body.Bytes(), &info)
		for where, claims := range map[string]map[string]any{"ID token": payload(t, tr.IDToken), "userinfo": info} {
			for _, k := range tc.want {
				if _, ok := claims[k]; !ok {
					t.Errorf("%v: %s lacks %s: %v", tc.scope, where, k, claims)
				}
			}
			for _, k := range tc.none {
				if v, ok := claims[k]; ok {
					t.Errorf("%v: %s has %s = %v", tc.scope, where, k, v)
				}
			}
			if len(tc.want) == len(emailClaims)+len(profileClaims) {
				for k, want := range map[string]any{"email": "Elodie@Example.com", "email_verified": true,
					"name": "Élodie Martin", "given_name": "Élodie", "family_name": "Martin", "nickname": "lo",
					"preferred_username": "elodie", "picture": "https://img.example/e.png",
					"website": "https://elodie.example", "locale": "fr-FR", "zoneinfo": "Europe/Paris",
					"updated_at": float64(u.UpdatedAt.Unix())} {
					if claims[k] != want {
						t.Errorf("%s %s = %v, want %v", where, k, claims[k], want)
					}
				}
			}
		}
		// RFC 9068 §2.2.3.1: the access token carries groups, not identity.
		at := payload(t, tr.AccessToken)
		for _, k := range append(emailClaims, profileClaims...) {
			if v, ok := at[k]; ok {
				t.Errorf("%v: access token has %s = %v", tc.scope, k, v)
			}
		}
		if g, _ := at["groups"].([]any); len(g) != 1 {
			t.Errorf("%v: access token groups = %v", tc.scope, at["groups"])
		}
	}
}

func TestIDToken_NoEmail_ReleasesNoEmailClaims(t *testing.T) {
	e := newEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Scope = "openid" })
	uid := e.alice()
	code, _ := e.newCode(c, uid, "openid", "email")
	_, tr := e.redeem(c, code)
	id := payload(t, tr.IDToken)
	if _, ok := id["email_verified"]; ok {
		t.Errorf("ID token of a user without email has email_verified: %v", id)
	}
}

func TestScopeRule_TokenEndpoint(t *testing.T) {
	e := newEnv(t)
	cc := func(s string) func(*registry.ClientSpec) {
		return func(spec *registry.ClientSpec) {
			spec.GrantTypes = []string{"client_credentials"}
			spec.Scope = s
			spec.FirstParty = false
			spec.RedirectURIs = nil
		}
	}
	oidc := e.webClient(cc("openid read"))
	plain := e.webClient(cc("read"))
	e.webClient(cc("payments:write")) // known: registered for another client
	for _, tc := range []struct {
		name   string
		c      creds
		scope  string
		status int
		want   string // the granted scope, or the error
	}{
		{"oidc scopes are known to openid clients", oidc, "openid email profile", 200, "openid email profile"},
		{"every oidc scope", oidc, "address phone offline_access read", 200, "address phone offline_access read"},
		{"unknown scopes are dropped", oidc, "read frobnicate openid x:y", 200, "read openid"},
		{"oidc scope without openid registration", plain, "read email", 400, "invalid_scope"},
		{"latch:admin is known", oidc, "read latch:admin", 400, "invalid_scope"},
		{"another client's scope is known", oidc, "read payments:write", 400, "invalid_scope"},
		{"only unknown scopes", plain, "frobnicate", 400, "invalid_scope"},
		{"unknown dropped for a plain client too", plain, "read groups", 200, "read"},
	} {
		status, tr := e.grant(tc.c, url.Values{"grant_type": {"client_credentials"}, "scope": {tc.scope}})
		got := tr.Scope
		if status != 200 {
			got = tr.Error
		}
		if status != tc.status || got != tc.want {
			t.Errorf("%s: %d %q (%s), want %d %q", tc.name, status, got, tr.Description, tc.status, tc.want)
		}
		if status == 200 {
			if at := payload(t, tr.AccessToken); at["scope"] != tc.want {
				t.Errorf("%s: access token scope %v, want %q", tc.name, at["scope"], tc.want)
			}
		}
	}
}

func TestScopeRule_RefuseUnknownScopes(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.RefuseUnknownScopes = true })
	c := e.webClient(func(s *registry.ClientSpec) {
		s.GrantTypes, s.Scope, s.RedirectURIs, s.FirstParty = []string{"client_credentials"}, "openid read", nil, false
	})
	status, tr := e.grant(c, url.Values{"grant_type": {"client_credentials"}, "scope": {"read frobnicate"}})
	if status != 400 || tr.Error != "invalid_scope" || !strings.Contains(tr.Description, "frobnicate") {
		t.Errorf("strict, unknown scope: %d %+v", status, tr)
	}
	status, tr = e.grant(c, url.Values{"grant_type": {"client_credentials"}, "scope": {"read email"}})
	if status != 200 || tr.Scope != "read email" {
		t.Errorf("strict, oidc scope: %d %+v", status, tr)
	}
}

func TestScopeRule_Authorize_DropsUnknownAndSaysSo(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Scope = "openid read" })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("scope", "openid email profile frobnicate") }))
	q := callback(t, w)
	if q.Get("code") == "" {
		t.Fatalf("authorize: %v", q)
	}
	status, tr := e.redeem(c, q.Get("code"))
	if status != 200 || tr.Scope != "openid email profile" {
		t.Fatalf("redeem: %d scope %q, want %q", status, tr.Scope, "openid email profile")
	}
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("scope", "openid latch:admin") }))
	if q := callback(t, w); q.Get("error") != "invalid_scope" {
		t.Errorf("authorize with a known, unregistered scope: %v", q)
	}
}

func TestLogin_ByEmail_AsConfigured(t *testing.T) {
	for _, tc := range []struct {
		name            server.LoginName
		byName, byEmail bool
		label           string
	}{
		{"", true, true, "Username or email"},
		{server.LoginUsername, true, false, "Username"},
		{server.LoginEmail, false, true, "Email"},
	} {
		e := newEnv(t, func(c *server.Config) { c.PasswordParams = cheapParams; c.LoginName = tc.name })
		e.elodie()
		a := newAgent(e)
		if body := a.get("/login").Body.String(); !strings.Contains(body, `<label for="username">`+tc.label+`</label>`) {
			t.Errorf("%q: login page label, want %q", tc.name, tc.label)
		}
		for name, want := range map[string]bool{"elodie": tc.byName, "ELODIE@example.COM": tc.byEmail} {
			w := a.login(name, "correct horse battery", "")
			if got := w.Code == http.StatusSeeOther; got != want {
				t.Errorf("%q: login as %q: %d, want success %v", tc.name, name, w.Code, want)
			}
		}
	}
}

func TestLogin_UsernameAndEmailShareOneAccountBackoff(t *testing.T) {
	e := newEnv(t, func(c *server.Config) {
		c.PasswordParams = cheapParams
		c.LoginAccountThrottle = throttle.Config{Threshold: 2}
		c.LoginIPThrottle = throttle.Config{Threshold: 100}
	})
	e.elodie()
	a := newAgent(e)
	for _, name := range []string{"elodie", "elodie@example.com", "Elodie"} {
		a.login(name, "wrong password!!", "")
	}
	if w := a.login("ELODIE@EXAMPLE.COM", "correct horse battery", ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("login by email after failures by username and email: %d, want 429", w.Code)
	}
}

func TestUsers_EmailAndUsernameNeverNameTwoUsers(t *testing.T) {
	e := newEnv(t)
	users := newUsers(e)
	ctx := context.Background()
	e.elodie()
	for name, spec := range map[string]registry.UserSpec{
		"email of another, other case": {Username: "bob", ProfileSpec: registry.ProfileSpec{Email: "ELODIE@example.com"}},
		"username is another's email":  {Username: "elodie@example.com"},
		"email is another's username":  {Username: "bob", ProfileSpec: registry.ProfileSpec{Email: "elodie"}},
	} {
		spec.Password = "correct horse battery"
		if _, err := users.Create(ctx, spec); latch.ErrorCode(err) != latch.ECONFLICT && name != "email is another's username" {
			t.Errorf("%s: %v, want ECONFLICT", name, err)
		} else if name == "email is another's username" && latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("%s: %v, want EINVALID (not an address)", name, err)
		}
	}
	mustCreateUser(t, users, registry.UserSpec{Username: "bob@example.org", Password: "correct horse battery"})
	if _, err := users.SetProfile(ctx, "elodie", registry.ProfileSpec{Email: "BOB@example.org"}); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("SetProfile(email = another's username): %v, want ECONFLICT", err)
	}
	if _, err := users.SetProfile(ctx, "elodie", registry.ProfileSpec{EmailVerified: true}); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("SetProfile(email_verified without email): %v, want EINVALID", err)
	}
	v, err := users.SetProfile(ctx, "Elodie@Example.com", registry.ProfileSpec{Email: "lo@example.fr", Profile: latch.Profile{Name: "Lo"}})
	if err != nil || v.Email != "lo@example.fr" || v.EmailVerified || v.Name != "Lo" || v.GivenName != "" {
		t.Fatalf("SetProfile by email: %+v, %v", v, err)
	}
	if v, err := users.Get(ctx, "LO@example.fr"); err != nil || v.Username != "elodie" {
		t.Errorf("Get by email: %+v, %v", v, err)
	}
}
