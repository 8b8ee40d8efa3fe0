package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/latch-auth/latch"
)

// RSA modulus bounds: RFC 7518 §3.3 asks for 2048 bits or more; 8192 keeps
// the cost of one proof bounded.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// privateMembers are the JWK members of private or symmetric keys (RFC 7518
// §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). RFC 9449 §4.2: the jwk header MUST
// NOT contain a private key.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// publicKey is the key of a proof's jwk header and its RFC 7638 thumbprint.
type publicKey struct {
	pub crypto.PublicKey
	kty string
	jkt string
}

// parseJWK reads the jwk header parameter (RFC 7517 §4) as the public key
// for alg. Unknown members (ext, key_ops of WebCrypto exports, kid) are
// ignored; a private member, a key that does not fit alg, a jwk alg other
// than alg, an EC point off its curve and an RSA key outside 2048-8192 bits
// are refused. Only the members RFC 7638 §3.2 names enter the thumbprint.
func parseJWK(raw []byte, alg latch.Algorithm) (publicKey, error) {
	m, err := objectMembers(raw)
	if err != nil {
		return publicKey{}, fmt.Errorf("jwk: %v", err)
	}
	for _, p := range privateMembers {
		if _, ok := m[p]; ok {
			return publicKey{}, fmt.Errorf("jwk has private member %q: a proof carries a public key only (RFC 9449 §4.2)", p)
		}
	}
	kty, err := stringMember(m, "kty")
	if err != nil {
		return publicKey{}, err
	}
	if v, ok := m["alg"]; ok {
		var a string
		if json.Unmarshal(v, &a) != nil || latch.Algorithm(a) != alg {
			return publicKey{}, fmt.Errorf("jwk alg %s is not the header's alg %q", v, alg)
		}
	}
	var k publicKey
	k.kty = kty
	switch kty {
	case "EC":
		if alg != latch.ES256 {
			return publicKey{}, fmt.Errorf("an EC key cannot verify %s", alg)
		}
		crv, err := stringMember(m, "crv")
		if err != nil {
			return publicKey{}, err
		}
		if crv != "P-256" {
			return publicKey{}, fmt.Errorf("EC curve %q: ES256 needs P-256", crv)
		}
		x, xs, err := fixedMember(m, "x", 32)
		if err != nil {
			return publicKey{}, err
		}
		y, ys, err := fixedMember(m, "y", 32)
		if err != nil {
			return publicKey{}, err
		}
		// SEC 1 §2.3.4: refuses a point off the curve (invalid-curve
		// attacks) and the identity.
		point := append(append(make([]byte, 0, 65), 4), x...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(point, y...))
		if err != nil {
			return publicKey{}, fmt.Errorf("EC point: %v", err)
		}
		k.pub = pub
		k.jkt = thumbprint(`{"crv":"P-256","kty":"EC","x":"`, xs, `","y":"`, ys, `"}`)
	case "OKP":
		if alg != latch.EdDSA {
			return publicKey{}, fmt.Errorf("an OKP key cannot verify %s", alg)
		}
		crv, err := stringMember(m, "crv")
		if err != nil {
			return publicKey{}, err
		}
		if crv != "Ed25519" {
			return publicKey{}, fmt.Errorf("OKP curve %q: only Ed25519 is supported", crv)
		}
		x, xs, err := fixedMember(m, "x", ed25519.PublicKeySize)
		if err != nil {
			return publicKey{}, err
		}
		k.pub = ed25519.PublicKey(x)
		k.jkt = thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"`, xs, `"}`)
	case "RSA":
		if alg != latch.RS256 && alg != latch.PS256 {
			return publicKey{}, fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		pub, ns, es, err := rsaKey(m)
		if err != nil {
			return publicKey{}, err
		}
		k.pub = pub
		k.jkt = thumbprint(`{"e":"`, es, `","kty":"RSA","n":"`, ns, `"}`)
	default:
		return publicKey{}, fmt.Errorf("jwk kty %q is not a public signature key type (EC, OKP, RSA)", kty)
	}
	return k, nil
}

// thumbprint is the RFC 7638 §3 SHA-256 thumbprint, base64url, of the
// canonical JSON given in parts. The member values are the strict
// base64url strings the JWK carried, so they are already in their one
// canonical form and need no JSON escaping.
func thumbprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	var sum [sha256.Size]byte
	return b64.EncodeToString(h.Sum(sum[:0]))
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url: the
// jkt of a token bound to it (RFC 9449 §6.1). pub is an *ecdsa.PublicKey on
// P-256, an ed25519.PublicKey or an *rsa.PublicKey.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return "", errors.New("dpop: thumbprint: only P-256 EC keys are supported")
		}
		b, err := k.Bytes()
		if err != nil {
			return "", fmt.Errorf("dpop: thumbprint: %v", err)
		}
		return thumbprint(`{"crv":"P-256","kty":"EC","x":"`, b64.EncodeToString(b[1:33]), `","y":"`, b64.EncodeToString(b[33:]), `"}`), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("dpop: thumbprint: malformed Ed25519 key")
		}
		return thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"`, b64.EncodeToString(k), `"}`), nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", errors.New("dpop: thumbprint: malformed RSA key")
		}
		return thumbprint(`{"e":"`, b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()), `","kty":"RSA","n":"`, b64.EncodeToString(k.N.Bytes()), `"}`), nil
	}
	return "", fmt.Errorf("dpop: thumbprint: unsupported key type %T", pub)
}

