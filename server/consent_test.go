package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"
)

// consentForm returns the consent page's form with consent set to answer.
func consentForm(t *testing.T, body, answer string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("csrf_token") == "" {
		t.Fatalf("no consent form in:\n%s", body)
	}
	form.Set("consent", answer)
	return form
}

func isConsentPage(w *httptest.ResponseRecorder) bool {
	return w.Code == http.StatusOK && strings.Contains(w.Body.String(), `name="consent" value="allow"`)
}

func TestConsent_Remembered_SubsetSkipsPage_MoreScopesOrPromptConsentAskAgain(t *testing.T) {
	e, _, alice := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false; s.Name = "Other App" })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	withScope := func(scope string) func(url.Values) { return func(v url.Values) { v.Set("scope", scope) } }

	w := a.get(authorizeURL(c, withScope("openid read")))
	if !isConsentPage(w) {
		t.Fatalf("first request: %d, want the consent page", w.Code)
	}
	if w := a.post("/oauth2/authorize", consentForm(t, w.Body.String(), "allow")); callback(t, w).Get("code") == "" {
		t.Fatalf("allow: %q", w.Header().Get("Location"))
	}
	// The same scopes, or fewer: no page, a code at once, even silently.
	for _, scope := range []string{"openid read", "openid", ""} {
		w := a.get(authorizeURL(c, withScope(scope)))
		if w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
			t.Fatalf("scope %q after consent: %d %q, want a code without the page", scope, w.Code, w.Header().Get("Location"))
		}
	}
	if w := a.get(authorizeURL(c, withScope("openid"), func(v url.Values) { v.Set("prompt", "none") })); callback(t, w).Get("code") == "" {
		t.Fatalf("prompt=none after consent: %q", w.Header().Get("Location"))
	}
	// A scope not yet allowed: the page again; allowed, it joins the others.
	w = a.get(authorizeURL(c, withScope("openid profile")))
	if !isConsentPage(w) {
		t.Fatalf("new scope profile: %d %q, want the consent page", w.Code, w.Header().Get("Location"))
	}
	if w := a.post("/oauth2/authorize", consentForm(t, w.Body.String(), "allow")); callback(t, w).Get("code") == "" {
		t.Fatalf("allow profile: %q", w.Header().Get("Location"))
	}
	if w := a.get(authorizeURL(c, withScope("openid profile read"))); w.Code != http.StatusFound {
		t.Fatalf("all three after two consents: %d, want a code", w.Code)
	}
	got, err := e.db.Consent(context.Background(), alice.ID, c.ID)
	if err != nil || strings.Join(got.Scope, " ") != "openid profile read" {
		t.Fatalf("stored consent = %+v, %v", got, err)
	}
	// prompt=consent asks again; denying then refuses this request.
	w = a.get(authorizeURL(c, withScope("openid"), func(v url.Values) { v.Set("prompt", "consent") }))
	if !isConsentPage(w) {
		t.Fatalf("prompt=consent: %d %q, want the consent page", w.Code, w.Header().Get("Location"))
	}
	if w := a.post("/oauth2/authorize", consentForm(t, w.Body.String(), "deny")); callback(t, w).Get("error") != "access_denied" {
		t.Fatalf("deny under prompt=consent: %q", w.Header().Get("Location"))
	}
	// prompt=consent with prompt=none cannot be satisfied.
	w = a.get(authorizeURL(c, func(v url.Values) { v.Set("prompt", "none consent") }))
	if callback(t, w).Get("error") != "invalid_request" {
		t.Fatalf("prompt=none consent: %q", w.Header().Get("Location"))
	}
}

func TestConsent_IsPerUserAndPerClient(t *testing.T) {
	e, users, _ := loginEnv(t)
	if _, err := users.Create(context.Background(), registry.UserSpec{Username: "bob", Password: alicePassword + "-bob"}); err != nil {
		t.Fatal(err)
	}
	c1 := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false })
	c2 := e.webClient(func(s *registry.ClientSpec) { s.FirstParty = false })
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c1))
	a.post("/oauth2/authorize", consentForm(t, w.Body.String(), "allow"))
	if w := a.get(authorizeURL(c2)); !isConsentPage(w) {
		t.Errorf("another client: %d, want the consent page", w.Code)
	}
	b := newAgent(e)
	b.mustLogin("bob", alicePassword+"-bob")
	if w := b.get(authorizeURL(c1)); !isConsentPage(w) {
		t.Errorf("another user: %d, want the consent page", w.Code)
	}
}
