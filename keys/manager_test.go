package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

// memStore is an in-memory latch.KeyStore. The store is not what these tests
// are about; the backends have their own conformance suite.
type memStore struct {
	mu   sync.Mutex
	keys []*latch.Key
}

func cloneKey(k *latch.Key) *latch.Key {
	c := *k
	c.Public = slices.Clone(k.Public)
	c.Private = slices.Clone(k.Private)
	return &c
}

func (s *memStore) CreateKey(ctx context.Context, k *latch.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.keys {
		if e.ID == k.ID {
			return latch.ErrConflict
		}
	}
	s.keys = append(s.keys, cloneKey(k))
	return nil
}

func (s *memStore) Keys(ctx context.Context) ([]*latch.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*latch.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = cloneKey(k)
	}
	slices.SortStableFunc(out, func(a, b *latch.Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (s *memStore) UpdateKey(ctx context.Context, k *latch.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.keys {
		if e.ID == k.ID {
			s.keys[i] = cloneKey(k)
			return nil
		}
	}
	return latch.ErrNotFound
}

// clock is an injected clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

const (
	testPrePublish = time.Hour
	testTTL        = 2 * time.Hour
	testLeeway     = time.Minute
	testGrace      = testTTL + testLeeway
)

func mustManager(tb testing.TB, store latch.KeyStore, clk *clock, cfg Config) *Manager {
	tb.Helper()
	if cfg.PrePublish == 0 {
		cfg.PrePublish = testPrePublish
	}
	if cfg.MaxTokenTTL == 0 {
		cfg.MaxTokenTTL = testTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = testLeeway
	}
	cfg.Now = clk.Now
	m, err := NewManager(store, mustSealer(tb, mustKEK(tb, 9)), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustSigning(tb testing.TB, m *Manager) (string, latch.Algorithm, crypto.Signer) {
	tb.Helper()
	kid, alg, signer, err := m.Signing()
	if err != nil {
		tb.Fatalf("Signing: %v", err)
	}
	return kid, alg, signer
}

func mustRotate(tb testing.TB, m *Manager, alg latch.Algorithm) *latch.Key {
	tb.Helper()
	k, err := m.Rotate(context.Background(), alg)
	if err != nil {
		tb.Fatalf("Rotate: %v", err)
	}
	return k
}

// jwks parses m's JWK Set.
func jwks(tb testing.TB, m *Manager) jose.JSONWebKeySet {
	tb.Helper()
	body, _ := m.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		tb.Fatalf("JWKS %s: %v", body, err)
	}
	return set
}

func jwksKids(tb testing.TB, m *Manager) []string {
	tb.Helper()
	var kids []string
	for _, k := range jwks(tb, m).Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// sign signs msg as a JWS signer of alg would.
func sign(tb testing.TB, signer crypto.Signer, alg latch.Algorithm, msg []byte) []byte {
	tb.Helper()
	h := sha256.Sum256(msg)
	var sig []byte
	var err error
	switch alg {
	case latch.EdDSA:
		sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case latch.PS256:
		sig, err = signer.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		sig, err = signer.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		tb.Fatalf("sign %s: %v", alg, err)
	}
	return sig
}

// verifies checks sig over msg with pub, with the standard library only.
func verifies(pub crypto.PublicKey, alg latch.Algorithm, msg, sig []byte) bool {
	h := sha256.Sum256(msg)
	switch alg {
	case latch.ES256:
		p, ok := pub.(*ecdsa.PublicKey)
		return ok && ecdsa.VerifyASN1(p, h[:], sig)
	case latch.EdDSA:
		p, ok := pub.(ed25519.PublicKey)
		return ok && ed25519.Verify(p, msg, sig)
	case latch.RS256:
		p, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(p, crypto.SHA256, h[:], sig) == nil
	case latch.PS256:
		p, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(p, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	}
	return false
}

// verifiesWithKey checks sig with the public key m.Key publishes for kid.
func verifiesWithKey(tb testing.TB, m *Manager, kid string, msg, sig []byte) bool {
	tb.Helper()
	pub, alg, err := m.Key(context.Background(), kid)
	if err != nil {
		return false
	}
	return verifies(pub, alg, msg, sig)
}

func stateOf(tb testing.TB, m *Manager, kid string) KeyInfo {
	tb.Helper()
	infos, err := m.List(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for _, in := range infos {
		if in.ID == kid {
			return in
		}
	}
	tb.Fatalf("List has no key %s", kid)
	return KeyInfo{}
}

func TestEnsureKey_CreatesOneKeyActiveAtOnce(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	kid, alg, _ := mustSigning(t, m) // no pre-publication for the very first key
	if alg != latch.ES256 {
		t.Fatalf("alg = %s, want the default ES256", alg)
	}
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	// A second process starting later finds the key and makes none.
	clk.Advance(time.Minute)
	if err := mustManager(t, store, clk, Config{}).EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(store.keys); n != 1 {
		t.Fatalf("store has %d keys, want 1", n)
	}
	if k, _, _ := mustSigning(t, m); k != kid {
		t.Fatalf("signing kid changed from %s to %s", kid, k)
	}
	if got := jwksKids(t, m); !slices.Equal(got, []string{kid}) {
		t.Fatalf("JWKS kids = %v, want [%s]", got, kid)
	}
}

func TestEnsureKey_PendingKeyIsEnough(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	cli := mustManager(t, store, clk, Config{})
	pending := mustRotate(t, cli, "") // the CLI rotated on an empty store
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(store.keys); n != 1 {
		t.Fatalf("store has %d keys, want 1", n)
	}
	if _, _, _, err := m.Signing(); latch.ErrorCode(err) != latch.EUNAVAILABLE || !strings.Contains(err.Error(), pending.ID) {
		t.Fatalf("Signing before ActiveAt: err = %v, want EUNAVAILABLE naming %s", err, pending.ID)
	}
	clk.Set(pending.ActiveAt)
	if kid, _, _ := mustSigning(t, m); kid != pending.ID {
		t.Fatalf("kid = %s, want %s", kid, pending.ID)
	}
}

func TestAlgorithms_SignatureVerifiesWithPublishedKey(t *testing.T) {
	for _, alg := range latch.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			ctx := context.Background()
			m := mustManager(t, &memStore{}, newClock(), Config{Algorithm: alg})
			if err := m.EnsureKey(ctx); err != nil {
				t.Fatal(err)
			}
			kid, gotAlg, signer := mustSigning(t, m)
			if gotAlg != alg {
				t.Fatalf("alg = %s, want %s", gotAlg, alg)
			}
			msg := []byte("header.payload")
			sig := sign(t, signer, alg, msg)

			if !verifiesWithKey(t, m, kid, msg, sig) {
				t.Fatal("signature does not verify with Key(kid)")
			}
			set := jwks(t, m)
			pub := set.Key(kid)
			if len(pub) != 1 {
				t.Fatalf("JWKS has %d keys with kid %s", len(pub), kid)
			}
			if pub[0].Algorithm != string(alg) || pub[0].Use != "sig" || !pub[0].IsPublic() {
				t.Fatalf("JWK alg=%q use=%q public=%v", pub[0].Algorithm, pub[0].Use, pub[0].IsPublic())
			}
			if !verifies(pub[0].Key, alg, msg, sig) {
				t.Fatal("signature does not verify with the JWKS key")
			}
			if verifies(pub[0].Key, alg, []byte("other"), sig) {
				t.Fatal("signature verifies over another message")
			}
			// The kid is the RFC 7638 thumbprint of the published key.
			tp, err := pub[0].Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := thumbprint(pub[0].Key); kid != want || len(tp) != 32 {
				t.Fatalf("kid %s is not the JWK thumbprint %s", kid, want)
			}
		})
	}
}

func TestRSABits_Honoured(t *testing.T) {
	m := mustManager(t, &memStore{}, newClock(), Config{Algorithm: latch.PS256, RSABits: 3072})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, signer := mustSigning(t, m)
	if n := signer.Public().(*rsa.PublicKey).N.BitLen(); n != 3072 {
		t.Fatalf("modulus has %d bits, want 3072", n)
	}
}

// The rotation test: tokens signed by the old key keep verifying
// through the overlap; new tokens use the new key only after pre-publication.
func TestRotation_OldTokensVerifyThroughOverlap_NewKeySignsOnlyAfterPrePublication(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid, _, _ := mustSigning(t, m)

	clk.Advance(24 * time.Hour)
	newKey := mustRotate(t, m, latch.EdDSA)
	if want := clk.Now().Add(testPrePublish); !newKey.ActiveAt.Equal(want) {
		t.Fatalf("ActiveAt = %v, want now + PrePublish = %v", newKey.ActiveAt, want)
	}
	if got := stateOf(t, m, newKey.ID).State; got != StatePending {
		t.Fatalf("new key state = %s, want pending", got)
	}

	// Pre-publication: both published, the old key still signs.
	var lastOldSig []byte
	msg := []byte("token")
	for _, at := range []time.Duration{0, testPrePublish / 2, testPrePublish - time.Nanosecond} {
		clk.Set(newKey.ActiveAt.Add(-testPrePublish + at))
		kid, alg, signer := mustSigning(t, m)
		if kid != oldKid {
			t.Fatalf("at +%v the signer is %s, want the old key %s", at, kid, oldKid)
		}
		lastOldSig = sign(t, signer, alg, msg)
		if got := jwksKids(t, m); !slices.Equal(got, sorted(oldKid, newKey.ID)) {
			t.Fatalf("at +%v JWKS kids = %v, want both", at, got)
		}
		if _, _, err := m.Key(ctx, newKey.ID); err != nil {
			t.Fatalf("Key(new) during pre-publication: %v", err)
		}
	}

	// ActiveAt: the new key signs; the old one verifies only.
	clk.Set(newKey.ActiveAt)
	kid, alg, signer := mustSigning(t, m)
	if kid != newKey.ID || alg != latch.EdDSA {
		t.Fatalf("after ActiveAt the signer is %s %s, want %s EdDSA", kid, alg, newKey.ID)
	}
	newSig := sign(t, signer, alg, msg)
	if got := stateOf(t, m, oldKid); got.State != StateSuperseded || !got.PublishedUntil.Equal(newKey.ActiveAt.Add(testGrace)) {
		t.Fatalf("old key = %+v, want superseded until ActiveAt + MaxTokenTTL + Leeway", got)
	}

	// Overlap: the old key's last token verifies until it can no longer be valid.
	end := newKey.ActiveAt.Add(testGrace)
	for _, at := range []time.Time{newKey.ActiveAt, newKey.ActiveAt.Add(testTTL), end.Add(-time.Nanosecond)} {
		clk.Set(at)
		if !verifiesWithKey(t, m, oldKid, msg, lastOldSig) {
			t.Fatalf("at %v the old key's token no longer verifies", at)
		}
		if got := jwksKids(t, m); !slices.Equal(got, sorted(oldKid, newKey.ID)) {
			t.Fatalf("at %v JWKS kids = %v, want both", at, got)
		}
	}

	// After the overlap the old key leaves, without any Reload.
	clk.Set(end)
	if _, _, err := m.Key(ctx, oldKid); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Key(old) after the overlap: err = %v, want ENOTFOUND", err)
	}
	if got := jwksKids(t, m); !slices.Equal(got, []string{newKey.ID}) {
		t.Fatalf("JWKS kids = %v, want only the new key", got)
	}
	if got := stateOf(t, m, oldKid).State; got != StateExpired {
		t.Fatalf("old key state = %s, want expired", got)
	}
	if !verifiesWithKey(t, m, newKey.ID, msg, newSig) {
		t.Fatal("the new key's token does not verify")
	}
	// And after a Reload, too.
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := jwksKids(t, m); !slices.Equal(got, []string{newKey.ID}) {
		t.Fatalf("after Reload JWKS kids = %v", got)
	}
}

func TestRetire_StopsSigningAndStaysPublishedForTokenLifetime(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid, alg, signer := mustSigning(t, m)
	next := mustRotate(t, m, "")
	clk.Advance(10 * time.Minute)
	sig := sign(t, signer, alg, []byte("t"))
	if err := m.Retire(ctx, oldKid, false); err != nil {
		t.Fatal(err)
	}
	retiredAt := clk.Now()

	// Nothing signs between the retirement and the next key's ActiveAt.
	if _, _, _, err := m.Signing(); latch.ErrorCode(err) != latch.EUNAVAILABLE {
		t.Fatalf("Signing after retiring the active key: err = %v, want EUNAVAILABLE", err)
	}
	info := stateOf(t, m, oldKid)
	if info.State != StateRetired || !info.RetiredAt.Equal(retiredAt) || !info.PublishedUntil.Equal(retiredAt.Add(testGrace)) {
		t.Fatalf("retired key = %+v", info)
	}
	clk.Set(next.ActiveAt)
	if kid, _, _ := mustSigning(t, m); kid != next.ID {
		t.Fatalf("signer = %s, want %s", kid, next.ID)
	}
	clk.Set(retiredAt.Add(testGrace - time.Nanosecond))
	if !verifiesWithKey(t, m, oldKid, []byte("t"), sig) {
		t.Fatal("a token of the retired key stopped verifying before it could expire")
	}
	clk.Set(retiredAt.Add(testGrace))
	if _, _, err := m.Key(ctx, oldKid); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Key(retired) after the grace: err = %v, want ENOTFOUND", err)
	}
	if got := stateOf(t, m, oldKid).State; got != StateExpired {
		t.Fatalf("state = %s, want expired", got)
	}
}

func TestRetire_RemoveNow_DropsFromJWKSAtOnce(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid, _, _ := mustSigning(t, m)
	next := mustRotate(t, m, "")
	clk.Set(next.ActiveAt) // the old key is superseded and published for verification
	if err := m.Retire(ctx, oldKid, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Key(ctx, oldKid); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("Key(removed): err = %v, want ENOTFOUND", err)
	}
	if got := jwksKids(t, m); !slices.Equal(got, []string{next.ID}) {
		t.Fatalf("JWKS kids = %v, want only %s", got, next.ID)
	}
	if info := stateOf(t, m, oldKid); info.State != StateRemoved || !info.PublishedUntil.Equal(clk.Now()) {
		t.Fatalf("removed key = %+v", info)
	}
	if kid, _, _ := mustSigning(t, m); kid != next.ID {
		t.Fatalf("signer = %s", kid)
	}
	// Retiring again is harmless.
	if err := m.Retire(ctx, oldKid, true); err != nil {
		t.Fatalf("second Retire: %v", err)
	}
}

func TestRetire_RemoveNow_ActiveKeyWithPendingSuccessor(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	compromised, _, _ := mustSigning(t, m)
	next := mustRotate(t, m, "")
	if err := m.Retire(ctx, compromised, true); err != nil {
		t.Fatal(err)
	}
	if got := jwksKids(t, m); !slices.Equal(got, []string{next.ID}) {
		t.Fatalf("JWKS kids = %v, want only %s", got, next.ID)
	}
	if _, _, _, err := m.Signing(); err == nil {
		t.Fatal("the removed key still signs")
	}
}

func TestRetire_LastKeyThatCanSign_Refused(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	kid, _, _ := mustSigning(t, m)
	for _, removeNow := range []bool{false, true} {
		err := m.Retire(ctx, kid, removeNow)
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "rotate") {
			t.Fatalf("Retire(only key, removeNow=%v): err = %v, want EINVALID saying to rotate first", removeNow, err)
		}
	}
	if k := store.keys[0]; !k.RetiredAt.IsZero() || !k.RemovedAt.IsZero() {
		t.Fatal("the refused retirement was stored")
	}
	if got, _, _ := mustSigning(t, m); got != kid {
		t.Fatal("signer changed")
	}

	// A pending successor cannot be retired either once the active key is gone.
	next := mustRotate(t, m, "")
	if err := m.Retire(ctx, kid, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Retire(ctx, next.ID, false); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("Retire(the only pending key): err = %v, want EINVALID", err)
	}
}

