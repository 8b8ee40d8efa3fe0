package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/latch-auth/latch/token"
)

// Encrypted access tokens: a client registered with `latch client create
// --encrypt-to` receives its JWT access tokens as nested JWTs (RFC 7519
// §5.2): the signed token (JWS, typ at+jwt) encrypted to this resource
// server's public key as a compact JWE (RFC 7516) with cty JWT. Neither the
// client nor a browser can read the claims. The Verifier decrypts with
// Config.DecryptionKeys, then verifies the inner JWS exactly as a plain one.

// MaxJWESize is the largest encrypted token Verify reads: a JWE around a JWS
// of token.MaxJWTSize, whose base64url grows it by a third, plus the
// header, the wrapped key, the IV and the tag.
const MaxJWESize = token.MaxJWTSize*4/3 + 2048

// maxJWEHeaderSize bounds the decoded protected header: alg, enc, kid, cty,
// typ and an ephemeral P-521 key take about 400 bytes.
const maxJWEHeaderSize = 4096

// Defaults of Config.KeyEncryptionAlgorithms and Config.ContentEncryption:
// what latch issues (server.KeyEncryptionAlgorithm, server.ContentEncryption).
var (
	DefaultKeyEncryptionAlgorithms = []jose.KeyAlgorithm{jose.ECDH_ES_A256KW}
	DefaultContentEncryption       = []jose.ContentEncryption{jose.A256GCM}
)

// The algorithms that may be allowed at all. Decryption keys are EC keys,
// so only the ECDH-ES family applies; RSA1_5 (Bleichenbacher), PBES2
// (attacker-chosen work factor) and dir or key-wrap with shared keys are
// not offered.
var (
	supportedKeyAlgorithms = []jose.KeyAlgorithm{jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW}
	supportedContentEnc    = []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM,
		jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512}
)

var (
	// ErrNotEncrypted: Config.RequireEncryption is set and the token is a
	// plain JWS, readable by anyone who holds it.
	ErrNotEncrypted = errors.New("verify: token not encrypted")
	// ErrDecrypt: the token is a JWE this Verifier cannot or will not
	// decrypt: no decryption key configured, an unknown kid, an algorithm
	// outside the allow-list, a zip or other header parameter not allowed,
	// a payload that is not a JWT, or a failed decryption (wrong key,
	// tampered header, key, IV, ciphertext or tag).
	ErrDecrypt = errors.New("verify: token cannot be decrypted")
)

// decrypter opens the compact JWEs of encrypted access tokens.
type decrypter struct {
	keys map[string]*ecdsa.PrivateKey // by kid (given or RFC 7638 thumbprint)
	only *ecdsa.PrivateKey            // the key, when there is exactly one
	// algsOf pins a key whose JWK names an alg to that algorithm.
	algsOf map[string]jose.KeyAlgorithm
	algs   []jose.KeyAlgorithm
	encs   []jose.ContentEncryption
}

