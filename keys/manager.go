// Package keys owns latch's JWS signing keys: their generation, their
// encryption at rest under the operator's key-encryption key (KEK), their
// rotation schedule, and the JWK Set (RFC 7517 §5) that verifiers fetch.
//
// A key's life: it is created and published at once; it signs from ActiveAt,
// PrePublish later, so every verifier has it before its first token arrives;
// it stops signing when a newer key becomes active or when it is retired; it
// stays published MaxTokenTTL + Leeway after that, so every token it signed
// verifies until it expires; then it leaves the JWKS. Retiring with removeNow
// (a compromise) drops it from the JWKS at once. Every instant of this is
// derived from the stored timestamps (latch.Key) and the Config, so the
// server and the CLI, in different processes, agree without talking: the
// server only has to Reload.
//
// The package does not mint or parse tokens (package token does, through
// Signing and Key), store keys (a latch.KeyStore does), or serve HTTP (the
// server writes JWKS's body and Cache-Control).
package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch"
)

// Manager generates, rotates and serves signing keys from a latch.KeyStore.
// Signing, Key and JWKS read an immutable snapshot built by Reload and are
// safe for concurrent use on the hot path; they never touch the store.
type Manager struct {
	store        latch.KeyStore
	sealer       *Sealer
	cfg          Config
	grace        time.Duration // MaxTokenTTL + Leeway
	cacheControl string

	reloadMu sync.Mutex // one Reload at a time, so an older read never replaces a newer one
	snap     atomic.Pointer[snapshot]
	jwks     atomic.Pointer[jwksDoc]
}

type snapshot struct {
	keys []*loadedKey // in store order (CreatedAt); keys already out of the JWKS are left out
	byID map[string]*loadedKey
}

type loadedKey struct {
	timeline
	pub crypto.PublicKey
	// signer is the decrypted private key, only for keys that signed or
	// would sign at the time of the Reload; nil for the others, so private
	// keys that will never sign again do not stay in memory.
	signer crypto.Signer
}

type jwksDoc struct {
	snap        *snapshot
	from, until time.Time // the published set is the same on [from, until); zero: unbounded
	body        []byte
}

// NewManager returns a Manager with no keys loaded: call EnsureKey (the
// server at start-up) or Reload before Signing, Key or JWKS.
func NewManager(store latch.KeyStore, sealer *Sealer, cfg Config) (*Manager, error) {
	if store == nil || sealer == nil {
		return nil, errors.New("keys: NewManager needs a store and a sealer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Manager{
		store:        store,
		sealer:       sealer,
		cfg:          cfg,
		grace:        cfg.MaxTokenTTL + cfg.Leeway,
		cacheControl: cacheControl(cfg.PrePublish),
	}, nil
}

// storedKeys reads the keys in store order (CreatedAt, then kid), with a
// default-line key before an ID token key made at the same instant
// (EnsureKey, Rotate), so that the JWKS and List read the same every time.
func (m *Manager) storedKeys(ctx context.Context) ([]*latch.Key, error) {
	ks, err := m.store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ks, func(a, b *latch.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Purpose, b.Purpose))
	})
	return ks, nil
}

// DeriveKey returns the key for purpose derived from the KEK (see
// Sealer.DeriveKey): the same on every node that shares the store.
func (m *Manager) DeriveKey(purpose string) []byte { return m.sealer.DeriveKey(purpose) }

// now strips the monotonic reading, so stored times compare as they read.
func (m *Manager) now() time.Time { return m.cfg.Now().UTC() }