func TestRetire_PendingKey_CurrentKeyKeepsSigningOpenEnded(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	kid, _, _ := mustSigning(t, m)
	next := mustRotate(t, m, "")
	if got := stateOf(t, m, kid).PublishedUntil; !got.Equal(next.ActiveAt.Add(testGrace)) {
		t.Fatalf("PublishedUntil = %v, want the successor's ActiveAt + grace", got)
	}
	if err := m.Retire(ctx, next.ID, false); err != nil { // the operator cancels the rotation
		t.Fatal(err)
	}
	if got := stateOf(t, m, kid); got.State != StateActive || !got.PublishedUntil.IsZero() {
		t.Fatalf("current key = %+v, want active and open-ended", got)
	}
	clk.Set(next.ActiveAt.Add(time.Hour))
	if got, _, _ := mustSigning(t, m); got != kid {
		t.Fatalf("signer = %s, want %s: a key retired while pending must never sign", got, kid)
	}
}

func TestRetire_SupersededKeyDoesNotResumeWhenSuccessorRetires(t *testing.T) {
	// delay 0: retired at the very instant it became active, when another
	// process may already have signed with it.
	for _, delay := range []time.Duration{0, time.Minute} {
		t.Run(delay.String(), func(t *testing.T) {
			ctx := context.Background()
			store, clk := &memStore{}, newClock()
			m := mustManager(t, store, clk, Config{})
			if err := m.EnsureKey(ctx); err != nil {
				t.Fatal(err)
			}
			a, _, _ := mustSigning(t, m)
			b := mustRotate(t, m, "")
			clk.Set(b.ActiveAt)
			c := mustRotate(t, m, "")
			clk.Advance(delay)
			if err := m.Retire(ctx, b.ID, false); err != nil {
				t.Fatal(err)
			}
			if kid, _, _, err := m.Signing(); err == nil {
				t.Fatalf("signer = %s after retiring %s; superseded %s must not resume", kid, b.ID, a)
			}
			if got := stateOf(t, m, a).PublishedUntil; !got.Equal(b.ActiveAt.Add(testGrace)) {
				t.Fatalf("first key PublishedUntil = %v, want %v", got, b.ActiveAt.Add(testGrace))
			}
			clk.Set(c.ActiveAt)
			if kid, _, _ := mustSigning(t, m); kid != c.ID {
				t.Fatalf("signer = %s, want %s", kid, c.ID)
			}
		})
	}
}