// newDecrypter checks the decryption configuration and indexes the keys.
// A key without a kid is indexed under its RFC 7638 SHA-256 thumbprint,
// which is the kid latch puts in the JWE header for a registered key
// without one.
func newDecrypter(keys []jose.JSONWebKey, algs []jose.KeyAlgorithm, encs []jose.ContentEncryption) (*decrypter, error) {
	if len(algs) == 0 || len(encs) == 0 {
		return nil, errors.New("verify: Config.KeyEncryptionAlgorithms and ContentEncryption must not be empty")
	}
	for i, a := range algs {
		if !slices.Contains(supportedKeyAlgorithms, a) {
			return nil, fmt.Errorf("verify: Config.KeyEncryptionAlgorithms: %q is not supported; use ECDH-ES+A256KW (latch's), ECDH-ES+A192KW, ECDH-ES+A128KW or ECDH-ES", a)
		}
		if slices.Contains(algs[:i], a) {
			return nil, fmt.Errorf("verify: Config.KeyEncryptionAlgorithms lists %q twice", a)
		}
	}
	for i, e := range encs {
		if !slices.Contains(supportedContentEnc, e) {
			return nil, fmt.Errorf("verify: Config.ContentEncryption: %q is not supported; use A256GCM (latch's), A192GCM, A128GCM or an AES-CBC-HMAC-SHA2 algorithm", e)
		}
		if slices.Contains(encs[:i], e) {
			return nil, fmt.Errorf("verify: Config.ContentEncryption lists %q twice", e)
		}
	}
	d := &decrypter{keys: make(map[string]*ecdsa.PrivateKey, len(keys)), algs: algs, encs: encs}
	for i, k := range keys {
		priv, ok := k.Key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("verify: Config.DecryptionKeys[%d] is a %T: it must be an EC private key (*ecdsa.PrivateKey, P-256, P-384 or P-521)", i, k.Key)
		}
		switch priv.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("verify: Config.DecryptionKeys[%d]: curve %s is not supported; use P-256, P-384 or P-521", i, priv.Curve.Params().Name)
		}
		if k.Use != "" && k.Use != "enc" {
			return nil, fmt.Errorf("verify: Config.DecryptionKeys[%d] has use %q: a decryption key must have use \"enc\" or none", i, k.Use)
		}
		if k.Algorithm != "" && !slices.Contains(algs, jose.KeyAlgorithm(k.Algorithm)) {
			return nil, fmt.Errorf("verify: Config.DecryptionKeys[%d] has alg %q, which Config.KeyEncryptionAlgorithms does not allow", i, k.Algorithm)
		}
		kid := k.KeyID
		if kid == "" {
			tp, err := k.Thumbprint(crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("verify: Config.DecryptionKeys[%d]: thumbprint: %v", i, err)
			}
			kid = base64.RawURLEncoding.EncodeToString(tp)
		}
		if _, dup := d.keys[kid]; dup {
			return nil, fmt.Errorf("verify: Config.DecryptionKeys: kid %q appears twice", kid)
		}
		d.keys[kid] = priv
		if k.Algorithm != "" {
			// A key pinned to one algorithm is used only with it.
			if d.algsOf == nil {
				d.algsOf = map[string]jose.KeyAlgorithm{}
			}
			d.algsOf[kid] = jose.KeyAlgorithm(k.Algorithm)
		}
	}
	if len(keys) == 1 {
		for _, k := range d.keys {
			d.only = k
		}
	}
	return d, nil
}

// allowedJWEHeader are the protected header parameters an encrypted latch
// access token may carry. Anything else is refused rather than ignored:
// zip (decompression is work and size an attacker chooses, and compressing
// before encrypting leaks the plaintext's length structure), crit, and the
// key-locating parameters jku, jwk, x5u, x5c (the key is this Verifier's
// own, never one the token names; RFC 8725 §3.10 applies to JWE too).
var allowedJWEHeader = []string{"alg", "enc", "kid", "epk", "apu", "apv", "cty", "typ"}

