package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestKeyRotation_OldTokensVerifyThroughOverlap_NewKeySignsAfterPrePublication
// rotates the signing key of a running server: the new key is in the JWKS at
// once but signs only after the pre-publication period (1h by default); tokens
// of the old key stay active until they expire, and the old key leaves the
// JWKS once no token it signed can still be valid.
func TestKeyRotation_OldTokensVerifyThroughOverlap_NewKeySignsAfterPrePublication(t *testing.T) {
	// The key manager keeps a superseded key published for its MaxTokenTTL
	// (24h by default; serve sets it from --max-access-token-ttl).
	e := newEnv(t)
	c := e.jwtClient()
	ctx := context.Background()
	kidOf := func(tok string) string { h, _, _ := segments(t, tok); return h["kid"].(string) }
	jwksKids := func() []string {
		var set jose.JSONWebKeySet
		mustJSON(t, e.get("/.well-known/jwks.json", nil).Body.Bytes(), &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		return kids
	}

	old := e.token(c, nil)
	oldKid := kidOf(old)
	newKey, err := e.keys.Rotate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(); len(kids) != 2 {
		t.Fatalf("the new key must be published at once: %v", kids)
	}
	// During pre-publication the old key still signs.
	e.clock.Advance(30 * time.Minute)
	if got := kidOf(e.token(c, nil)); got != oldKid {
		t.Fatalf("new key signed before its pre-publication ended: %s", got)
	}
	// After it, the new key signs; the old key's tokens still verify.
	e.clock.Advance(31 * time.Minute)
	fresh := e.token(c, nil)
	if got := kidOf(fresh); got != newKey.ID {
		t.Fatalf("after pre-publication tokens are signed by %s, want %s", got, newKey.ID)
	}
	if got := e.introspect(c, fresh); !strings.Contains(got, `"active":true`) {
		t.Fatalf("token of the new key inactive: %s", got)
	}
	if kids := jwksKids(); len(kids) != 2 {
		t.Fatalf("the superseded key must stay published while its tokens can be valid: %v", kids)
	}
	// Once the longest token lifetime (+ leeway) has passed since the old key
	// last signed, it leaves the JWKS; the new key's tokens are unaffected.
	e.clock.Advance(24*time.Hour + 2*time.Minute)
	if err := e.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(); len(kids) != 1 || kids[0] != newKey.ID {
		t.Fatalf("old key still published after its tokens expired: %v", kids)
	}
}

// TestKeyRotation_TokenOfOldKeyActiveDuringOverlap pins the overlap itself: a
// 10-minute token signed by the old key one second before the switch is
// still active five minutes after it.
func TestKeyRotation_TokenOfOldKeyActiveDuringOverlap(t *testing.T) {
	e := newEnv(t)
	c := e.jwtClient()
	if _, err := e.keys.Rotate(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour - time.Second)
	old := e.token(c, nil)
	e.clock.Advance(5 * time.Minute)
	if got := e.introspect(c, old); !strings.Contains(got, `"active":true`) {
		t.Fatalf("old key's token during the overlap: %s", got)
	}
	h, _, _ := segments(t, e.token(c, nil))
	if h2, _, _ := segments(t, old); h["kid"] == h2["kid"] {
		t.Fatal("the new key should sign by now")
	}
}
