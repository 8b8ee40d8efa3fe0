package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

const testFgpValue = "q2v0aGluZy1yYW5kb20tMzItYnl0ZXMtYmFzZTY0dXJs"

func fgpOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// fgpSetup returns a verifier with FingerprintCookie set (mutate may change
// its Config), a bound token and an unbound one.
func fgpSetup(t *testing.T, mutate func(*Config)) (h http.Handler, v *Verifier, bound, unbound string) {
	t.Helper()
	k := newKey(t, "k1", latch.ES256)
	is := newIssuer(t, k)
	c := newClock()
	cfg := is.config(c)
	cfg.FingerprintCookie = DefaultFingerprintCookie
	if mutate != nil {
		mutate(&cfg)
	}
	v = mustNew(t, cfg)
	bc := claimsAt(is, c)
	bc.Extra = map[string]any{"fgp": fgpOf(testFgpValue)}
	return v.Middleware(echoClaims), v, mustSign(t, k, "at+jwt", bc), mustSign(t, k, "at+jwt", claimsAt(is, c))
}

func fgpRequest(tok, cookie string) *http.Request {
	r := bearerRequest(tok)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: DefaultFingerprintCookie, Value: cookie})
	}
	return r
}

func wantFgpRefused(t *testing.T, name string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"),
		`error="invalid_token", error_description="token fingerprint missing or wrong"`) {
		t.Errorf("%s: %d %q, want 401 invalid_token token fingerprint missing or wrong", name, w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// TestFingerprint_Middleware (security invariant 8): a bound token alone is
// refused, with the right cookie accepted, with another cookie refused; the
// cookie is checked on every request, cache hits included.
func TestFingerprint_Middleware(t *testing.T) {
	h, _, bound, _ := fgpSetup(t, nil)
	wantFgpRefused(t, "token alone", serveWith(h, fgpRequest(bound, "")))
	if w := serveWith(h, fgpRequest(bound, testFgpValue)); w.Code != 200 || w.Body.String() != "user-1" {
		t.Fatalf("token + right cookie: %d %s", w.Code, w.Body)
	}
	// The claims are now cached: each request still needs its own cookie.
	wantFgpRefused(t, "cache hit, token alone", serveWith(h, fgpRequest(bound, "")))
	wantFgpRefused(t, "cache hit, wrong cookie", serveWith(h, fgpRequest(bound, testFgpValue+"x")))
	wantFgpRefused(t, "cache hit, another cookie name", func() *httptest.ResponseRecorder {
		r := bearerRequest(bound)
		r.AddCookie(&http.Cookie{Name: "latch_fgp", Value: testFgpValue})
		return serveWith(h, r)
	}())
	if w := serveWith(h, fgpRequest(bound, testFgpValue)); w.Code != 200 {
		t.Fatalf("cache hit, token + right cookie: %d %s", w.Code, w.Body)
	}
}

func TestFingerprint_Middleware_UnboundToken(t *testing.T) {
	h, _, _, unbound := fgpSetup(t, nil)
	wantFgpRefused(t, "unbound token", serveWith(h, fgpRequest(unbound, "")))
	wantFgpRefused(t, "unbound token + a cookie", serveWith(h, fgpRequest(unbound, testFgpValue)))

	h, _, bound, unbound := fgpSetup(t, func(c *Config) { c.AllowUnboundTokens = true })
	if w := serveWith(h, fgpRequest(unbound, "")); w.Code != 200 {
		t.Errorf("AllowUnboundTokens, unbound token: %d %s", w.Code, w.Body)
	}
	wantFgpRefused(t, "AllowUnboundTokens, bound token alone", serveWith(h, fgpRequest(bound, "")))
	if w := serveWith(h, fgpRequest(bound, testFgpValue)); w.Code != 200 {
		t.Errorf("AllowUnboundTokens, bound token + cookie: %d %s", w.Code, w.Body)
	}
}

// TestFingerprint_Off: without FingerprintCookie, fgp is not checked and
// Verify keeps working for callers that do not use fingerprints.
func TestFingerprint_Off(t *testing.T) {
	h, v, bound, _ := fgpSetup(t, func(c *Config) { c.FingerprintCookie = "" })
	if w := serveWith(h, fgpRequest(bound, "")); w.Code != 200 {
		t.Errorf("check off, bound token alone: %d %s", w.Code, w.Body)
	}
	if _, err := v.Verify(t.Context(), bound); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestCheckFingerprint(t *testing.T) {
	bound := &Claims{Claims: token.Claims{Extra: map[string]any{"fgp": fgpOf(testFgpValue)}}}
	for _, tc := range []struct {
		name   string
		claims *Claims
		cookie string
		want   error
	}{
		{"right cookie", bound, testFgpValue, nil},
		{"no cookie", bound, "", ErrFingerprint},
		{"wrong cookie", bound, "other", ErrFingerprint},
		{"unbound", &Claims{}, testFgpValue, ErrUnboundToken},
		{"fgp not a string", &Claims{Claims: token.Claims{Extra: map[string]any{"fgp": 1.0}}}, testFgpValue, ErrFingerprint},
		{"fgp upper case", &Claims{Claims: token.Claims{Extra: map[string]any{"fgp": strings.ToUpper(fgpOf(testFgpValue))}}}, testFgpValue, ErrFingerprint},
	} {
		err := CheckFingerprint(tc.claims, fgpRequest("x", tc.cookie), DefaultFingerprintCookie)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := CheckFingerprint(&Claims{}, fgpRequest("x", ""), DefaultFingerprintCookie); !errors.Is(err, ErrFingerprint) {
		t.Errorf("ErrUnboundToken does not wrap ErrFingerprint: %v", err)
	}
}

func TestFingerprint_ConfigValidate(t *testing.T) {
	is := newIssuer(t, newKey(t, "k1", latch.ES256))
	for name, mutate := range map[string]func(*Config){
		"bad name":                 func(c *Config) { c.FingerprintCookie = "a b" },
		"same as token cookie":     func(c *Config) { c.FingerprintCookie, c.CookieName = "x", "x" },
		"allow unbound, no cookie": func(c *Config) { c.AllowUnboundTokens = true },
	} {
		cfg := is.config(newClock())
		mutate(&cfg)
		if err := cfg.withDefaults().Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
