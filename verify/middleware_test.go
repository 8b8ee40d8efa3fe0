package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// serveWith runs one request through h and returns the recorder.
func serveWith(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// echoClaims is the protected handler: it answers the sub of the claims the
// middleware put in the context.
var echoClaims = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	w.Write([]byte(c.Subject))
})

func TestMiddleware_ValidToken_ClaimsInContext(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	h := mustNew(t, is.config(c)).Middleware(echoClaims)
	tok := mustSign(t, k, "at+jwt", claimsAt(is, c))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		r := httptest.NewRequest(http.MethodGet, "/resource", nil)
		r.Header.Set("Authorization", scheme+" "+tok)
		if w := serveWith(h, r); w.Code != 200 || w.Body.String() != "user-1" {
			t.Fatalf("scheme %q: %d %s", scheme, w.Code, w.Body)
		}
	}
}

func TestMiddleware_NoToken_BareChallenge(t *testing.T) {
	is := newIssuer(t, newKey(t, "k1", latch.ES256))
	h := mustNew(t, is.config(newClock())).Middleware(echoClaims)
	for name, r := range map[string]*http.Request{
		"none":  bearerRequest(""),
		"basic": func() *http.Request { r := bearerRequest(""); r.SetBasicAuth("a", "b"); return r }(),
	} {
		w := serveWith(h, r)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="api"` {
			t.Fatalf("%s: %d %q; want 401 with a challenge without error (RFC 6750 §3.1)", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestMiddleware_MalformedRequests_AreInvalidRequest(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	h := mustNew(t, is.config(c)).Middleware(echoClaims)
	tok := mustSign(t, k, "at+jwt", claimsAt(is, c))
	for name, r := range map[string]*http.Request{
		"query token": httptest.NewRequest(http.MethodGet, "/resource?access_token="+tok, nil),
		"query token + hdr": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/r?x=1&access_token="+tok, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}(),
		"two headers":    func() *http.Request { r := bearerRequest(tok); r.Header.Add("Authorization", "Bearer "+tok); return r }(),
		"empty bearer":   func() *http.Request { r := bearerRequest(""); r.Header.Set("Authorization", "Bearer "); return r }(),
		"bearer alone":   func() *http.Request { r := bearerRequest(""); r.Header.Set("Authorization", "Bearer"); return r }(),
		"two tokens":     func() *http.Request { r := bearerRequest(""); r.Header.Set("Authorization", "Bearer a b"); return r }(),
		"quote in token": func() *http.Request { r := bearerRequest(""); r.Header.Set("Authorization", `Bearer a"b`); return r }(),
	} {
		w := serveWith(h, r)
		if w.Code != 400 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="api", error="invalid_request", error_description="`) {
			t.Errorf("%s: %d %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestMiddleware_Cookie(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	cfg := is.config(c)
	cfg.CookieName = "__Host-at"
	h := mustNew(t, cfg).Middleware(echoClaims)
	r := httptest.NewRequest(http.MethodGet, "/resource", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-at", Value: mustSign(t, k, "at+jwt", claimsAt(is, c))})
	if w := serveWith(h, r); w.Code != 200 {
		t.Fatalf("cookie token: %d %s", w.Code, w.Body)
	}
	// Without CookieName the cookie is not read.
	h = mustNew(t, is.config(c)).Middleware(echoClaims)
	if w := serveWith(h, r); w.Code != 401 {
		t.Fatalf("cookie read without CookieName: %d", w.Code)
	}
}

func TestRequireScope(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	v := mustNew(t, is.config(c))
	cl := claimsAt(is, c)
	cl.Scope = "read"
	tok := mustSign(t, k, "at+jwt", cl)
	if w := serveWith(v.Middleware(RequireScope("read")(echoClaims)), bearerRequest(tok)); w.Code != 200 {
		t.Fatalf("read: %d", w.Code)
	}
	w := serveWith(v.Middleware(RequireScope("read", "write")(echoClaims)), bearerRequest(tok))
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != `Bearer realm="api", error="insufficient_scope", error_description="the token lacks a required scope", scope="read write"` {
		t.Fatalf("write: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := serveWith(RequireScope("read")(echoClaims), bearerRequest(tok)); w.Code != 401 {
		t.Fatalf("RequireScope without Middleware: %d, want 401", w.Code)
	}
}

func TestRequireScope_InvalidScope_Panics(t *testing.T) {
	for _, s := range []string{"", "a b", `a"b`, "é"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireScope(%q) did not panic", s)
				}
			}()
			RequireScope(s)
		}()
	}
}

// TestMiddleware_Forgeries_AreRefused runs security invariants 1-3 through the
// middleware: every forged or foreign token is 401 invalid_token, and none
// makes the verifier fetch a URL the token names.
func TestMiddleware_Forgeries_AreRefused(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	ed := newKey(t, "ed1", latch.EdDSA)
	attacker := newKey(t, "k1", latch.ES256) // same kid, other key
	is := newIssuer(t, k, ed)
	c := newClock()
	cfg := is.config(c)
	v := mustNew(t, cfg)
	h := v.Middleware(echoClaims)
	cl := claimsAt(is, c)
	payload := mustJSON(cl)
	good := mustSign(t, k, "at+jwt", cl)
	parts := strings.Split(good, ".")
	b64 := func(s string) string { return enc.EncodeToString([]byte(s)) }
	hs256 := func(key []byte, header string) string {
		in := b64(header) + "." + b64(payload)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + enc.EncodeToString(m.Sum(nil))
	}
	pubJSON := mustJSON(k.jwk())
	ecBytes, _ := k.priv.Public().(interface{ Bytes() ([]byte, error) }).Bytes()
	attackerJWK := mustJSON(attacker.jwk())
	evil := is.srv.URL + "/evil"
	flip := func(s string) string {
		b := []byte(s)
		if b[10] == 'A' {
			b[10] = 'B'
		} else {
			b[10] = 'A'
		}
		return string(b)
	}

	withClaims := func(f func(*token.Claims)) string {
		cl := claimsAt(is, c)
		f(cl)
		return mustSign(t, k, "at+jwt", cl)
	}
	cases := map[string]struct {
		tok, desc string
	}{
		"alg none":                {b64(`{"alg":"none","kid":"k1","typ":"at+jwt"}`) + "." + b64(payload) + ".", "the token algorithm is not allowed"},
		"alg None":                {b64(`{"alg":"None","kid":"k1","typ":"at+jwt"}`) + "." + b64(payload) + ".", "the token algorithm is not allowed"},
		"alg NONE":                {b64(`{"alg":"NONE","kid":"k1","typ":"at+jwt"}`) + "." + b64(payload) + ".", "the token algorithm is not allowed"},
		"alg nOnE":                {b64(`{"alg":"nOnE","kid":"k1","typ":"at+jwt"}`) + "." + b64(payload) + ".", "the token algorithm is not allowed"},
		"HS256 with JWK":          {hs256([]byte(pubJSON), `{"alg":"HS256","kid":"k1","typ":"at+jwt"}`), "the token algorithm is not allowed"},
		"HS256 with point":        {hs256(ecBytes, `{"alg":"HS256","kid":"k1","typ":"at+jwt"}`), "the token algorithm is not allowed"},
		"embedded jwk":            {signRaw(t, attacker, `{"alg":"ES256","kid":"k1","typ":"at+jwt","jwk":`+attackerJWK+`}`, payload), "the token header is not allowed"},
		"jku":                     {signRaw(t, attacker, `{"alg":"ES256","kid":"k1","typ":"at+jwt","jku":"`+evil+`/jwks"}`, payload), "the token header is not allowed"},
		"x5u":                     {signRaw(t, attacker, `{"alg":"ES256","kid":"k1","typ":"at+jwt","x5u":"`+evil+`/x5u"}`, payload), "the token header is not allowed"},
		"x5c":                     {signRaw(t, attacker, `{"alg":"ES256","kid":"k1","typ":"at+jwt","x5c":["MIIB"]}`, payload), "the token header is not allowed"},
		"crit":                    {signRaw(t, k, `{"alg":"ES256","kid":"k1","typ":"at+jwt","crit":["exp"]}`, payload), "the token header is not allowed"},
		"attacker key same kid":   {signRaw(t, attacker, `{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, payload), "the token signature is invalid"},
		"stripped signature":      {parts[0] + "." + parts[1] + ".", "the token signature is invalid"},
		"no signature part":       {parts[0] + "." + parts[1], "the token is malformed"},
		"altered signature":       {parts[0] + "." + parts[1] + "." + flip(parts[2]), "the token signature is invalid"},
		"altered payload":         {parts[0] + "." + b64(strings.Replace(payload, "user-1", "admin", 1)) + "." + parts[2], "the token signature is invalid"},
		"alg of other key":        {signRaw(t, ed, `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`, payload), "the token algorithm is not allowed"},
		"ID token typ JWT":        {mustSign(t, k, "JWT", cl), "the token is not an access token"},
		"no typ":                  {signRaw(t, k, `{"alg":"ES256","kid":"k1"}`, payload), "the token is not an access token"},
		"expired":                 {withClaims(func(c *token.Claims) { c.ExpiresAt = c.IssuedAt - 3600; c.IssuedAt -= 7200; c.NotBefore = c.IssuedAt }), "the token expired"},
		"not yet valid":           {withClaims(func(c *token.Claims) { c.NotBefore += 3600 }), "the token is not valid yet"},
		"wrong aud":               {withClaims(func(c *token.Claims) { c.Audience = token.Audience{"https://other.example"} }), "the token is not for this audience"},
		"wrong iss":               {withClaims(func(c *token.Claims) { c.Issuer = "https://evil.example" }), "the token is from another issuer"},
		"refresh token":           {token.PrefixRefresh + strings.Repeat("A", 49), "the token is not an access token"},
		"opaque, no introspector": {must(token.NewOpaque(latch.KindAccess, nil)), "the token is malformed"},
		"garbage":                 {"abc", "the token is malformed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := serveWith(h, bearerRequest(tc.tok))
			want := `Bearer realm="api", error="invalid_token", error_description="` + tc.desc + `"`
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
				t.Fatalf("%d %q\nwant 401 %q", w.Code, w.Header().Get("WWW-Authenticate"), want)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "invalid_token" || body["error_description"] != tc.desc {
				t.Fatalf("body %s: %v", w.Body, err)
			}
		})
	}
	if n := is.countPrefix("/evil"); n != 0 {
		t.Fatalf("the verifier fetched a URL named by a token %d times", n)
	}
	if w := serveWith(h, bearerRequest(good)); w.Code != 200 {
		t.Fatalf("the genuine token after the forgeries: %d", w.Code)
	}
}
