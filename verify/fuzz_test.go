package verify

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch/oauth"
)

// FuzzParseAuthorization: the Authorization parsing never panics; a token
// it returns is a non-empty b64token that came from a Bearer header, and it
// never returns a token together with an error.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer abc.def.ghi", "bearer lt_at_x", "BEARER a==", "Bearer  two-spaces",
		"Bearer", "Bearer ", "Bearer a b", "Basic dXNlcjpwYXNz", "Bearerx abc",
		"Bearer a=b", "Bearer \tabc", "Bearer é", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		raw, isBearer, err := oauth.ParseAuthorization(v)
		if err != nil && raw != "" {
			t.Fatal("a token and an error")
		}
		if raw == "" {
			return
		}
		if !isBearer || !strings.EqualFold(v[:6], "bearer") || !oauth.IsB64Token(raw) || !strings.HasSuffix(v, raw) {
			t.Fatalf("%q gave token %q", v, raw)
		}
		if strings.ContainsAny(raw, " \t\"\\,") {
			t.Fatalf("token %q holds a separator", raw)
		}
		// Through a request too: one header, no cookie, no query.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", v)
		if got, err := requestToken(r, ""); err != nil || got != raw {
			t.Fatalf("requestToken: %q, %v; want %q", got, err, raw)
		}
	})
}
