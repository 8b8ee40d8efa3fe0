package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch/token"
	"github.com/latch-auth/latch/verify"
)

// TestClassification_ServerAndVerifyAgree: the authorization server and
// verify read the same Authorization headers as the same bearer token (or
// as none), and judge the same strings opaque, JWE or JWS, because each
// rule has one home (oauth.BearerToken, token.IsOpaque, token.IsCompactJWE).
func TestClassification_ServerAndVerifyAgree(t *testing.T) {
	jweHeader := "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00ifQ" // {"alg":"ECDH-ES+A256KW","enc":"A256GCM"}
	for _, h := range [][]string{
		nil, {""}, {"Bearer abc.def.ghi"}, {"bearer lt_at_x"}, {"BEARER a=="}, {"Bearer  two-spaces"},
		{"Bearer"}, {"Bearer "}, {"Bearer a b"}, {"Basic dXNlcjpwYXNz"}, {"Bearerx abc"}, {"Bearer a=b"},
		{"Bearer \tabc"}, {"Bearer é"}, {"Bearer a", "Bearer a"}, {"Bearer a", "Basic b"}, {"Bearer a,b"},
		{"Bearer " + jweHeader + ".a.b.c.d"}, {"Bearer lt_rt_" + strings.Repeat("A", 40)},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range h {
			r.Header.Add("Authorization", v)
		}
		got, ok := bearer(r)
		want, err := verify.BearerToken(r)
		if ok != (err == nil && want != "") || got != want && ok {
			t.Errorf("Authorization %q: server reads %q (%v), verify %q (%v)", h, got, ok, want, err)
		}
	}
	for _, s := range []string{
		"lt_at_abc", "lt_rt_abc", "lt_", "LT_at_x", "eyJ.a.b", jweHeader + ".a.b.c.d", "a.b.c.d.e",
		"eyJhbGciOiJFUzI1NiJ9.a.b.c.d", "....", jweHeader + ".a.b.c", "",
	} {
		opaque, jwe := token.IsOpaque(s), token.IsCompactJWE(s)
		if opaque && jwe {
			t.Errorf("%q is both opaque and a JWE", s)
		}
		if want := strings.HasPrefix(s, "lt_"); opaque != want {
			t.Errorf("IsOpaque(%q) = %v, want %v", s, opaque, want)
		}
		if want := s == jweHeader+".a.b.c.d"; jwe != want {
			t.Errorf("IsCompactJWE(%q) = %v, want %v", s, jwe, want)
		}
	}
}