// Reload re-reads the keys from the store, so keys rotated or retired by the
// CLI in another process take effect; the server calls it periodically, well
// within PrePublish. Only keys that sign now or later are decrypted, and a
// key decrypted once is reused by kid (its private part never changes). On
// error the previous snapshot stays in force.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	stored, err := m.storedKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load keys: %w", err)
	}
	now := m.now()
	prev := m.snap.Load()
	s := &snapshot{byID: make(map[string]*loadedKey, len(stored))}
	// A key that cannot be read is reported, not allowed to stop the
	// reload: otherwise one bad row would freeze the key set, and a later
	// `latch keys retire --now` of a compromised key would never take
	// effect. An unreadable public key is not published; an unreadable
	// private key leaves its key verifying but not signing, so issuance
	// fails loudly (and /readyz reports it) rather than falling back to an
	// older key.
	var problems []error
	for _, t := range plan(stored, m.grace) {
		if !t.publishedAt(now) {
			continue
		}
		lk := &loadedKey{timeline: t}
		var old *loadedKey
		if prev != nil {
			old = prev.byID[t.key.ID]
		}
		if old != nil && string(old.key.Public) == string(t.key.Public) {
			lk.pub = old.pub
		} else if lk.pub, err = parsePublic(t.key); err != nil {
			problems = append(problems, err)
			continue
		}
		if t.inLineAt(now) {
			if old != nil && old.signer != nil {
				lk.signer = old.signer
			} else if lk.signer, err = m.openSigner(t.key, lk.pub); err != nil {
				problems = append(problems, err)
			}
		}
		s.keys = append(s.keys, lk)
		s.byID[t.key.ID] = lk
	}
	doc, err := buildJWKS(s, now)
	if err != nil {
		return err
	}
	m.jwks.Store(doc) // before snap, so a reader never sees a snapshot without a document
	m.snap.Store(s)
	return errors.Join(problems...)
}

// EnsureKey makes sure some key can sign, now or later, creating one that
// signs at once if none can (the first start on an empty store). Calling it
// again is harmless. It leaves the Manager loaded. Two processes starting
// at once on an empty store may each create a key; the later one simply
// supersedes the other.
func (m *Manager) EnsureKey(ctx context.Context) error {
	stored, err := m.storedKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load keys: %w", err)
	}
	now := m.now()
	inLine := map[latch.KeyPurpose]bool{}
	for _, t := range plan(stored, m.grace) {
		if t.inLineAt(now) {
			inLine[t.key.Purpose] = true
		}
	}
	for _, l := range m.lines() {
		if inLine[l.purpose] {
			continue
		}
		// No pre-publication: no verifier can be waiting on a key that does
		// not exist yet, and without it nothing can be issued. (A relying
		// party whose cached JWKS lacks the kid refetches it: OIDC Core
		// §10.1.1.)
		k, err := m.newKey(l.alg, now, now)
		if err != nil {
			return err
		}
		k.Purpose = l.purpose
		if err := m.store.CreateKey(ctx, k); err != nil {
			return fmt.Errorf("keys: store key %s: %w", k.ID, err)
		}
	}
	return m.Reload(ctx)
}

type line struct {
	purpose latch.KeyPurpose
	alg     latch.Algorithm
}

// lines are the lines of keys the configuration keeps: the default line
// and, when IDTokenAlgorithm differs from Algorithm, the ID token line.
func (m *Manager) lines() []line {
	ls := []line{{latch.PurposeDefault, m.cfg.Algorithm}}
	if a := m.cfg.IDTokenAlgorithm; a != "" && a != m.cfg.Algorithm {
		ls = append(ls, line{latch.PurposeIDToken, a})
	}
	return ls
}

// Signing returns the key that signs now: the newest key whose ActiveAt has
// passed that is neither retired nor removed. The signer is the private key
// as crypto.Signer: *ecdsa.PrivateKey (ES256, ASN.1 signatures that a JWS
// must convert to r||s, RFC 7518 §3.4), ed25519.PrivateKey (EdDSA, sign the
// message with crypto.Hash(0)) or *rsa.PrivateKey (RS256; PS256 needs
// rsa.PSSOptions with PSSSaltLengthEqualsHash, RFC 7518 §3.5).
//
// It fails with EUNAVAILABLE when no key signs now, for instance between
// retiring the active key and the activation of the pending one.
func (m *Manager) Signing() (kid string, alg latch.Algorithm, signer crypto.Signer, err error) {
	s := m.snap.Load()
	if s == nil {
		return "", "", nil, latch.Errorf(latch.EINTERNAL, "keys: no keys loaded; call EnsureKey or Reload first")
	}
	now := m.now()
	var next *loadedKey
	for _, k := range s.keys {
		if k.key.Purpose != latch.PurposeDefault {
			continue
		}
		if k.signsAt(now) {
			if k.signer == nil {
				return "", "", nil, latch.Errorf(latch.EINTERNAL, "keys: key %s is active but was not decrypted; call Reload", k.key.ID)
			}
			return k.key.ID, k.key.Algorithm, k.signer, nil
		}
		if k.pendingAt(now) && (next == nil || k.key.ActiveAt.Before(next.key.ActiveAt)) {
			next = k
		}
	}
	if next != nil {
		return "", "", nil, latch.Errorf(latch.EUNAVAILABLE, "keys: no key signs now; key %s starts signing at %s", next.key.ID, next.key.ActiveAt.Format(time.RFC3339))
	}
	return "", "", nil, latch.Errorf(latch.EUNAVAILABLE, "keys: no key can sign; run `latch keys rotate`")
}

