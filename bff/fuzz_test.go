package bff

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzValidReturnTo: whatever return_to passes, a browser resolving it
// against the app's URL stays on the app's origin.
func FuzzValidReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/settings?tab=1", "//evil.test", "/\\evil.test", "https://evil.test", "/%2F%2Fevil", "/a/../..//evil", "/\t/evil", "javascript:x", "/caf\u00e9"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.test/bff/callback?code=x")
	f.Fuzz(func(t *testing.T, p string) {
		if !validReturnTo(p) {
			return
		}
		ref, err := url.Parse(p)
		if err != nil {
			t.Fatalf("valid return_to %q does not parse: %v", p, err)
		}
		u := base.ResolveReference(ref)
		if u.Scheme != "https" || u.Host != "app.test" || u.User != nil {
			t.Fatalf("return_to %q leaves the origin: %s", p, u)
		}
		if strings.ContainsAny(p, "\\\r\n\t ") {
			t.Fatalf("return_to %q holds a character browsers rewrite", p)
		}
	})
}

// FuzzCookieKey: any cookie value is refused or mapped to a key, never a
// panic; only the shape the BFF sets is accepted.
func FuzzCookieKey(f *testing.F) {
	for _, s := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 42) + "=", strings.Repeat("/", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if _, ok := cookieKey(v); ok && len(v) != cookieValueLen {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzJWTIDAndExp: the token endpoint's access token, read without
// verification, never panics the BFF.
func FuzzJWTIDAndExp(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "lt_at_x", "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJqMSIsImV4cCI6MX0.c2ln", "a.eyJleHAiOiJ4In0.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) { jwtIDAndExp(tok) })
}

// FuzzDPoPChallenge: the upstream's answer (WWW-Authenticate, DPoP-Nonce)
// never panics the BFF; only a 401 DPoP challenge naming use_dpop_nonce
// asks for a retry, and only a printable nonce of at most 512 bytes is
// kept for the next proofs.
func FuzzDPoPChallenge(f *testing.F) {
	f.Add(401, `DPoP error="use_dpop_nonce"`, "n1")
	f.Add(401, `DPoP realm="api", error="use_dpop_nonce", algs="ES256"`, "eyJ")
	f.Add(401, `Bearer error="use_dpop_nonce"`, "")
	f.Add(401, `dpop   error="invalid_token"`, "\x00")
	f.Add(200, `DPoP error="use_dpop_nonce"`, strings.Repeat("n", 600))
	f.Fuzz(func(t *testing.T, status int, challenge, nonce string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Www-Authenticate": {challenge}, "Dpop-Nonce": {nonce}}}
		if askedForNonce(resp) && (status != 401 || !strings.Contains(challenge, "use_dpop_nonce") || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(challenge)), "dpop")) {
			t.Fatalf("a retry asked for by %d %q", status, challenge)
		}
		var n nonceCache
		n.update(resp.Header)
		if got := n.get(); got != "" && (got != nonce || len(got) > 512 || !isPrintable(got)) {
			t.Fatalf("kept nonce %q from %q", got, nonce)
		}
	})
}