func TestRetire_UnknownKid_IsNotFound(t *testing.T) {
	m := mustManager(t, &memStore{}, newClock(), Config{})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Retire(context.Background(), "nope", false); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("err = %v, want ENOTFOUND", err)
	}
}

func TestKey_UnknownKid_IsNotFound(t *testing.T) {
	m := mustManager(t, &memStore{}, newClock(), Config{})
	if _, _, err := m.Key(context.Background(), "x"); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("before Reload: err = %v, want ENOTFOUND", err)
	}
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", 10000)
	_, _, err := m.Key(context.Background(), long)
	if !errors.Is(err, latch.ErrNotFound) || latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Fatalf("err = %v, want ENOTFOUND", err)
	}
	if len(err.Error()) > 200 {
		t.Fatalf("the error repeats an untrusted kid in full (%d bytes)", len(err.Error()))
	}
}

func TestJWKS_HasNoPrivateMembers(t *testing.T) {
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, alg := range latch.Algorithms {
		mustRotate(t, m, alg)
	}
	body, cc := m.JWKS()
	if cc != "public, max-age=900" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1+len(latch.Algorithms) {
		t.Fatalf("JWKS has %d keys, want %d", len(doc.Keys), 1+len(latch.Algorithms))
	}
	ktys := map[string]bool{}
	for _, k := range doc.Keys {
		for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[member]; ok {
				t.Errorf("JWK %v has private member %q", k["kid"], member)
			}
		}
		for _, member := range []string{"kid", "kty", "alg", "use"} {
			if _, ok := k[member]; !ok {
				t.Errorf("JWK %v lacks %q", k["kid"], member)
			}
		}
		if k["use"] != "sig" {
			t.Errorf("use = %v", k["use"])
		}
		ktys[k["kty"].(string)] = true
	}
	if !ktys["EC"] || !ktys["OKP"] || !ktys["RSA"] {
		t.Fatalf("kty seen: %v", ktys)
	}
}