// SigningFor returns the key that signs ID tokens of algorithm alg now:
// the default line's signer when it has that algorithm, else the signer of
// the ID token line when it does. ENOTFOUND when neither signs with alg.
func (m *Manager) SigningFor(alg latch.Algorithm) (kid string, signer crypto.Signer, err error) {
	kid, a, signer, err := m.Signing()
	if err == nil && a == alg {
		return kid, signer, nil
	}
	if s := m.snap.Load(); s != nil {
		now := m.now()
		for _, k := range s.keys {
			if k.key.Purpose == latch.PurposeIDToken && k.key.Algorithm == alg && k.signsAt(now) && k.signer != nil {
				return k.key.ID, k.signer, nil
			}
		}
	}
	return "", nil, latch.Errorf(latch.ENOTFOUND, "keys: no key signs %.20s now; set --id-token-alg %.20s (or rotate to it) so latch keeps one", alg, alg)
}

// SigningAlgorithms lists the algorithms keys sign with now: the default
// line's first, then the ID token line's. Discovery advertises them for
// ID tokens.
func (m *Manager) SigningAlgorithms() []latch.Algorithm {
	var algs []latch.Algorithm
	if _, a, _, err := m.Signing(); err == nil {
		algs = append(algs, a)
	}
	if s := m.snap.Load(); s != nil {
		now := m.now()
		for _, k := range s.keys {
			if k.key.Purpose == latch.PurposeIDToken && k.signsAt(now) && k.signer != nil && !slices.Contains(algs, k.key.Algorithm) {
				algs = append(algs, k.key.Algorithm)
			}
		}
	}
	return algs
}

// Key returns the public key and algorithm of the published key kid. An
// unknown kid, or one no longer published, is an error wrapping
// latch.ErrNotFound. ctx is unused: Key reads the snapshot of the last Reload.
func (m *Manager) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	if s := m.snap.Load(); s != nil {
		if k := s.byID[kid]; k != nil && k.publishedAt(m.now()) {
			return k.pub, k.key.Algorithm, nil
		}
	}
	// kid comes from an untrusted token header: bound what reaches the logs.
	return nil, "", latch.Errorf(latch.ENOTFOUND, "keys: no published key with kid %.64q", kid)
}

// JWKS returns the JWK Set (RFC 7517 §5) of the published keys, public parts
// only, and the Cache-Control header to serve it with (see cacheControl).
// The body is computed by Reload and again only when a key's publication
// ends; callers must not modify it.
func (m *Manager) JWKS() (body []byte, cacheControl string) {
	now := m.now()
	s := m.snap.Load()
	doc := m.jwks.Load()
	if s == nil {
		return []byte(`{"keys":[]}`), m.cacheControl
	}
	if doc == nil || doc.snap != s || (!doc.from.IsZero() && now.Before(doc.from)) || (!doc.until.IsZero() && !now.Before(doc.until)) {
		// The keys were all encoded once by Reload, so this cannot fail in
		// practice; if it did, the previous body is the best answer.
		if d, err := buildJWKS(s, now); err == nil {
			m.jwks.CompareAndSwap(doc, d)
			doc = d
		}
	}
	return doc.body, m.cacheControl
}

