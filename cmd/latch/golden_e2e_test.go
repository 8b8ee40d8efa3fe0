package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/endpoints.golden from the running server")

// goldenVolatile are the JSON members whose values differ from run to run
// (secrets, token strings, times, key IDs, key material, request IDs): the
// golden file keeps their presence and type, not their value.
var goldenVolatile = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "issued_token": true,
	"client_secret": true, "jti": true, "kid": true, "n": true, "x": true, "y": true,
	"exp": true, "iat": true, "nbf": true, "auth_time": true, "request_id": true,
	"created_at": true, "updated_at": true, "not_before": true, "not_after": true,
	"retired_at": true, "expires_at": true, "client_id_issued_at": true, "sid": true,
	"cursor": true, "next": true, "id": true, "key": true, "keys_hash": true, "last_used_at": true,
}

// goldenRandom matches the long random strings (tokens, CSRF values,
// secrets, hashes) that appear outside JSON members too.
var goldenRandom = regexp.MustCompile(`[A-Za-z0-9_\-]{32,}(\.[A-Za-z0-9_\-]*){0,4}`)

// TestEndpoints_AnswerAsRecorded sends a fixed set of good and bad requests
// to every endpoint of a real `latch serve` and compares each answer's
// status, content type, cache and challenge headers and body shape with
// testdata/endpoints.golden. It holds the server's observable behaviour
// still while its code moves between packages; -update-golden rewrites the
// file when a change of behaviour is intended.
func TestEndpoints_AnswerAsRecorded(t *testing.T) {
	dir := migratedDir(t)
	jwtc := createClient(t, dir, "--id", "g-jwt", "--scope", "read write", "--audience", "api",
		"--grant", "client_credentials,urn:ietf:params:oauth:grant-type:token-exchange")
	opq := createClient(t, dir, "--id", "g-opaque", "--format", "opaque", "--scope", "read", "--audience", "api")
	rs := createClient(t, dir, "--id", "g-rs", "--scope", "latch:introspect", "--audience", "api")
	other := createClient(t, dir, "--id", "g-other", "--scope", "read", "--audience", "elsewhere")
	adm := createClient(t, dir, "--id", "g-admin", "--scope", "latch:admin", "--audience", "urn:latch:admin")
	web := createClient(t, dir, "--id", "g-web", "--scope", "openid profile read", "--audience", "api",
		"--grant", "authorization_code,refresh_token", "--redirect-uri", "https://cb.test/cb")
	createAlice(t, dir, "correct horse battery staple")
	p := startLatch(t, dir)

	var out strings.Builder
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(name, method, path string, c testClient, bearer string, form url.Values, hdr ...string) map[string]any {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, p.URL(path), body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if c.ID != "" {
			req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&out, "### %s\n%s %s\nstatus: %d\n", name, method, path, resp.StatusCode)
		for _, h := range []string{"Content-Type", "Cache-Control", "Pragma", "Www-Authenticate", "Location", "Retry-After", "Allow", goldenRequestIDHeader} {
			v := resp.Header.Values(h)
			if len(v) == 0 {
				continue
			}
			if h == goldenRequestIDHeader {
				v = []string{"<id>"}
			}
			fmt.Fprintf(&out, "%s: %s\n", h, goldenText(p, strings.Join(v, ", ")))
		}
		var m map[string]any
		if strings.Contains(resp.Header.Get("Content-Type"), "json") {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Errorf("%s: JSON content type with a body that is not JSON: %q", name, raw)
			}
			m, _ = v.(map[string]any)
			fmt.Fprintf(&out, "body: %s\n\n", goldenShape(p, "", v))
			return m
		}
		if strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			fmt.Fprintf(&out, "html: %s\n\n", goldenHTML(p, string(raw)))
			return nil
		}
		fmt.Fprintf(&out, "body: %q\n\n", goldenText(p, string(raw)))
		return nil
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}

	// Discovery and keys.
	call("metadata", "GET", "/.well-known/oauth-authorization-server", testClient{}, "", nil)
	call("openid configuration", "GET", "/.well-known/openid-configuration", testClient{}, "", nil)
	call("jwks", "GET", "/.well-known/jwks.json", testClient{}, "", nil)
	call("healthz", "GET", "/healthz", testClient{}, "", nil)
	call("readyz", "GET", "/readyz", testClient{}, "", nil)
	call("not found", "GET", "/no/such/thing", testClient{}, "", nil)
	call("jwks wrong method", "POST", "/.well-known/jwks.json", testClient{}, "", form())

	// Token endpoint, per grant and its errors.
	jwtTok, _ := call("client_credentials jwt", "POST", "/oauth2/token", jwtc, "", cc)["access_token"].(string)
	opqTok, _ := call("client_credentials opaque", "POST", "/oauth2/token", opq, "", cc)["access_token"].(string)
	otherTok, _ := call("client_credentials other audience", "POST", "/oauth2/token", other, "", cc)["access_token"].(string)
	admTok, _ := call("client_credentials admin", "POST", "/oauth2/token", adm, "", form("grant_type", "client_credentials", "scope", "latch:admin"))["access_token"].(string)
	call("client_credentials narrower scope", "POST", "/oauth2/token", jwtc, "", form("grant_type", "client_credentials", "scope", "read"))
	call("client_credentials unregistered scope", "POST", "/oauth2/token", jwtc, "", form("grant_type", "client_credentials", "scope", "delete"))
	call("client_credentials bad secret", "POST", "/oauth2/token", testClient{jwtc.ID, "wrong"}, "", cc)
	call("client_credentials unknown client", "POST", "/oauth2/token", testClient{"nobody", "x"}, "", cc)
	call("token no client", "POST", "/oauth2/token", testClient{}, "", cc)
	call("token no grant_type", "POST", "/oauth2/token", jwtc, "", form())
	call("token unsupported grant", "POST", "/oauth2/token", jwtc, "", form("grant_type", "magic"))
	call("token grant not registered", "POST", "/oauth2/token", opq, "", form("grant_type", "refresh_token", "refresh_token", "x"))
	call("token GET", "GET", "/oauth2/token", jwtc, "", nil)
	call("token repeated parameter", "POST", "/oauth2/token", jwtc, "", form("grant_type", "client_credentials", "grant_type", "client_credentials"))
	call("authorization_code bad code", "POST", "/oauth2/token", jwtc, "", form("grant_type", "authorization_code", "code", "nope", "redirect_uri", "https://cb.test/"))
	call("authorization_code unknown code", "POST", "/oauth2/token", web, "", form("grant_type", "authorization_code", "code", "nope", "redirect_uri", "https://cb.test/cb"))
	call("authorization_code no code", "POST", "/oauth2/token", web, "", form("grant_type", "authorization_code", "redirect_uri", "https://cb.test/cb"))
	call("refresh_token unknown token", "POST", "/oauth2/token", web, "", form("grant_type", "refresh_token", "refresh_token", "lt_rt_nope"))
	call("refresh_token bad token", "POST", "/oauth2/token", jwtc, "", form("grant_type", "refresh_token", "refresh_token", "nope"))
	call("password grant", "POST", "/oauth2/token", jwtc, "", form("grant_type", "password", "username", "alice", "password", "x"))
	exch := "urn:ietf:params:oauth:grant-type:token-exchange"
	call("token exchange", "POST", "/oauth2/token", jwtc, "", form("grant_type", exch, "subject_token", jwtTok,
		"subject_token_type", "urn:ietf:params:oauth:token-type:access_token", "audience", "api"))
	call("token exchange opaque subject", "POST", "/oauth2/token", jwtc, "", form("grant_type", exch, "subject_token", opqTok,
		"subject_token_type", "urn:ietf:params:oauth:token-type:access_token", "audience", "api"))
	call("token exchange bad subject", "POST", "/oauth2/token", jwtc, "", form("grant_type", exch, "subject_token", "nope",
		"subject_token_type", "urn:ietf:params:oauth:token-type:access_token"))
	call("token exchange missing type", "POST", "/oauth2/token", jwtc, "", form("grant_type", exch, "subject_token", jwtTok))

	// Introspection.
	call("introspect jwt active", "POST", "/oauth2/introspect", rs, "", form("token", jwtTok))
	call("introspect opaque active", "POST", "/oauth2/introspect", rs, "", form("token", opqTok))
	call("introspect own token", "POST", "/oauth2/introspect", jwtc, "", form("token", jwtTok))
	call("introspect foreign audience", "POST", "/oauth2/introspect", rs, "", form("token", otherTok))
	call("introspect garbage", "POST", "/oauth2/introspect", rs, "", form("token", "garbage"))
	call("introspect lt_ garbage", "POST", "/oauth2/introspect", rs, "", form("token", "lt_garbage"))
	call("introspect no token", "POST", "/oauth2/introspect", rs, "", form())
	call("introspect unauthenticated", "POST", "/oauth2/introspect", testClient{}, "", form("token", jwtTok))
	call("introspect bad secret", "POST", "/oauth2/introspect", testClient{rs.ID, "wrong"}, "", form("token", jwtTok))
	call("introspect with hint", "POST", "/oauth2/introspect", rs, "", form("token", opqTok, "token_type_hint", "refresh_token"))

	// Userinfo.
	call("userinfo no token", "GET", "/userinfo", testClient{}, "", nil)
	call("userinfo bad token", "GET", "/userinfo", testClient{}, "garbage", nil)
	call("userinfo client token", "GET", "/userinfo", testClient{}, jwtTok, nil)
	call("userinfo two schemes", "GET", "/userinfo", testClient{}, "", nil, "Authorization", "Basic abc")

	// Authorize's error paths.
	call("authorize no client", "GET", "/oauth2/authorize", testClient{}, "", nil)
	call("authorize unknown client", "GET", "/oauth2/authorize?client_id=nobody&response_type=code", testClient{}, "", nil)
	call("authorize client without redirect", "GET", "/oauth2/authorize?client_id=g-jwt&response_type=code&redirect_uri=https%3A%2F%2Fevil.test%2F", testClient{}, "", nil)
	call("authorize registered client", "GET", "/oauth2/authorize?client_id=g-web&response_type=code&redirect_uri=https%3A%2F%2Fcb.test%2Fcb&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", testClient{}, "", nil)

	// Pushed authorization requests (RFC 9126).
	pushed := url.Values{"response_type": {"code"}, "client_id": {"g-web"}, "redirect_uri": {"https://cb.test/cb"},
		"scope": {"openid"}, "state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	call("par", "POST", "/oauth2/par", web, "", pushed)
	call("par unauthenticated", "POST", "/oauth2/par", testClient{}, "", pushed)
	call("par unregistered redirect", "POST", "/oauth2/par", web, "", url.Values{"client_id": {"g-web"}, "response_type": {"code"}, "redirect_uri": {"https://evil.test/"}})
	call("par bad proof", "POST", "/oauth2/par", web, "", pushed, "DPoP", "not-a-proof")
	call("authorize unknown request_uri", "GET", "/oauth2/authorize?client_id=g-web&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Anone", testClient{}, "", nil)
	call("token bad proof", "POST", "/oauth2/token", jwtc, "", url.Values{"grant_type": {"client_credentials"}}, "DPoP", "not-a-proof")
	call("authorize bad response_type", "GET", "/oauth2/authorize?client_id=g-web&response_type=token&redirect_uri=https%3A%2F%2Fcb.test%2Fcb", testClient{}, "", nil)
	call("authorize no pkce", "GET", "/oauth2/authorize?client_id=g-web&response_type=code&redirect_uri=https%3A%2F%2Fcb.test%2Fcb&scope=openid", testClient{}, "", nil)
	call("logout endpoint", "GET", "/oauth2/logout", testClient{}, "", nil)

	// Login pages.
	call("login page", "GET", "/login", testClient{}, "", nil)
	call("account page", "GET", "/", testClient{}, "", nil)
	call("login post without csrf", "POST", "/login", testClient{}, "", form("username", "alice", "password", "x"))

	// Admin API.
	call("admin no token", "GET", "/admin/v1/clients", testClient{}, "", nil)
	call("admin wrong token", "GET", "/admin/v1/clients", testClient{}, jwtTok, nil)
	call("admin clients", "GET", "/admin/v1/clients", testClient{}, admTok, nil)
	call("admin client", "GET", "/admin/v1/clients/g-opaque", testClient{}, admTok, nil)
	call("admin client missing", "GET", "/admin/v1/clients/nobody", testClient{}, admTok, nil)
	call("admin users", "GET", "/admin/v1/users", testClient{}, admTok, nil)
	call("admin keys", "GET", "/admin/v1/keys", testClient{}, admTok, nil)
	call("admin unknown", "GET", "/admin/v1/nothing", testClient{}, admTok, nil)
	call("admin create client bad json", "POST", "/admin/v1/clients", testClient{}, admTok, nil, "Content-Type", "application/json")
	call("admin user missing", "GET", "/admin/v1/users/nobody", testClient{}, admTok, nil)

	// Revocation, then the feed and the opaque token keys.
	call("revoke opaque", "POST", "/oauth2/revoke", opq, "", form("token", opqTok))
	call("revoke jwt", "POST", "/oauth2/revoke", jwtc, "", form("token", jwtTok))
	call("revoke garbage", "POST", "/oauth2/revoke", jwtc, "", form("token", "garbage"))
	call("revoke unauthenticated", "POST", "/oauth2/revoke", testClient{}, "", form("token", jwtTok))
	call("revoke foreign token", "POST", "/oauth2/revoke", other, "", form("token", opqTok))
	call("revoke no token", "POST", "/oauth2/revoke", jwtc, "", form())
	call("introspect revoked opaque", "POST", "/oauth2/introspect", rs, "", form("token", opqTok))
	call("introspect revoked jwt", "POST", "/oauth2/introspect", rs, "", form("token", jwtTok))
	call("revocations feed", "GET", "/oauth2/revocations?wait=0", rs, "", nil)
	call("revocations feed bad wait", "GET", "/oauth2/revocations?wait=-1", rs, "", nil)
	call("revocations feed unauthenticated", "GET", "/oauth2/revocations", testClient{}, "", nil)
	call("opaque token keys", "GET", "/oauth2/opaque-token-keys", rs, "", nil)
	call("opaque token keys unauthenticated", "GET", "/oauth2/opaque-token-keys", testClient{}, "", nil)

	golden := filepath.Join("testdata", "endpoints.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-golden to record it)", err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("answers differ from %s at line %d:\n got: %s\nwant: %s\n\nwhole answer:\n%s", golden, i+1, g, w, got)
			}
		}
	}
}

