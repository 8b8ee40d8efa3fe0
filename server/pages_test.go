package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/server"
)

// TestLogin_FormOpenedUnderAnotherName_LinksToIssuerAndLogsWhy: a sign-in
// form on a page opened under another name of this server (localhost for
// an issuer of 127.0.0.1, or any alias) can never pass the Origin check.
// The 403 page says so, links to the issuer's sign-in page instead of
// showing a form that would fail again, and the log says why at info
// level, with the origin seen and the one expected.
func TestLogin_FormOpenedUnderAnotherName_LinksToIssuerAndLogsWhy(t *testing.T) {
	cases := []struct{ issuer, opened string }{
		{"http://127.0.0.1:8080", "http://localhost:8080"},
		{"https://auth.test", "https://login.auth.test"},
	}
	for _, tc := range cases {
		t.Run(tc.opened, func(t *testing.T) {
			e, _, _ := loginEnv(t, func(c *server.Config) { c.Issuer, c.InsecureAllowHTTP = tc.issuer, true })
			a := newAgent(e)
			a.origin = tc.opened
			tok := a.loginToken()
			w := a.do(http.MethodPost, tc.opened+"/login", url.Values{"username": {"alice"}, "password": {alicePassword},
				"csrf_token": {tok}, "return_to": {"/oauth2/authorize?client_id=x"}}, nil)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403\n%s", w.Code, w.Body)
			}
			body := w.Body.String()
			host := strings.TrimPrefix(strings.TrimPrefix(tc.issuer, "http://"), "https://")
			for _, want := range []string{
				"You opened this page at <strong>" + tc.opened + "</strong>, but this server’s address is <strong>" + tc.issuer + "</strong>",
				`href="` + tc.issuer + `/login?return_to=%2Foauth2%2Fauthorize%3Fclient_id%3Dx"`,
				"Continue at " + tc.issuer,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, `<form`) {
				t.Errorf("the page shows a form, which would fail again under %s", tc.opened)
			}
			logs := e.logs.String()
			for _, want := range []string{"level=INFO", "origin_seen=" + tc.opened, "origin_expected=" + tc.issuer,
				"not another name or port of this server", host} {
				if !strings.Contains(logs, want) {
					t.Errorf("the log lacks %q:\n%s", want, logs)
				}
			}
		})
	}

	t.Run("a page of another site posting here keeps the form", func(t *testing.T) {
		e, _, _ := loginEnv(t)
		a := newAgent(e)
		a.origin = "https://evil.example"
		w := a.login("alice", alicePassword, "")
		body := w.Body.String()
		if w.Code != http.StatusForbidden || strings.Contains(body, "You opened this page") || !strings.Contains(body, "<form") {
			t.Fatalf("%d\n%s", w.Code, body)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "origin_seen=https://evil.example") {
			t.Errorf("the log does not say where the form came from:\n%s", logs)
		}
	})

	t.Run("an old form is logged as one", func(t *testing.T) {
		e, _, _ := loginEnv(t)
		a := newAgent(e)
		tok := a.loginToken()
		delete(a.jar, "__Host-latch_login")
		a.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "csrf_token": {tok}})
		if logs := e.logs.String(); !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "no login cookie") {
			t.Errorf("the log does not say why:\n%s", logs)
		}
	})
}

// TestPages_LoopbackAlias_GETRedirectsToIssuer: opening the sign-in or
// account page under another loopback name than the issuer's (localhost,
// [::1] for 127.0.0.1) redirects to the issuer, where its forms work.
// Other hosts are never redirected (a proxy's inner name would loop), nor
// are other ports, nor POSTs.
func TestPages_LoopbackAlias_GETRedirectsToIssuer(t *testing.T) {
	const issuer = "http://127.0.0.1:8080"
	e, _, _ := loginEnv(t, func(c *server.Config) { c.Issuer, c.InsecureAllowHTTP = issuer, true })
	cases := []struct {
		method, target, want string // want: the Location, "" for none
	}{
		{"GET", "http://localhost:8080/login?return_to=%2Fx", issuer + "/login?return_to=%2Fx"},
		{"HEAD", "http://localhost:8080/login", issuer + "/login"},
		{"GET", "http://LOCALHOST:8080/", issuer + "/"},
		{"GET", "http://[::1]:8080/login", issuer + "/login"},
		{"GET", "http://127.0.0.2:8080/login", issuer + "/login"},
		{"GET", "http://127.0.0.1:8080/login", ""},
		{"GET", "http://localhost:9090/login", ""},
		{"GET", "http://auth.example:8080/login", ""},
		{"POST", "http://localhost:8080/login", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			a := newAgent(e)
			w := a.do(tc.method, tc.target, nil, nil)
			loc := w.Header().Get("Location")
			if tc.want == "" {
				if w.Code == http.StatusSeeOther && strings.HasPrefix(loc, issuer) {
					t.Fatalf("redirected to %s", loc)
				}
				return
			}
			if w.Code != http.StatusSeeOther || loc != tc.want {
				t.Fatalf("%d Location %q, want 303 %q", w.Code, loc, tc.want)
			}
		})
	}

	t.Run("an issuer that is not loopback never redirects", func(t *testing.T) {
		e, _, _ := loginEnv(t)
		if w := newAgent(e).get("http://localhost/login"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Header().Get("Location"))
		}
	})
}