func buildJWKS(s *snapshot, now time.Time) (*jwksDoc, error) {
	doc := &jwksDoc{snap: s}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.keys {
		if u := k.publishedUntil; !u.IsZero() {
			if u.After(now) && (doc.until.IsZero() || u.Before(doc.until)) {
				doc.until = u
			}
			if !u.After(now) && u.After(doc.from) {
				doc.from = u
			}
		}
		if !k.publishedAt(now) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       k.pub, // a public key: go-jose then writes no private member
			KeyID:     k.key.ID,
			Algorithm: string(k.key.Algorithm),
			Use:       "sig",
		})
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	doc.body = body
	return doc, nil
}

// Rotate creates a key that is published now and signs from now +
// PrePublish; alg "" means Config.Algorithm. The current key keeps signing
// until then, and stays published MaxTokenTTL + Leeway after.
func (m *Manager) Rotate(ctx context.Context, alg latch.Algorithm) (*latch.Key, error) {
	if alg == "" {
		alg = m.cfg.Algorithm
	}
	if err := checkAlgorithm(alg); err != nil {
		return nil, err
	}
	now := m.now()
	k, err := m.newKey(alg, now, now.Add(m.cfg.PrePublish))
	if err != nil {
		return nil, err
	}
	if err := m.store.CreateKey(ctx, k); err != nil {
		return nil, fmt.Errorf("keys: store key %s: %w", k.ID, err)
	}
	// The ID token line rotates with the default line, on the same
	// schedule, unless the new default key signs its algorithm itself.
	for _, l := range m.lines() {
		if l.purpose == latch.PurposeDefault || l.alg == alg {
			continue
		}
		idk, err := m.newKey(l.alg, now, k.ActiveAt)
		if err != nil {
			return k, fmt.Errorf("keys: key %s created, but: %w", k.ID, err)
		}
		idk.Purpose = l.purpose
		if err := m.store.CreateKey(ctx, idk); err != nil {
			return k, fmt.Errorf("keys: key %s created, but storing the ID token key %s: %w", k.ID, idk.ID, err)
		}
	}
	if err := m.Reload(ctx); err != nil {
		return k, fmt.Errorf("keys: key %s created, but: %w", k.ID, err)
	}
	return k, nil
}

// Retire stops key kid from signing now. It stays published MaxTokenTTL +
// Leeway, so the tokens it signed keep verifying, unless removeNow (the key
// is compromised): then it leaves the JWKS at once and its tokens stop
// verifying as soon as caches expire.
//
// Retiring the only key of its line (latch.Key.Purpose) that signs now or
// later is refused: run Rotate first. Retiring the active key while another is pending is allowed, and
// leaves a gap until the pending key's ActiveAt in which nothing signs.
// Retiring a key already retired, removed or out of the JWKS changes only
// what removeNow adds.
func (m *Manager) Retire(ctx context.Context, kid string, removeNow bool) error {
	stored, err := m.storedKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load keys: %w", err)
	}
	now := m.now()
	var target *latch.Key
	otherInLine := false
	for _, t := range plan(stored, m.grace) {
		if t.key.ID == kid {
			if !t.publishedAt(now) {
				return m.Reload(ctx) // already out of the JWKS: nothing left to stop
			}
			target = t.key
			if !t.inLineAt(now) {
				otherInLine = true // it cannot sign anyway: nothing to protect
			}
		}
	}
	for _, t := range plan(stored, m.grace) {
		if target != nil && t.key.ID != kid && t.key.Purpose == target.Purpose && t.inLineAt(now) {
			otherInLine = true
		}
	}
	if target == nil {
		return latch.Errorf(latch.ENOTFOUND, "keys: no key with kid %.64q", kid)
	}
	if !otherInLine {
		return latch.Errorf(latch.EINVALID, "keys: key %s is the only key that can sign; run `latch keys rotate` first, then retire it", kid)
	}
	changed := false
	if target.RetiredAt.IsZero() {
		target.RetiredAt = now
		changed = true
	}
	if removeNow && target.RemovedAt.IsZero() {
		target.RemovedAt = now
		changed = true
	}
	if changed {
		if err := m.store.UpdateKey(ctx, target); err != nil {
			return fmt.Errorf("keys: update key %s: %w", kid, err)
		}
	}
	return m.Reload(ctx)
}

