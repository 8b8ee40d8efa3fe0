package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
)

// Edges found in review: each of these failed before its fix.

func TestCode_IssuedBeforeSignOutOrPasswordChange_IsDeadAfterIt(t *testing.T) {
	t.Run("SignOut", func(t *testing.T) {
		e, _, _ := loginEnv(t)
		c := e.webClient()
		a := newAgent(e)
		a.mustLogin("alice", alicePassword)
		code := callback(t, a.get(authorizeURL(c))).Get("code")
		tok := csrfOf(t, a.get("/").Body.String())
		if w := a.post("/logout", url.Values{"csrf_token": {tok}}); w.Code != http.StatusSeeOther {
			t.Fatalf("logout: %d", w.Code)
		}
		if status, tr := e.redeem(c, code); status != 400 || tr.Error != "invalid_grant" {
			t.Fatalf("code of a signed-out session: %d %+v", status, tr)
		}
	})
	t.Run("PasswordChange", func(t *testing.T) {
		e, users, alice := loginEnv(t)
		c := e.webClient()
		a := newAgent(e)
		a.mustLogin("alice", alicePassword)
		code := callback(t, a.get(authorizeURL(c))).Get("code")
		e.clock.Advance(time.Second)
		if _, err := users.SetPassword(context.Background(), alice.ID, "another long passphrase"); err != nil {
			t.Fatal(err)
		}
		if status, tr := e.redeem(c, code); status != 400 || tr.Error != "invalid_grant" {
			t.Fatalf("code from before a password change: %d %+v", status, tr)
		}
	})
}

func TestAuthorize_MaxAge_AsksForThePasswordOnceThenIssues(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	e.clock.Advance(2 * time.Minute)
	for _, maxAge := range []string{"60", "0"} {
		w := a.get(authorizeURL(c, func(v url.Values) { v.Set("max_age", maxAge) }))
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || loc.Path != "/login" || loc.Query().Get("prompt") != "login" {
			t.Fatalf("max_age=%s exceeded: %d %q, want the login form", maxAge, w.Code, w.Header().Get("Location"))
		}
		w = a.login("alice", alicePassword, loc.Query().Get("return_to"))
		w = a.get(w.Header().Get("Location"))
		if w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
			t.Fatalf("max_age=%s after the new login: %d %q", maxAge, w.Code, w.Header().Get("Location"))
		}
		e.clock.Advance(2 * time.Minute)
	}
	// A huge max_age is not an overflow into "always too old".
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("max_age", "10000000000") }))
	if w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
		t.Fatalf("max_age of 317 years: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// max_age=0 asks for the password even within the first second after a
// login (whole seconds compared with > never exceeded 0 then), and a
// max_age of 1 is exceeded at 1.5 s.
func TestAuthorize_MaxAgeZero_ForcesLoginWithinTheSameSecond(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	for _, tc := range []struct {
		maxAge string
		after  time.Duration
	}{{"0", 0}, {"0", 500 * time.Millisecond}, {"1", 1500 * time.Millisecond}} {
		a := newAgent(e)
		a.mustLogin("alice", alicePassword)
		e.clock.Advance(tc.after)
		w := a.get(authorizeURL(c, func(v url.Values) { v.Set("max_age", tc.maxAge) }))
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || loc.Path != "/login" || loc.Query().Get("prompt") != "login" {
			t.Fatalf("max_age=%s %v after the login: %d %q, want the login form", tc.maxAge, tc.after, w.Code, w.Header().Get("Location"))
		}
	}
	// Within max_age, no new login.
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	e.clock.Advance(time.Second)
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("max_age", "1") }))
	if w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
		t.Fatalf("max_age=1 right after the login: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestAuthorize_IDTokenHintOfAnotherUser_NoSilentCode(t *testing.T) {
	e, users, _ := loginEnv(t)
	mustCreateUser(t, users, registry.UserSpec{Username: "bob", Password: "bob's long passphrase"})
	c := e.webClient()
	bob := newAgent(e)
	bob.mustLogin("bob", "bob's long passphrase")
	_, bobs := e.redeem(c, callback(t, bob.get(authorizeURL(c))).Get("code"))
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("prompt", "none"); v.Set("id_token_hint", bobs.IDToken) }))
	if callback(t, w).Get("error") != "login_required" {
		t.Fatalf("prompt=none with bob's hint in alice's browser: %q", w.Header().Get("Location"))
	}
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("id_token_hint", "e30.e30.e30") }))
	if callback(t, w).Get("error") != "invalid_request" {
		t.Fatalf("forged hint: %q", w.Header().Get("Location"))
	}
}