func TestJWKS_EmptyBeforeLoad(t *testing.T) {
	m := mustManager(t, &memStore{}, newClock(), Config{})
	body, _ := m.JWKS()
	if string(body) != `{"keys":[]}` {
		t.Fatalf("JWKS = %s", body)
	}
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body, _ := m.JWKS(); string(body) != `{"keys":[]}` {
		t.Fatalf("JWKS of an empty store = %s", body)
	}
	if _, _, _, err := m.Signing(); err == nil || !strings.Contains(err.Error(), "rotate") {
		t.Fatalf("Signing on an empty store: err = %v", err)
	}
}

// The server and the CLI are two Managers on one store: what the CLI does
// reaches the server at its next Reload.
func TestTwoManagers_RotationByOneVisibleToOtherAfterReload(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	server := mustManager(t, store, clk, Config{})
	cli := mustManager(t, store, clk, Config{})
	if err := server.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid, _, _ := mustSigning(t, server)

	k := mustRotate(t, cli, latch.RS256)
	if _, _, err := server.Key(ctx, k.ID); !errors.Is(err, latch.ErrNotFound) {
		t.Fatal("the server saw the new key before Reload")
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := jwksKids(t, server); !slices.Equal(got, sorted(oldKid, k.ID)) {
		t.Fatalf("server JWKS kids = %v, want both", got)
	}
	if kid, _, _ := mustSigning(t, server); kid != oldKid {
		t.Fatal("the server signs with the new key during pre-publication")
	}
	clk.Set(k.ActiveAt)
	kid, alg, signer := mustSigning(t, server)
	if kid != k.ID || alg != latch.RS256 {
		t.Fatalf("server signer = %s %s, want %s RS256", kid, alg, k.ID)
	}
	sig := sign(t, signer, alg, []byte("m"))
	if err := cli.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !verifiesWithKey(t, cli, k.ID, []byte("m"), sig) {
		t.Fatal("the CLI's view does not verify the server's token")
	}

	// A retirement by the CLI reaches the server too.
	clk.Advance(time.Minute)
	if err := cli.Retire(ctx, oldKid, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.Key(ctx, oldKid); err != nil {
		t.Fatal("the server dropped the key before Reload")
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.Key(ctx, oldKid); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("after Reload Key(removed) err = %v, want ENOTFOUND", err)
	}
}

func TestReload_ReusesDecryptedSigner(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, &memStore{}, newClock(), Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, s1 := mustSigning(t, m)
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, s2 := mustSigning(t, m); s1 != s2 {
		t.Fatal("Reload decrypted the signing key again")
	}
}

func TestReload_DecryptsOnlyKeysThatCanSign(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid, _, _ := mustSigning(t, m)
	next := mustRotate(t, m, "")
	clk.Set(next.ActiveAt)
	// Spoil the superseded key's sealed private part: a fresh process must
	// still load, since that key only verifies.
	store.keys[0].Private = []byte("garbage")
	fresh := mustManager(t, store, clk, Config{})
	if err := fresh.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if _, _, err := fresh.Key(ctx, oldKid); err != nil {
		t.Fatalf("Key(superseded): %v", err)
	}
}

func TestReload_WrongKEK_FailsClearly(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	if err := mustManager(t, store, clk, Config{}).EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	other, err := NewManager(store, mustSealer(t, mustKEK(t, 0x42)), Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "key-encryption key does not match") {
		t.Fatalf("Reload under another KEK: err = %v", err)
	}
	if err := other.EnsureKey(ctx); err == nil {
		t.Fatal("EnsureKey under another KEK succeeded")
	}
	if n := len(store.keys); n != 1 {
		t.Fatalf("EnsureKey under another KEK created a key (%d keys)", n)
	}
}

func TestReload_AlteredKeyRecord_Refused(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	mustRotate(t, m, "")
	a, b := store.keys[0], store.keys[1]

	t.Run("public key swapped", func(t *testing.T) {
		a.Public, b.Public = b.Public, a.Public
		defer func() { a.Public, b.Public = b.Public, a.Public }()
		if err := mustManager(t, store, clk, Config{}).Reload(ctx); err == nil || !strings.Contains(err.Error(), "does not match its kid") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("sealed private key swapped", func(t *testing.T) {
		a.Private, b.Private = b.Private, a.Private
		defer func() { a.Private, b.Private = b.Private, a.Private }()
		if err := mustManager(t, store, clk, Config{}).Reload(ctx); err == nil {
			t.Fatal("Reload accepted a private key sealed for another kid")
		}
	})
	t.Run("algorithm changed", func(t *testing.T) {
		a.Algorithm = latch.RS256
		defer func() { a.Algorithm = latch.ES256 }()
		if err := mustManager(t, store, clk, Config{}).Reload(ctx); err == nil {
			t.Fatal("Reload accepted an ECDSA key labelled RS256")
		}
	})
	// The failed reloads leave m's snapshot in force.
	if _, _, _, err := m.Signing(); err != nil {
		t.Fatal(err)
	}
}

func TestList_States(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	// Keys rotate hourly; each stays published 2h31m after it stops signing.
	m := mustManager(t, store, clk, Config{MaxTokenTTL: 150 * time.Minute})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	expired, _, _ := mustSigning(t, m)
	superseded := mustRotate(t, m, "")
	clk.Set(superseded.ActiveAt)
	retired := mustRotate(t, m, "")
	clk.Set(retired.ActiveAt)
	removed := mustRotate(t, m, "")
	clk.Set(removed.ActiveAt)
	active := mustRotate(t, m, "")
	clk.Set(active.ActiveAt)
	pending := mustRotate(t, m, "")
	if err := m.Retire(ctx, retired.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Retire(ctx, removed.ID, true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// The first key stopped signing 3h01m ago, the second 2h01m ago.
	want := map[string]State{
		expired:       StateExpired,
		superseded.ID: StateSuperseded,
		retired.ID:    StateRetired,
		removed.ID:    StateRemoved,
		active.ID:     StateActive,
		pending.ID:    StatePending,
	}
	infos, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(want) {
		t.Fatalf("List has %d keys, want %d", len(infos), len(want))
	}
	for i, in := range infos {
		if in.State != want[in.ID] {
			t.Errorf("key %d %s: state %s, want %s", i, in.ID, in.State, want[in.ID])
		}
		if i > 0 && in.CreatedAt.Before(infos[i-1].CreatedAt) {
			t.Error("List is not oldest first")
		}
	}
	if got := jwksKids(t, m); !slices.Equal(got, sorted(superseded.ID, retired.ID, active.ID, pending.ID)) {
		t.Fatalf("JWKS kids = %v", got)
	}
}

func TestRotate_RefusesUnknownAlgorithm(t *testing.T) {
	m := mustManager(t, &memStore{}, newClock(), Config{})
	for _, alg := range []latch.Algorithm{"none", "HS256", "ES384"} {
		if _, err := m.Rotate(context.Background(), alg); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("Rotate(%s): err = %v, want EINVALID", alg, err)
		}
	}
}

func TestNewManager_ValidatesConfig(t *testing.T) {
	s := mustSealer(t, mustKEK(t, 1))
	if _, err := NewManager(&memStore{}, s, Config{Algorithm: "none"}); err == nil {
		t.Fatal("NewManager accepted alg none")
	}
	if _, err := NewManager(nil, s, Config{}); err == nil {
		t.Fatal("NewManager accepted a nil store")
	}
	if _, err := NewManager(&memStore{}, nil, Config{}); err == nil {
		t.Fatal("NewManager accepted a nil sealer")
	}
}

func TestSigning_ConcurrentWithReload(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, _, _, err := m.Signing(); err != nil {
					t.Error(err)
					return
				}
				m.JWKS()
				m.Key(ctx, "x")
			}
		})
	}
	for range 20 {
		if err := m.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestReload_BadKeyRow_DoesNotFreezeOtherChanges: one unreadable key row
// (corrupt, or written by a newer latch) is reported by Reload, but every
// other change still takes effect, above all the removal of a compromised
// key by `latch keys retire --now` in another process.
func TestReload_BadKeyRow_DoesNotFreezeOtherChanges(t *testing.T) {
	ctx := context.Background()
	store, clk := &memStore{}, newClock()
	m := mustManager(t, store, clk, Config{})
	if err := m.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	compromised := store.keys[0].ID
	mustRotate(t, m, "")
	store.keys[1].Public = []byte("not a PKIX key")
	now := clk.Now()
	store.keys[0].RetiredAt, store.keys[0].RemovedAt = now, now // what another process's retire --now writes

	err := m.Reload(ctx)
	if err == nil {
		t.Fatal("Reload hid the unreadable key")
	}
	if _, _, err := m.Key(ctx, compromised); err == nil {
		t.Fatal("a key removed with --now is still published because another row is bad")
	}
	if body, _ := m.JWKS(); strings.Contains(string(body), compromised) {
		t.Fatalf("JWKS still lists the removed key: %s", body)
	}
}