func stringMember(m map[string]json.RawMessage, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("jwk member %q is missing", name)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("jwk member %q is not a string", name)
	}
	return s, nil
}

// bytesMember decodes a base64url member, returning the string too (for
// the thumbprint). Strict decoding makes the string canonical.
func bytesMember(m map[string]json.RawMessage, name string) ([]byte, string, error) {
	s, err := stringMember(m, name)
	if err != nil {
		return nil, "", err
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, "", fmt.Errorf("jwk member %q is not canonical base64url", name)
	}
	return b, s, nil
}

// fixedMember is a coordinate of fixed length (RFC 7518 §6.2.1.2: EC
// coordinates are full length, leading zeros included; RFC 8037 §2).
func fixedMember(m map[string]json.RawMessage, name string, size int) ([]byte, string, error) {
	b, s, err := bytesMember(m, name)
	if err != nil {
		return nil, "", err
	}
	if len(b) != size {
		return nil, "", fmt.Errorf("jwk member %q is %d bytes, want %d", name, len(b), size)
	}
	return b, s, nil
}

// rsaKey reads n and e (RFC 7518 §6.3.1): minimal big-endian, a modulus of
// 2048 to 8192 bits, an odd exponent from 3 to 2^31-1.
func rsaKey(m map[string]json.RawMessage) (*rsa.PublicKey, string, string, error) {
	n, ns, err := bytesMember(m, "n")
	if err != nil {
		return nil, "", "", err
	}
	e, es, err := bytesMember(m, "e")
	if err != nil {
		return nil, "", "", err
	}
	if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 {
		return nil, "", "", errors.New("RSA n and e must be minimal big-endian integers")
	}
	N := new(big.Int).SetBytes(n)
	if bits := N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, "", "", fmt.Errorf("RSA modulus of %d bits: need %d to %d", bits, minRSABits, maxRSABits)
	}
	if N.Bit(0) == 0 {
		return nil, "", "", errors.New("RSA modulus is even")
	}
	if len(e) > 4 {
		return nil, "", "", errors.New("RSA exponent is too large")
	}
	var E int64
	for _, b := range e {
		E = E<<8 | int64(b)
	}
	if E < 3 || E > 1<<31-1 || E%2 == 0 {
		return nil, "", "", fmt.Errorf("RSA exponent %d: need an odd value from 3 to 2^31-1", E)
	}
	return &rsa.PublicKey{N: N, E: int(E)}, ns, es, nil
}

// objectMembers parses a JSON object into its members, refusing duplicate
// names (RFC 7515 §5.2 step 4, RFC 7519 §4: two parsers picking different
// duplicates would see two different proofs) and trailing data.
func objectMembers(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage, 8)
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