// decrypt opens a compact JWE and returns its payload, the inner JWS, which
// the caller must still verify. Every failure wraps ErrDecrypt.
func (d *decrypter) decrypt(raw string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("verify: encrypted token: "+format+": %w", append(args, ErrDecrypt)...)
	}
	if len(raw) > MaxJWESize {
		return fail("%d bytes exceeds %d", len(raw), MaxJWESize)
	}
	var seg [5]string
	rest := raw
	for i := range 4 {
		var ok bool
		if seg[i], rest, ok = strings.Cut(rest, "."); !ok {
			return fail("not a compact JWE (five segments)")
		}
	}
	if strings.IndexByte(rest, '.') >= 0 {
		return fail("not a compact JWE (five segments)")
	}
	seg[4] = rest
	// Canonical base64url only: go-jose decodes leniently and computes the
	// AAD from the decoded header, so a header with other trailing bits
	// would decrypt the same; one token, one spelling.
	for i, s := range seg {
		if _, err := strictB64.DecodeString(s); err != nil {
			return fail("segment %d is not canonical base64url", i+1)
		}
	}
	if len(seg[0]) > strictB64.EncodedLen(maxJWEHeaderSize) {
		return fail("header exceeds %d bytes", maxJWEHeaderSize)
	}
	hb, _ := strictB64.DecodeString(seg[0])
	h, err := objectMembers(hb)
	if err != nil {
		return fail("header: %v", err)
	}
	if _, ok := h["zip"]; ok {
		return fail("compressed (zip) tokens are refused")
	}
	if _, ok := h["crit"]; ok {
		return fail("crit is not supported")
	}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !slices.Contains(allowedJWEHeader, name) {
			return fail("header parameter %q is not allowed", name)
		}
	}
	alg, ok := stringMember(h, "alg")
	if !ok || !slices.Contains(d.algs, jose.KeyAlgorithm(alg)) {
		return fail("key encryption algorithm %q is not allowed (allowed: %v)", alg, d.algs)
	}
	enc, ok := stringMember(h, "enc")
	if !ok || !slices.Contains(d.encs, jose.ContentEncryption(enc)) {
		return fail("content encryption %q is not allowed (allowed: %v)", enc, d.encs)
	}
	// RFC 7519 §5.2: a nested JWT says cty JWT. Without it the payload
	// is not announced as a JWT and is not one latch issued.
	if cty, _ := stringMember(h, "cty"); !mediaTypeIs(cty, "jwt") {
		return fail("cty is %q, not JWT: the payload is not a nested JWT", cty)
	}
	if _, present := h["typ"]; present {
		if typ, ok := stringMember(h, "typ"); !ok || (!mediaTypeIs(typ, "jwt") && !mediaTypeIs(typ, TypeAccessToken)) {
			return fail("typ %q is neither JWT nor at+jwt", typ)
		}
	}
	key := d.only
	kid, hasKid := stringMember(h, "kid")
	if _, present := h["kid"]; present && !hasKid {
		return fail("kid is not a string")
	}
	if hasKid {
		if key = d.keys[kid]; key == nil {
			return fail("no decryption key has kid %q", kid)
		}
		if pinned, ok := d.algsOf[kid]; ok && pinned != jose.KeyAlgorithm(alg) {
			return fail("key %q is for %s, not %s", kid, pinned, alg)
		}
	} else if key == nil {
		return fail("no kid, and %d decryption keys are configured", len(d.keys))
	}
	obj, err := jose.ParseEncryptedCompact(raw, d.algs, d.encs)
	if err != nil {
		return fail("%v", err)
	}
	plain, err := obj.Decrypt(key)
	if err != nil {
		// go-jose says only "error in cryptographic primitive" for a
		// wrong key and for tampering alike, as it should.
		return fail("%v", err)
	}
	if len(plain) > token.MaxJWTSize {
		return fail("payload of %d bytes exceeds %d", len(plain), token.MaxJWTSize)
	}
	if strings.Count(string(plain), ".") != 2 {
		// A JWE inside a JWE, or anything else: the payload must be the
		// signed token itself.
		return fail("payload is not a signed JWT (JWS compact serialization)")
	}
	return string(plain), nil
}

var strictB64 = base64.RawURLEncoding.Strict()

// stringMember returns the JSON string member name of h.
func stringMember(h map[string]json.RawMessage, name string) (string, bool) {
	v, ok := h[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// mediaTypeIs compares a typ or cty value with a media type's subtype:
// without regard to case, with the "application/" prefix optional
// (RFC 7515 §4.1.9, §4.1.10).
func mediaTypeIs(v, subtype string) bool {
	if len(v) > len("application/") && strings.EqualFold(v[:len("application/")], "application/") {
		v = v[len("application/"):]
	}
	return strings.EqualFold(v, subtype)
}
