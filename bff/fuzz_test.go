package bff

import (
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
