package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/registry"
	"github.com/latch-auth/latch/server"
)

const parURL = testIssuer + "/oauth2/par"

// pushForm is the web client's authorization request as pushed.
func pushForm(c creds, mutate ...func(url.Values)) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid profile read"}, "state": {"st-par"}, "nonce": {"nc-par"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"}}
	for _, m := range mutate {
		m(q)
	}
	return q
}

type parResp struct {
	RequestURI  string `json:"request_uri"`
	ExpiresIn   int64  `json:"expires_in"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (e *env) push(c creds, form url.Values, proofs ...string) (int, parResp) {
	e.t.Helper()
	w := e.doDPoP("/oauth2/par", c, form, proofs...)
	var pr parResp
	mustJSON(e.t, w.Body.Bytes(), &pr)
	return w.Code, pr
}

func parAuthorizeURL(clientID, requestURI string) string {
	return "/oauth2/authorize?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

// authorizeWithLogin follows /oauth2/authorize through the login page and
// returns the final answer.
func authorizeWithLogin(t *testing.T, a *agent, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := a.get(target)
	if w.Code == http.StatusSeeOther && strings.HasPrefix(w.Header().Get("Location"), "/login?") {
		loginURL, _ := url.Parse(w.Header().Get("Location"))
		returnTo := loginURL.Query().Get("return_to")
		if lw := a.login("alice", alicePassword, returnTo); lw.Code != http.StatusSeeOther {
			t.Fatalf("login: %d %s", lw.Code, lw.Body)
		}
		w = a.get(returnTo)
	}
	return w
}

// TestRFC9126_2_1_ConfidentialClient_PushThenAuthorize: a confidential
// client pushes with its secret, gets a request_uri of the RFC's URN form
// and a lifetime, and /oauth2/authorize runs the pushed request from
// client_id and request_uri alone, through the login page.
func TestRFC9126_2_1_ConfidentialClient_PushThenAuthorize(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	status, pr := e.push(c, pushForm(c))
	if status != http.StatusCreated || !strings.HasPrefix(pr.RequestURI, "urn:ietf:params:oauth:request_uri:") || pr.ExpiresIn != int64(server.DefaultPARLifetime/time.Second) {
		t.Fatalf("push: %d %+v", status, pr)
	}
	w := authorizeWithLogin(t, newAgent(e), parAuthorizeURL(c.ID, pr.RequestURI))
	if w.Code != http.StatusFound {
		t.Fatalf("authorize: %d %s", w.Code, w.Body)
	}
	q := callback(t, w)
	if q.Get("state") != "st-par" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	if status, tr := e.redeem(c, q.Get("code")); status != 200 || payload(t, tr.IDToken)["nonce"] != "nc-par" {
		t.Fatalf("redeem: %d %+v", status, tr)
	}
}

// TestRFC9126_2_1_PublicClient_PushesWithClientIDOnly.
func TestRFC9126_2_1_PublicClient_PushesWithClientIDOnly(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.AuthMethod = "none" })
	status, pr := e.push(creds{ID: c.ID}, pushForm(c))
	if status != http.StatusCreated || pr.RequestURI == "" {
		t.Fatalf("push: %d %+v", status, pr)
	}
	if w := authorizeWithLogin(t, newAgent(e), parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
		t.Fatalf("authorize: %d %s", w.Code, w.Body)
	}
}

// TestRFC9126_2_1_BadPushesRefused: a request_uri in the push, a wrong
// secret, an unregistered redirect URI, a request the authorization
// endpoint would refuse, GET: each a JSON error, nothing stored.
func TestRFC9126_2_1_BadPushesRefused(t *testing.T) {
	e := newEnv(t)
	c := e.webClient()
	for _, tc := range []struct {
		name    string
		c       creds
		form    url.Values
		status  int
		errCode string
	}{
		{"request_uri pushed", c, pushForm(c, func(q url.Values) { q.Set("request_uri", "urn:ietf:params:oauth:request_uri:x") }), 400, "invalid_request"},
		{"wrong secret", creds{c.ID, "wrong"}, pushForm(c), 401, "invalid_client"},
		{"unregistered redirect_uri", c, pushForm(c, func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }), 400, "invalid_request"},
		{"no PKCE", c, pushForm(c, func(q url.Values) { q.Del("code_challenge") }), 400, "invalid_request"},
		{"scope beyond registration", c, pushForm(c, func(q url.Values) { q.Set("scope", "admin") }), 400, "invalid_scope"},
		{"malformed dpop_jkt", c, pushForm(c, func(q url.Values) { q.Set("dpop_jkt", "short") }), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, pr := e.push(tc.c, tc.form)
			if status != tc.status || pr.Error != tc.errCode || pr.RequestURI != "" {
				t.Errorf("%d %+v, want %d %s", status, pr, tc.status, tc.errCode)
			}
		})
	}
	if w := e.get("/oauth2/par", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth2/par: %d", w.Code)
	}
}

// TestRFC9126_4_RequestURIIsSingleUseShortLivedAndTheClients: a
// request_uri gives one code; another client cannot use it; once expired
// it is refused, on a page (the redirect URI is not trusted yet).
func TestRFC9126_4_RequestURIIsSingleUseShortLivedAndTheClients(t *testing.T) {
	e, _, _ := loginEnv(t)
	c, other := e.webClient(), e.webClient()
	a := newAgent(e)
	_, pr := e.push(c, pushForm(c))
	if w := a.get(parAuthorizeURL(other.ID, pr.RequestURI)); w.Code != http.StatusBadRequest {
		t.Errorf("another client's request_uri: %d", w.Code)
	}
	if w := authorizeWithLogin(t, a, parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusFound {
		t.Fatalf("first use: %d %s", w.Code, w.Body)
	}
	if w := a.get(parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "expired or was used") {
		t.Errorf("second use: %d %s", w.Code, w.Body)
	}
	_, pr = e.push(c, pushForm(c))
	e.clock.Advance(server.DefaultPARLifetime)
	if w := a.get(parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusBadRequest {
		t.Errorf("expired request_uri: %d", w.Code)
	}
	if w := a.get(parAuthorizeURL(c.ID, "urn:ietf:params:oauth:request_uri:made-up")); w.Code != http.StatusBadRequest {
		t.Errorf("made-up request_uri: %d", w.Code)
	}
	if w := a.get("/oauth2/authorize?" + url.Values{"request_uri": {pr.RequestURI}}.Encode()); w.Code != http.StatusBadRequest {
		t.Errorf("request_uri without client_id: %d", w.Code)
	}
}

// TestRFC9126_4_PushedParametersWin: parameters beside request_uri are
// ignored; the pushed request is the request.
func TestRFC9126_4_PushedParametersWin(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	_, pr := e.push(c, pushForm(c))
	target := "/oauth2/authorize?" + url.Values{"client_id": {c.ID}, "request_uri": {pr.RequestURI},
		"state": {"forged"}, "code_challenge": {challengeOf("another verifier of forty-three characters..")}}.Encode()
	w := authorizeWithLogin(t, newAgent(e), target)
	if w.Code != http.StatusFound || callback(t, w).Get("state") != "st-par" {
		t.Fatalf("authorize: %d %q", w.Code, w.Header().Get("Location"))
	}
	if status, tr := e.redeem(c, callback(t, w).Get("code")); status != 200 {
		t.Errorf("redeem with the pushed challenge's verifier: %d %+v", status, tr)
	}
}

// TestRFC9126_4_PromptLoginInAPushedRequest_AsksOnce: prompt=login stays
// in the pushed request; the login it asks for satisfies it.
func TestRFC9126_4_PromptLoginInAPushedRequest_AsksOnce(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	a := newAgent(e)
	a.mustLogin("alice", alicePassword)
	e.clock.Advance(time.Second)
	_, pr := e.push(c, pushForm(c, func(q url.Values) { q.Set("prompt", "login") }))
	w := a.get(parAuthorizeURL(c.ID, pr.RequestURI))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?") {
		t.Fatalf("prompt=login with an older session: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := authorizeWithLogin(t, a, parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusFound {
		t.Fatalf("after the login: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestRFC9126_5_RequirePAR: a client registered with require-par gets an
// error redirect for a request it did not push.
func TestRFC9126_5_RequirePAR(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient(func(s *registry.ClientSpec) { s.RequirePAR = true })
	w := authorizeWithLogin(t, newAgent(e), authorizeURL(c))
	if w.Code != http.StatusFound || callback(t, w).Get("error") != "invalid_request" {
		t.Fatalf("unpushed request: %d %q", w.Code, w.Header().Get("Location"))
	}
	_, pr := e.push(c, pushForm(c))
	if w := authorizeWithLogin(t, newAgent(e), parAuthorizeURL(c.ID, pr.RequestURI)); w.Code != http.StatusFound || callback(t, w).Get("code") == "" {
		t.Fatalf("pushed request: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestRFC9449_10_1_PARWithDPoPHeaderBindsTheCode: a DPoP proof at the PAR
// endpoint sets dpop_jkt: the code is redeemed only with that key. A
// dpop_jkt that is not the proof's key is refused.
func TestRFC9449_10_1_PARWithDPoPHeaderBindsTheCode(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	p, other := e.prover(), e.prover()
	if status, pr := e.push(c, pushForm(c, func(q url.Values) { q.Set("dpop_jkt", other.JKT()) }), mustProof(t, p, "POST", parURL, "", "")); status != 400 || pr.Error != "invalid_dpop_proof" {
		t.Errorf("dpop_jkt of another key: %d %+v", status, pr)
	}
	if status, pr := e.push(c, pushForm(c), mustProof(t, p, "POST", tokenURL, "", "")); status != 400 || pr.Error != "invalid_dpop_proof" {
		t.Errorf("proof for the token endpoint: %d %+v", status, pr)
	}
	status, pr := e.push(c, pushForm(c), mustProof(t, p, "POST", parURL, "", ""))
	if status != http.StatusCreated {
		t.Fatalf("push with proof: %d %+v", status, pr)
	}
	w := authorizeWithLogin(t, newAgent(e), parAuthorizeURL(c.ID, pr.RequestURI))
	code := callback(t, w).Get("code")
	if status, tr := e.redeem(c, code); status != 400 || tr.Error != "invalid_dpop_proof" {
		t.Errorf("redeem without proof: %d %+v", status, tr)
	}
	if status, tr := e.grantDPoP(c, redeemForm(code), mustProof(t, other, "POST", tokenURL, "", "")); status != 400 {
		t.Errorf("redeem with another key: %d %+v", status, tr)
	}
	status, tr := e.grantDPoP(c, redeemForm(code), mustProof(t, p, "POST", tokenURL, "", ""))
	if status != 200 || tr.TokenType != "DPoP" || cnfOf(t, tr.AccessToken) != p.JKT() {
		t.Fatalf("redeem with the key: %d %+v", status, tr)
	}
}

// TestRFC9449_10_DPoPJKTOnTheAuthorizationRequest: dpop_jkt sent to
// /oauth2/authorize directly binds the code too.
func TestRFC9449_10_DPoPJKTOnTheAuthorizationRequest(t *testing.T) {
	e, _, _ := loginEnv(t)
	c := e.webClient()
	p := e.prover()
	w := authorizeWithLogin(t, newAgent(e), authorizeURL(c, func(q url.Values) { q.Set("dpop_jkt", p.JKT()) }))
	code := callback(t, w).Get("code")
	if status, tr := e.redeem(c, code); status != 400 || tr.Error != "invalid_dpop_proof" {
		t.Errorf("redeem without proof: %d %+v", status, tr)
	}
	if status, tr := e.grantDPoP(c, redeemForm(code), mustProof(t, p, "POST", tokenURL, "", "")); status != 200 {
		t.Errorf("redeem with the key: %d %+v", status, tr)
	}
	w = authorizeWithLogin(t, newAgent(e), authorizeURL(c, func(q url.Values) { q.Set("dpop_jkt", "not-a-thumbprint") }))
	if w.Code != http.StatusFound || callback(t, w).Get("error") != "invalid_request" {
		t.Errorf("malformed dpop_jkt: %d %q", w.Code, w.Header().Get("Location"))
	}
}
