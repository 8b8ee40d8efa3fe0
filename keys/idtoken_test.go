package keys

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

func idJWKS(tb testing.TB, m *Manager) map[string]string {
	tb.Helper()
	body, _ := m.JWKS()
	var set struct {
		Keys []struct{ Kid, Alg string }
	}
	if err := json.Unmarshal(body, &set); err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range set.Keys {
		out[k.Kid] = k.Alg
	}
	return out
}

func TestIDTokenLine_EnsureKeyMakesAnRSAKeyBesideTheDefault(t *testing.T) {
	clk := newClock()
	store := &memStore{}
	m := mustManager(t, store, clk, Config{IDTokenAlgorithm: latch.RS256})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	kid, alg, _ := mustSigning(t, m)
	if alg != latch.ES256 {
		t.Fatalf("Signing = %s, want the default line's ES256", alg)
	}
	rsKid, signer, err := m.SigningFor(latch.RS256)
	if err != nil {
		t.Fatalf("SigningFor(RS256): %v", err)
	}
	if _, ok := signer.Public().(*rsa.PublicKey); !ok || rsKid == kid {
		t.Fatalf("SigningFor(RS256) = %s %T", rsKid, signer.Public())
	}
	if got, _, err := m.SigningFor(latch.ES256); err != nil || got != kid {
		t.Errorf("SigningFor(ES256) = %s, %v; want the default key %s", got, err, kid)
	}
	if _, _, err := m.SigningFor(latch.EdDSA); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("SigningFor(EdDSA) = %v, want ENOTFOUND", err)
	}
	if got := m.SigningAlgorithms(); !slices.Equal(got, []latch.Algorithm{latch.ES256, latch.RS256}) {
		t.Errorf("SigningAlgorithms = %v", got)
	}
	if got := idJWKS(t, m); got[kid] != "ES256" || got[rsKid] != "RS256" || len(got) != 2 {
		t.Errorf("JWKS = %v", got)
	}
	// Again: nothing new.
	if err := m.EnsureKey(context.Background()); err != nil || len(store.keys) != 2 {
		t.Fatalf("EnsureKey again: %v, %d keys", err, len(store.keys))
	}
	infos, err := m.List(context.Background())
	if err != nil || len(infos) != 2 || infos[0].Purpose != latch.PurposeDefault || infos[1].Purpose != latch.PurposeIDToken {
		t.Errorf("List = %+v, %v", infos, err)
	}
}

func TestIDTokenLine_RotatesWithTheDefaultLine(t *testing.T) {
	clk := newClock()
	m := mustManager(t, &memStore{}, clk, Config{IDTokenAlgorithm: latch.RS256})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldRS, _, _ := m.SigningFor(latch.RS256)
	newES := mustRotate(t, m, "")
	// Pre-publication: the old keys sign, the new ones are published.
	if got, _, _ := m.SigningFor(latch.RS256); got != oldRS {
		t.Fatalf("before ActiveAt, RS256 signer %s, want the old %s", got, oldRS)
	}
	if n := len(idJWKS(t, m)); n != 4 {
		t.Fatalf("JWKS during pre-publication: %d keys, want 4", n)
	}
	clk.Advance(testPrePublish)
	if kid, _, _ := mustSigning(t, m); kid != newES.ID {
		t.Errorf("default signer %s, want %s", kid, newES.ID)
	}
	newRS, _, err := m.SigningFor(latch.RS256)
	if err != nil || newRS == oldRS {
		t.Errorf("after ActiveAt, RS256 signer %s, %v; want a new key", newRS, err)
	}
	// The old keys stay published until their tokens expire.
	clk.Advance(testGrace - time.Second)
	if got := idJWKS(t, m); got[oldRS] != "RS256" {
		t.Errorf("old RS256 key left the JWKS early: %v", got)
	}
	clk.Advance(2 * time.Second)
	if got := idJWKS(t, m); len(got) != 2 {
		t.Errorf("after the grace: %v, want the 2 current keys", got)
	}
}

func TestIDTokenLine_RetiringItsOnlyKey_IsRefused(t *testing.T) {
	clk := newClock()
	m := mustManager(t, &memStore{}, clk, Config{IDTokenAlgorithm: latch.RS256})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	rs, _, _ := m.SigningFor(latch.RS256)
	if err := m.Retire(context.Background(), rs, false); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("Retire(the only RS256 key) = %v, want EINVALID", err)
	}
	mustRotate(t, m, "")
	if err := m.Retire(context.Background(), rs, true); err != nil {
		t.Fatalf("Retire --now after a rotation: %v", err)
	}
	if _, _, err := m.SigningFor(latch.RS256); err == nil {
		t.Error("an RS256 key signs between the retirement and the successor's ActiveAt")
	}
	if _, ok := idJWKS(t, m)[rs]; ok {
		t.Error("a key retired --now is still published")
	}
}

func TestIDTokenLine_NotKeptWhenTheDefaultIsThatAlgorithm(t *testing.T) {
	clk := newClock()
	store := &memStore{}
	m := mustManager(t, store, clk, Config{Algorithm: latch.RS256, IDTokenAlgorithm: latch.RS256})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustRotate(t, m, "")
	if len(store.keys) != 2 {
		t.Fatalf("%d keys, want one per rotation", len(store.keys))
	}
	kid, _, _ := mustSigning(t, m)
	if got, _, err := m.SigningFor(latch.RS256); err != nil || got != kid {
		t.Errorf("SigningFor(RS256) = %s, %v; want the default key %s", got, err, kid)
	}
}
