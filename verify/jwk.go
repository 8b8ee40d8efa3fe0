package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// minRSABits is the least RSA modulus token.RSAPublicKey accepts (RFC 7518
// §3.3).
const minRSABits = 2048

// b64 is strict base64url without padding (RFC 7517 §2 / RFC 7515 §2): one
// encoding per byte string.
var b64 = base64.RawURLEncoding.Strict()

// publicKey is a key of the JWKS with the one algorithm it may verify.
type publicKey struct {
	pub crypto.PublicKey
	alg latch.Algorithm
}

// parseJWKS reads a JWK Set (RFC 7517 §5). A key this package cannot or
// must not use is left out and its reason returned in skipped; a set with
// no usable key at all is an error. A kid that appears twice is left out
// entirely: which of the two a token meant is not ours to guess.
func parseJWKS(body []byte, allowed []latch.Algorithm) (keys map[string]publicKey, skipped []error, err error) {
	top, err := objectMembers(body)
	if err != nil {
		return nil, nil, fmt.Errorf("verify: JWKS: %w", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(top["keys"], &raws); err != nil || raws == nil {
		return nil, nil, errors.New("verify: JWKS has no \"keys\" array")
	}
	keys = make(map[string]publicKey, len(raws))
	dup := map[string]bool{}
	for i, raw := range raws {
		kid, k, err := parseJWK(raw, allowed)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("verify: JWKS key %d (kid %q): %w", i, kid, err))
			continue
		}
		if _, seen := keys[kid]; seen || dup[kid] {
			dup[kid] = true
			delete(keys, kid)
			skipped = append(skipped, fmt.Errorf("verify: JWKS key %d: kid %q appears more than once", i, kid))
			continue
		}
		keys[kid] = k
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("verify: JWKS has no usable key (%d refused): %w", len(skipped), errors.Join(skipped...))
	}
	return keys, skipped, nil
}

// privateMembers are the JWK members of private or symmetric keys (RFC 7518
// §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). A JWKS that carries one has leaked
// a secret; the key is refused so the mistake is loud.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parseJWK reads one public signing key (RFC 7517 §4) and decides its
// algorithm: the JWK's alg when it is allowed and fits the key, or, without
// alg, the one allowed algorithm the key type implies (none or two: refused).
// It returns the kid, when it could be read, even on error.
func parseJWK(raw []byte, allowed []latch.Algorithm) (kid string, k publicKey, err error) {
	m, err := objectMembers(raw)
	if err != nil {
		return "", publicKey{}, err
	}
	str := func(name string) (string, error) {
		v, ok := m[name]
		if !ok {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("member %q is not a string", name)
		}
		return s, nil
	}
	if kid, err = str("kid"); err != nil {
		return "", publicKey{}, err
	}
	if kid == "" {
		return "", publicKey{}, errors.New("no kid: latch tokens name their key")
	}
	for _, p := range privateMembers {
		if _, ok := m[p]; ok {
			return kid, publicKey{}, fmt.Errorf("has private member %q: refused, the JWKS leaks a secret", p)
		}
	}
	// RFC 7517 §4.2, §4.3: a key for encryption, or whose operations do
	// not include verify, is not a signature-verification key.
	use, err := str("use")
	if err != nil {
		return kid, publicKey{}, err
	}
	if _, ok := m["use"]; ok && use != "sig" {
		return kid, publicKey{}, fmt.Errorf("use %q is not sig", use)
	}
	if v, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(v, &ops); err != nil {
			return kid, publicKey{}, errors.New("key_ops is not an array of strings")
		}
		if !slices.Contains(ops, "verify") {
			return kid, publicKey{}, fmt.Errorf("key_ops %q lacks verify", ops)
		}
	}
	kty, err := str("kty")
	if err != nil {
		return kid, publicKey{}, err
	}
	crv, err := str("crv")
	if err != nil {
		return kid, publicKey{}, err
	}
	alg, err := str("alg")
	if err != nil {
		return kid, publicKey{}, err
	}

	var pub crypto.PublicKey
	var implied []latch.Algorithm
	switch kty {
	case "EC":
		if crv != "P-256" {
			return kid, publicKey{}, fmt.Errorf("EC curve %q: only P-256 is supported", crv)
		}
		x, err := coordinate(m, "x", 32)
		if err != nil {
			return kid, publicKey{}, err
		}
		y, err := coordinate(m, "y", 32)
		if err != nil {
			return kid, publicKey{}, err
		}
		// SEC 1 §2.3.4 via the standard library: refuses a point that is
		// not on the curve (invalid-curve attacks) or is the identity.
		point := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return kid, publicKey{}, fmt.Errorf("EC point: %v", err)
		}
		pub, implied = k, []latch.Algorithm{latch.ES256}
	case "OKP":
		if crv != "Ed25519" {
			return kid, publicKey{}, fmt.Errorf("OKP curve %q: only Ed25519 is supported", crv)
		}
		x, err := coordinate(m, "x", ed25519.PublicKeySize)
		if err != nil {
			return kid, publicKey{}, err
		}
		pub, implied = ed25519.PublicKey(x), []latch.Algorithm{latch.EdDSA}
	case "RSA":
		k, err := rsaKey(m)
		if err != nil {
			return kid, publicKey{}, err
		}
		pub, implied = k, []latch.Algorithm{latch.RS256, latch.PS256}
	default:
		return kid, publicKey{}, fmt.Errorf("kty %q is not a public signature key type (EC, OKP, RSA)", kty)
	}

	if alg != "" {
		a := latch.Algorithm(alg)
		if !slices.Contains(implied, a) {
			return kid, publicKey{}, fmt.Errorf("alg %q does not fit a %s key", alg, kty)
		}
		if !slices.Contains(allowed, a) {
			return kid, publicKey{}, fmt.Errorf("alg %q is not in Config.Algorithms", alg)
		}
		return kid, publicKey{pub: pub, alg: a}, nil
	}
	var fits []latch.Algorithm
	for _, a := range implied {
		if slices.Contains(allowed, a) {
			fits = append(fits, a)
		}
	}
	if len(fits) != 1 {
		return kid, publicKey{}, fmt.Errorf("no alg, and %d allowed algorithms fit a %s key; the JWK must name one", len(fits), kty)
	}
	return kid, publicKey{pub: pub, alg: fits[0]}, nil
}

// coordinate decodes a fixed-length base64url member (RFC 7518 §6.2.1.2:
// EC coordinates are full length, leading zeros included).
func coordinate(m map[string]json.RawMessage, name string, size int) ([]byte, error) {
	b, err := bytesMember(m, name)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%q is %d bytes, want %d", name, len(b), size)
	}
	return b, nil
}

func bytesMember(m map[string]json.RawMessage, name string) ([]byte, error) {
	v, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%q is missing", name)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%q is not a string", name)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not canonical base64url", name)
	}
	return b, nil
}

// rsaKey reads n and e (RFC 7518 §6.3.1) with token.RSAPublicKey's rules.
func rsaKey(m map[string]json.RawMessage) (*rsa.PublicKey, error) {
	n, err := bytesMember(m, "n")
	if err != nil {
		return nil, err
	}
	e, err := bytesMember(m, "e")
	if err != nil {
		return nil, err
	}
	return token.RSAPublicKey(n, e)
}

// objectMembers parses a JSON object into its members, refusing duplicate
// names (RFC 7517 §4, §5: member names must be unique; two parsers picking
// different duplicates would see two different keys) and trailing data.
func objectMembers(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("not a JSON object")
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("not a JSON object")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		m[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}
