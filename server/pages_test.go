package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/registry"

	"github.com/latch-auth/latch"
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

// TestNotFound_HTMLPageForBrowsers_JSONForAPIs: an unknown path gets the
// styled HTML error page, except under /oauth2 and /.well-known (an RFC
// 6749-shaped JSON error) and /admin/ (an RFC 7807 problem); a known path
// asked with another method still gets 405 with Allow.
func TestNotFound_HTMLPageForBrowsers_JSONForAPIs(t *testing.T) {
	e, _, _ := loginEnv(t)
	cases := []struct {
		method, path string
		status       int
		ctype, body  string
		allow        string
	}{
		{"GET", "/no/such/page", 404, "text/html; charset=utf-8", "Page not found", ""},
		{"POST", "/favicon.ico", 404, "text/html; charset=utf-8", "Page not found", ""},
		{"GET", "/oauth2/nope", 404, "application/json", `"error":"invalid_request"`, ""},
		{"GET", "/oauth2", 404, "application/json", `no endpoint at /oauth2;`, ""},
		{"GET", "/.well-known/nope", 404, "application/json", `/.well-known/openid-configuration lists`, ""},
		{"GET", "/admin/v1/nope", 404, "application/problem+json", `"status":404`, ""},
		{"GET", "/oauth2x", 404, "text/html; charset=utf-8", "Page not found", ""},
		{"PUT", "/login", 405, "text/plain; charset=utf-8", "Method Not Allowed", "GET, HEAD, POST"},
		{"DELETE", "/userinfo", 405, "text/plain; charset=utf-8", "Method Not Allowed", "GET, HEAD, OPTIONS, POST"},
		{"POST", "/healthz", 405, "text/plain; charset=utf-8", "Method Not Allowed", "GET, HEAD"},
		{"GET", "/login", 200, "text/html; charset=utf-8", "Sign in", ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := newAgent(e).do(tc.method, tc.path, nil, nil)
			if w.Code != tc.status || w.Header().Get("Content-Type") != tc.ctype || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%d %q, want %d %q containing %q:\n%s", w.Code, w.Header().Get("Content-Type"), tc.status, tc.ctype, tc.body, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if strings.HasPrefix(tc.ctype, "text/html") && w.Header().Get("Content-Security-Policy") == "" {
				t.Error("the HTML page has no CSP")
			}
		})
	}
}

// TestLoginPage_NamesTheApplication: signing in on the way to a
// registered client's authorization request, the page says which
// application it leads to; a client_id nobody registered shows nothing.
func TestLoginPage_NamesTheApplication(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Name = "Photo <Print>" })
	for _, tc := range []struct{ clientID, want string }{
		{c.ID, `to continue to <strong>Photo &lt;Print&gt;</strong>`},
		{"unregistered", ""},
	} {
		returnTo := "/oauth2/authorize?client_id=unregistered"
		if tc.clientID != "unregistered" {
			w := newAgent(e).get(authorizeURL(creds{ID: tc.clientID}))
			loc, _ := url.Parse(w.Header().Get("Location"))
			if w.Code != http.StatusSeeOther || loc == nil || loc.Path != "/login" {
				t.Fatalf("authorize: %d %s", w.Code, w.Header().Get("Location"))
			}
			returnTo = loc.Query().Get("return_to")
		}
		w := newAgent(e).get("/login?return_to=" + url.QueryEscape(returnTo))
		body := w.Body.String()
		if tc.want == "" {
			if strings.Contains(body, "to continue to") {
				t.Errorf("login page names an unregistered client:\n%s", body)
			}
		} else if !strings.Contains(body, tc.want) {
			t.Errorf("login page lacks %q:\n%s", tc.want, body)
		}
	}
}

// TestConsent_DescribesKnownScopes_MarksUnknownOnes: the consent page
// says in words what each scope latch knows allows, and shows a scope it
// does not know by name, marked as not described.
func TestConsent_DescribesKnownScopes_MarksUnknownOnes(t *testing.T) {
	e, users, _ := loginEnv(t)
	// latch:admin is asked for only of a user who holds the admin role.
	if _, err := users.SetRoles(context.Background(), "alice", []string{latch.RoleAdmin}, nil); err != nil {
		t.Fatal(err)
	}
	c := e.webClient(func(s *registry.ClientSpec) {
		s.FirstParty, s.Name = false, "Photo Print"
		s.Scope = "openid profile email offline_access read write latch:admin photos:print"
	})
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	w := a.get(authorizeURL(c, func(v url.Values) {
		v.Set("scope", "openid profile email offline_access read write latch:admin photos:print")
	}))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, `id="allow"`) {
		t.Fatalf("consent page: %d\n%s", w.Code, body)
	}
	for _, want := range []string{
		`<li><span class="scope-text">Know who you are on this server: your user ID, roles and groups</span><span class="scope-name">Scope <code>openid</code></span></li>`,
		`<span class="scope-text">See your username and the name and profile details this server keeps about you</span>`,
		`<span class="scope-text">See your email address</span>`,
		`<span class="scope-text">Keep its access when you are not using it, without asking you again</span>`,
		`<span class="scope-text">Read your data</span>`,
		`<span class="scope-text">Create, change and delete your data</span>`,
		`<span class="scope-text">Administer this server: its applications, users and signing keys</span>`,
		`<li class="unknown"><span class="scope-text">Not described by this server: ask the application what it allows</span><span class="scope-name">Scope <code>photos:print</code></span></li>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %s", want)
		}
	}
}

// TestAuthorize_UnregisteredRedirect_PageNamesTheApplication: the page
// refusing an unregistered redirect URI names the application by its
// registered name, its ID beside it.
func TestAuthorize_UnregisteredRedirect_PageNamesTheApplication(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.Name = "Photo Print" })
	w := newAgent(e).get(authorizeURL(c, func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }))
	body := w.Body.String()
	if w.Code != http.StatusBadRequest || !strings.Contains(body, "<h1>Cannot return to Photo Print</h1>") ||
		!strings.Contains(body, `Photo Print (client ID `+c.ID+`) asked to send you back`) || strings.Contains(body, "evil.example") {
		t.Fatalf("%d\n%s", w.Code, body)
	}
}
