package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzDPoPAndPAR sends arbitrary DPoP headers with arbitrary forms to the
// token and PAR endpoints, arbitrary DPoP credentials to userinfo, and
// arbitrary queries (request_uri, dpop_jkt) to /oauth2/authorize of a real
// server on SQLite. Whatever the input, the answer is never a 5xx.
func FuzzDPoPAndPAR(f *testing.F) {
	e := newEnv(f)
	c := e.webClient()
	p := e.prover()
	basic := "Basic " + b64std(c.ID+":"+c.Secret)
	f.Add(uint8(0), "grant_type=client_credentials", mustProof(f, p, "POST", tokenURL, "", ""), basic)
	f.Add(uint8(1), pushForm(c).Encode(), mustProof(f, p, "POST", parURL, "", ""), basic)
	f.Add(uint8(1), pushForm(c, func(q url.Values) { q.Set("dpop_jkt", p.JKT()) }).Encode(), "", basic)
	f.Add(uint8(2), "client_id="+c.ID+"&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax", "", "")
	f.Add(uint8(2), strings.TrimPrefix(authorizeURL(c, func(q url.Values) { q.Set("dpop_jkt", p.JKT()) }), "/oauth2/authorize?"), "", "")
	f.Add(uint8(3), "", mustProof(f, p, "GET", testIssuer+"/userinfo", "lt_at_x", ""), "DPoP lt_at_x")
	f.Add(uint8(3), "", "e30.e30.", "DPoP e30.e30.")
	f.Fuzz(func(t *testing.T, which uint8, body, proof, auth string) {
		var r *http.Request
		switch which % 4 {
		case 0, 1:
			path := "/oauth2/token"
			if which%4 == 1 {
				path = "/oauth2/par"
			}
			r = httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case 2:
			u, err := url.Parse("/oauth2/authorize?" + body)
			if err != nil {
				return
			}
			r = httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
			r.URL = u
		default:
			r = httptest.NewRequest(http.MethodGet, "/userinfo", nil)
		}
		if proof != "" {
			r.Header["Dpop"] = []string{proof}
		}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