func TestAuthorize_TooLongForTheLoginRoundTrip_RefusedUpFront(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	w := a.get(authorizeURL(c, func(v url.Values) { v.Set("state", strings.Repeat("é", 1024)) }))
	if q := callback(t, w); q.Get("error") != "invalid_request" {
		t.Fatalf("an authorization request the login page cannot carry back: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestAuthorize_LoopbackRedirect_AnyPort(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) {
		s.RedirectURIs = []string{"http://127.0.0.1/cb", "http://localhost:8000/cb"}
	})
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	at := func(uri string) int {
		return a.get(authorizeURL(c, func(v url.Values) { v.Set("redirect_uri", uri) })).Code
	}
	if got := at("http://127.0.0.1:51004/cb"); got != http.StatusFound {
		t.Errorf("loopback IP with an ephemeral port: %d, want 302 (RFC 8252 §7.3)", got)
	}
	for _, uri := range []string{"http://127.0.0.1:51004/cb2", "http://127.0.0.2:51004/cb", "http://localhost:8001/cb",
		"http://127.0.0.1:51004/cb?x=1", "https://127.0.0.1:51004/cb"} {
		if got := at(uri); got != http.StatusBadRequest {
			t.Errorf("%s: %d, want the 400 page", uri, got)
		}
	}
}

func TestEndSession_ClientIDMustBeTheHintsAudience(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	other := e.webClient(func(s *registry.ClientSpec) { s.RedirectURIs = []string{"https://other.example/cb"} })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	_, tr := e.redeem(c, callback(t, a.get(authorizeURL(c))).Get("code"))
	q := url.Values{"id_token_hint": {tr.IDToken}, "client_id": {other.ID},
		"post_logout_redirect_uri": {"https://other.example/cb"}, "state": {"x"}}
	if w := a.get("/oauth2/logout?" + q.Encode()); w.Code != http.StatusBadRequest {
		t.Fatalf("hint of one client with another's client_id: %d %q", w.Code, w.Header().Get("Location"))
	}
	if a.signedInAs() != "alice" {
		t.Fatal("the refused logout request ended the session")
	}
}

func TestClients_RegistrationRefusesImpersonationAndSilentPublicClients(t *testing.T) {
	e, _, alice := loginEnv(t)
	if _, err := e.clients.Create(t.Context(), registry.ClientSpec{ID: alice.ID, Scope: "read"}); err == nil {
		t.Error("a client registered with a user's id")
	}
	for _, uri := range []string{"com.example.app:/cb", "http://127.0.0.1/cb"} {
		_, err := e.clients.Create(t.Context(), registry.ClientSpec{AuthMethod: "none", FirstParty: true,
			GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{uri}})
		if err == nil {
			t.Errorf("first-party public client with redirect %s registered", uri)
		}
	}
	if _, err := e.clients.Create(t.Context(), registry.ClientSpec{AuthMethod: "none", FirstParty: true,
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://spa.example/cb"}}); err != nil {
		t.Errorf("first-party public client with an https redirect: %v", err)
	}
}

func TestUserinfo_OnlyGETAndPOST(t *testing.T) {
	e, _, _ := loginEnv(t)
	a := newAgent(e)
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if w := a.do(m, "/userinfo", nil, nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /userinfo: %d, want 405", m, w.Code)
		}
	}
}

func TestAdmin_UserSessions_ListAndEndOne(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	admin := e.client(registry.ClientSpec{Scope: "latch:admin", Audiences: []string{latch.AudienceAdmin}})
	tok := e.token(admin, url.Values{"scope": {"latch:admin"}, "audience": {latch.AudienceAdmin}})
	call := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		return w
	}
	laptop, phone := newAgent(e), newAgent(e)
	laptop.mustLogin("alice", alicePassword)
	phone.mustLogin("alice", alicePassword)
	_, tr := e.redeem(c, callback(t, phone.get(authorizeURL(c))).Get("code"))

	w := call("GET", "/admin/v1/users/alice/sessions")
	var list []registry.SessionView
	mustJSON(t, w.Body.Bytes(), &list)
	if w.Code != 200 || len(list) != 2 || !list[0].Active || !list[1].Active {
		t.Fatalf("sessions: %d %s", w.Code, w.Body)
	}
	// The phone's session is the one whose sid is in its ID token.
	sid, _ := payload(t, tr.IDToken)["sid"].(string)
	if w := call("DELETE", "/admin/v1/users/alice/sessions/"+sid); w.Code != http.StatusNoContent {
		t.Fatalf("end session: %d %s", w.Code, w.Body)
	}
	if phone.signedInAs() != "" || laptop.signedInAs() != "alice" {
		t.Fatal("ending one session must end that one only")
	}
	if status, _ := e.refresh(c, tr.RefreshToken); status != 400 {
		t.Error("the ended session's grant still refreshes")
	}
	if w := call("DELETE", "/admin/v1/users/alice/sessions/"+sid); w.Code != http.StatusNotFound {
		t.Errorf("ending it again: %d", w.Code)
	}
	if w := call("GET", "/admin/v1/users/nobody/sessions"); w.Code != http.StatusNotFound {
		t.Errorf("sessions of an unknown user: %d", w.Code)
	}
}
