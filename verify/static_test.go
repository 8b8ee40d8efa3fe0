package verify

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// noNetwork fails the test on any request: a Verifier built from a static
// key set must never fetch anything.
type noNetwork struct{ t *testing.T }

func (n noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	n.t.Errorf("NewWithJWKS made a request to %s", r.URL)
	return nil, errors.New("no network in this test")
}

// TestNewWithJWKS_VerifiesOfflineWithEveryCheckOfNew: a Verifier from the
// issuer's JWKS document verifies tokens without any request, refuses a
// key it was not given, and keeps New's other checks (typ, audience,
// expiry, revocation).
func TestNewWithJWKS_VerifiesOfflineWithEveryCheckOfNew(t *testing.T) {
	c := newClock()
	k1, other := newKey(t, "k1", latch.ES256), newKey(t, "k2", latch.ES256)
	is := &issuer{URL: "https://issuer.example"}
	revoked := map[string]bool{}
	cfg := Config{
		Issuer: is.URL, Audience: testAudience, Now: c.Now,
		HTTPClient: &http.Client{Transport: noNetwork{t}},
		IsRevoked:  func(_ context.Context, iss, jti string) bool { return revoked[jti] },
	}
	v, err := NewWithJWKS(cfg, []byte(mustJSON(map[string]any{"keys": []any{k1.jwk()}})))
	if err != nil {
		t.Fatalf("NewWithJWKS: %v", err)
	}
	ctx := context.Background()

	good := claimsAt(is, c)
	if got, err := v.Verify(ctx, mustSign(t, k1, TypeAccessToken, good)); err != nil || got.Subject != good.Subject {
		t.Fatalf("Verify(valid token) = %v, %v", got, err)
	}
	if _, err := v.Verify(ctx, mustSign(t, other, TypeAccessToken, claimsAt(is, c))); !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("token of a key not in the set: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, mustSign(t, k1, "JWT", claimsAt(is, c))); err == nil {
		t.Error("an ID-token typ was accepted")
	}
	wrongAud := claimsAt(is, c)
	wrongAud.Audience = token.Audience{"another-api"}
	if _, err := v.Verify(ctx, mustSign(t, k1, TypeAccessToken, wrongAud)); err == nil {
		t.Error("a token for another audience was accepted")
	}
	revoked[good.ID] = true
	if _, err := v.Verify(ctx, mustSign(t, k1, TypeAccessToken, good)); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked token: %v, want ErrRevoked", err)
	}
}

// The key set is checked as a fetched one is: a set with a private key, or
// with no key of an allowed algorithm, is refused at construction.
func TestNewWithJWKS_RefusesUnusableSets(t *testing.T) {
	k := newKey(t, "k1", latch.ES256)
	priv := k.jwk()
	priv["d"] = "AAAA"
	cfg := Config{Issuer: "https://issuer.example", Audience: testAudience}
	for name, jwks := range map[string]string{
		"not JSON":            "{",
		"no keys array":       `{"kty":"EC"}`,
		"private key":         mustJSON(map[string]any{"keys": []any{priv}}),
		"algorithm not given": mustJSON(map[string]any{"keys": []any{newKey(t, "e", latch.EdDSA).jwk()}}),
	} {
		if _, err := NewWithJWKS(cfg, []byte(jwks)); err == nil {
			t.Errorf("%s: NewWithJWKS accepted it", name)
		}
	}
	if _, err := NewWithJWKS(Config{Issuer: "https://issuer.example"}, []byte(mustJSON(map[string]any{"keys": []any{k.jwk()}}))); err == nil {
		t.Error("a Config without Audience was accepted")
	}
}