// KeyInfo describes a key for `latch keys list` and the admin API.
type KeyInfo struct {
	ID        string
	Algorithm latch.Algorithm
	// Purpose is the key's line: "" signs everything, "id_token" only ID
	// tokens.
	Purpose   latch.KeyPurpose
	State     State
	CreatedAt time.Time
	ActiveAt  time.Time
	RetiredAt time.Time // zero unless retired
	RemovedAt time.Time // zero unless removed
	// PublishedUntil is when the key leaves (or left) the JWKS; zero while
	// it is open-ended, that is until a successor becomes active or it is
	// retired.
	PublishedUntil time.Time
}

// List describes every stored key, oldest first, as of now. It reads the
// store, not the snapshot, so the CLI sees the truth.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	stored, err := m.storedKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load keys: %w", err)
	}
	now := m.now()
	tl := plan(stored, m.grace)
	infos := make([]KeyInfo, len(tl))
	for i, t := range tl {
		k := t.key
		infos[i] = KeyInfo{
			ID:             k.ID,
			Algorithm:      k.Algorithm,
			Purpose:        k.Purpose,
			State:          t.stateAt(now),
			CreatedAt:      k.CreatedAt,
			ActiveAt:       k.ActiveAt,
			RetiredAt:      k.RetiredAt,
			RemovedAt:      k.RemovedAt,
			PublishedUntil: t.publishedUntil,
		}
	}
	return infos, nil
}

// newKey generates a key of alg, sealed under the KEK.
//
// The kid is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public
// key rather than a random string: it is as unique, it binds the kid to the
// public key (Reload recomputes it, so a Public column altered or swapped is
// caught), and as the seal's aad it binds the sealed private key to that
// public key too.
func (m *Manager) newKey(alg latch.Algorithm, createdAt, activeAt time.Time) (*latch.Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case latch.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), m.cfg.Rand)
	case latch.EdDSA:
		_, priv, err = ed25519.GenerateKey(m.cfg.Rand)
	case latch.RS256, latch.PS256:
		priv, err = rsa.GenerateKey(m.cfg.Rand, m.cfg.RSABits)
	default:
		return nil, checkAlgorithm(alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("keys: encode public key: %w", err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: encode private key: %w", err)
	}
	sealed, err := m.sealer.Seal(der, []byte(kid))
	clear(der)
	if err != nil {
		return nil, err
	}
	return &latch.Key{
		ID:        kid,
		Algorithm: alg,
		Public:    pub,
		Private:   sealed,
		CreatedAt: createdAt,
		ActiveAt:  activeAt,
	}, nil
}

func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// parsePublic decodes a stored public key and checks that it fits the
// key's algorithm and kid.
func parsePublic(k *latch.Key) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: parse public key: %w", k.ID, err)
	}
	ok := false
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		ok = k.Algorithm == latch.ES256 && p.Curve == elliptic.P256()
	case ed25519.PublicKey:
		ok = k.Algorithm == latch.EdDSA
	case *rsa.PublicKey:
		ok = (k.Algorithm == latch.RS256 || k.Algorithm == latch.PS256) && p.N.BitLen() >= 2048
	}
	if !ok {
		return nil, fmt.Errorf("keys: key %s: a %T does not fit algorithm %.20q", k.ID, pub, k.Algorithm)
	}
	tp, err := thumbprint(pub)
	if err != nil {
		return nil, err
	}
	if tp != k.ID {
		return nil, fmt.Errorf("keys: key %s: the stored public key does not match its kid (thumbprint %s); the key record was altered", k.ID, tp)
	}
	return pub, nil
}

// openSigner decrypts k's private key and checks it is the private half of pub.
func (m *Manager) openSigner(k *latch.Key, pub crypto.PublicKey) (crypto.Signer, error) {
	der, err := m.sealer.Open(k.Private, []byte(k.ID))
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", k.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: parse private key: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s: %T cannot sign", k.ID, priv)
	}
	if eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("keys: key %s: the private key does not match the public key", k.ID)
	}
	return signer, nil
}
