package server_test

import (
	"net/url"
	"testing"

	"github.com/latch-auth/latch/registry"
)

// A resource or audience the grant does not cover, in a code or refresh
// token request, is answered invalid_target (RFC 8707 §2.2) instead of
// being silently dropped; one it covers is accepted. A refused code
// request does not spend the code.
func TestCodeAndRefreshGrants_ResourceNotGranted_InvalidTarget(t *testing.T) {
	e := newEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Audiences = []string{"api", "other"} })
	code, _ := e.newCode(c, e.alice()) // granted for "api" only
	codeForm := func(k, v string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
			"code_verifier": {testVerifier}, k: {v}}
	}
	for _, tc := range []struct{ name, key, value string }{
		{"registered but not granted", "resource", "other"},
		{"not registered", "resource", "https://elsewhere.example"},
		{"audience parameter", "audience", "other"},
		{"empty", "resource", ""},
	} {
		if status, tr := e.grant(c, codeForm(tc.key, tc.value)); status != 400 || tr.Error != "invalid_target" {
			t.Fatalf("code grant, %s: %d %+v, want 400 invalid_target", tc.name, status, tr)
		}
	}
	status, tr := e.grant(c, codeForm("resource", "api"))
	if status != 200 || tr.RefreshToken == "" {
		t.Fatalf("code grant for the granted resource: %d %+v", status, tr)
	}
	refreshForm := func(k, v string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, k: {v}}
	}
	for _, v := range []string{"other", "https://elsewhere.example"} {
		if status, got := e.grant(c, refreshForm("resource", v)); status != 400 || got.Error != "invalid_target" {
			t.Fatalf("refresh for %q: %d %+v, want 400 invalid_target", v, status, got)
		}
	}
	if status, got := e.grant(c, refreshForm("audience", "api")); status != 200 || got.AccessToken == "" {
		t.Fatalf("refresh for the granted audience: %d %+v", status, got)
	}
}
