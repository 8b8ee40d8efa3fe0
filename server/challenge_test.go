package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestClientAuth_401_CarriesChallenge: every 401 of the introspection and
// revocation endpoints carries a WWW-Authenticate challenge (RFC 7235
// §3.1, RFC 6749 §5.2), also when the request had no client
// authentication at all or authenticated in the body; the introspection
// endpoint names Bearer too, since it accepts an access token instead.
func TestClientAuth_401_CarriesChallenge(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	tests := []struct {
		name string
		path string
		c    creds
		form url.Values
		want []string
	}{
		{"introspect without authentication", "/oauth2/introspect", creds{}, url.Values{"token": {"x"}}, []string{"Basic", "Bearer"}},
		{"introspect with client_secret_post", "/oauth2/introspect", creds{}, url.Values{"token": {"x"}, "client_id": {c.ID}, "client_secret": {"wrong"}}, []string{"Basic", "Bearer"}},
		{"introspect with a wrong Basic secret", "/oauth2/introspect", creds{c.ID, "wrong"}, url.Values{"token": {"x"}}, []string{"Basic", "Bearer"}},
		{"revoke without authentication", "/oauth2/revoke", creds{}, url.Values{"token": {"x"}}, []string{"Basic"}},
		{"revoke with an unknown client in the body", "/oauth2/revoke", creds{}, url.Values{"token": {"x"}, "client_id": {"ghost"}}, []string{"Basic"}},
		{"token without authentication", "/oauth2/token", creds{}, url.Values{"grant_type": {"client_credentials"}}, []string{"Basic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.path, tt.c, tt.form)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d %s, want 401", w.Code, w.Body)
			}
			var schemes []string
			for _, v := range w.Header().Values("WWW-Authenticate") {
				scheme, params, _ := strings.Cut(v, " ")
				if !strings.Contains(params, `realm="latch"`) {
					t.Errorf("challenge %q has no realm", v)
				}
				schemes = append(schemes, scheme)
			}
			for _, s := range tt.want {
				if !slices.Contains(schemes, s) {
					t.Errorf("WWW-Authenticate %q lacks a %s challenge", w.Header().Values("WWW-Authenticate"), s)
				}
			}
		})
	}
}