// goldenRequestIDHeader is the response header that names a request.
const goldenRequestIDHeader = "X-Request-Id"

// goldenText replaces the server's address and random strings in s.
func goldenText(p *latchProc, s string) string {
	s = strings.ReplaceAll(s, p.Issuer, "ISSUER")
	s = strings.ReplaceAll(s, url.QueryEscape(p.Issuer), "ISSUER")
	return goldenRandom.ReplaceAllString(s, "<rand>")
}

// goldenShape renders v with volatile members replaced by their type and
// object members in sorted order.
func goldenShape(p *latchProc, key string, v any) string {
	if (goldenVolatile[key] || strings.HasSuffix(key, "_at") || strings.HasSuffix(key, "At")) && v != nil {
		switch v.(type) {
		case string:
			return `"<str>"`
		case float64:
			return "<num>"
		}
	}
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%q:%s", k, goldenShape(p, k, v[k])))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, goldenShape(p, key, e))
		}
		if key == "keys" || key == "clients" || key == "users" {
			slices.Sort(parts)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		b, _ := json.Marshal(goldenText(p, v))
		return string(b)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

var (
	goldenTitle = regexp.MustCompile(`<title>([^<]*)</title>`)
	goldenForm  = regexp.MustCompile(`<(form|input|button)\b[^>]*>`)
	goldenH     = regexp.MustCompile(`<(h1|h2|p)\b[^>]*>([^<]*)<`)
)

// goldenHTML is the outline of a page: its title, headings and paragraphs,
// and its forms and their fields.
func goldenHTML(p *latchProc, s string) string {
	var parts []string
	if m := goldenTitle.FindStringSubmatch(s); m != nil {
		parts = append(parts, "title="+m[1])
	}
	for _, m := range goldenH.FindAllStringSubmatch(s, -1) {
		if t := strings.TrimSpace(m[2]); t != "" {
			parts = append(parts, m[1]+"="+t)
		}
	}
	for _, m := range goldenForm.FindAllString(s, -1) {
		parts = append(parts, m)
	}
	return goldenText(p, strings.Join(parts, "\n  "))
}
