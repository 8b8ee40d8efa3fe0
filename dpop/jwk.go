package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
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

// jwkMembers are the members of a jwk this package reads.
type jwkMembers struct {
	kty, crv, x, y, n, e, alg string
	hasAlg                    bool
}

// parseJWK reads the jwk header parameter (RFC 7517 §4) as the public key
// for alg. Unknown members (ext, key_ops of WebCrypto exports, kid) are
// ignored; a private member, a key that does not fit alg, a jwk alg other
// than alg, an EC point off its curve and an RSA key outside 2048-8192 bits
// are refused. Only the members RFC 7638 §3.2 names enter the thumbprint.
func parseJWK(raw []byte, alg latch.Algorithm) (publicKey, error) {
	var m jwkMembers
	err := token.EachMember(raw, func(name, v string) error {
		var dst *string
		switch name {
		case "kty":
			dst = &m.kty
		case "crv":
			dst = &m.crv
		case "x":
			dst = &m.x
		case "y":
			dst = &m.y
		case "n":
			dst = &m.n
		case "e":
			dst = &m.e
		case "alg":
			dst, m.hasAlg = &m.alg, true
		default:
			if slices.Contains(privateMembers, name) {
				return fmt.Errorf("jwk has private member %q: a proof carries a public key only (RFC 9449 §4.2)", name)
			}
			return nil
		}
		s, err := token.StringValue(v)
		if err != nil {
			return fmt.Errorf("jwk member %q is not a string", name)
		}
		*dst = s
		return nil
	})
	if err != nil {
		return publicKey{}, fmt.Errorf("jwk: %v", err)
	}
	if m.hasAlg && latch.Algorithm(m.alg) != alg {
		return publicKey{}, fmt.Errorf("jwk alg %q is not the header's alg %q", m.alg, alg)
	}
	k := publicKey{kty: m.kty}
	switch m.kty {
	case "EC":
		if alg != latch.ES256 {
			return publicKey{}, fmt.Errorf("an EC key cannot verify %s", alg)
		}
		if m.crv != "P-256" {
			return publicKey{}, fmt.Errorf("EC curve %q: ES256 needs P-256", m.crv)
		}
		var point [65]byte
		point[0] = 4
		if err := fixedMember(point[1:33], "x", m.x); err != nil {
			return publicKey{}, err
		}
		if err := fixedMember(point[33:], "y", m.y); err != nil {
			return publicKey{}, err
		}
		// SEC 1 §2.3.4: refuses a point off the curve (invalid-curve
		// attacks) and the identity.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
		if err != nil {
			return publicKey{}, fmt.Errorf("EC point: %v", err)
		}
		k.pub = pub
		k.jkt = thumbprint(`{"crv":"P-256","kty":"EC","x":"`, m.x, `","y":"`, m.y, `"}`)
	case "OKP":
		if alg != latch.EdDSA {
			return publicKey{}, fmt.Errorf("an OKP key cannot verify %s", alg)
		}
		if m.crv != "Ed25519" {
			return publicKey{}, fmt.Errorf("OKP curve %q: only Ed25519 is supported", m.crv)
		}
		x := make([]byte, ed25519.PublicKeySize)
		if err := fixedMember(x, "x", m.x); err != nil {
			return publicKey{}, err
		}
		k.pub = ed25519.PublicKey(x)
		k.jkt = thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"`, m.x, `"}`)
	case "RSA":
		if alg != latch.RS256 && alg != latch.PS256 {
			return publicKey{}, fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		pub, err := rsaKey(m.n, m.e)
		if err != nil {
			return publicKey{}, err
		}
		k.pub = pub
		k.jkt = thumbprint(`{"e":"`, m.e, `","kty":"RSA","n":"`, m.n, `"}`)
	default:
		return publicKey{}, fmt.Errorf("jwk kty %q is not a public signature key type (EC, OKP, RSA)", m.kty)
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

// fixedMember decodes a coordinate of fixed length into dst (RFC 7518
// §6.2.1.2: EC coordinates are full length, leading zeros included; RFC
// 8037 §2). Strict decoding makes the string canonical, so it can enter
// the thumbprint as it is.
func fixedMember(dst []byte, name, s string) error {
	if s == "" {
		return fmt.Errorf("jwk member %q is missing", name)
	}
	if b64.DecodedLen(len(s)) != len(dst) {
		return fmt.Errorf("jwk member %q is not %d bytes", name, len(dst))
	}
	if n, err := b64.Decode(dst, []byte(s)); err != nil || n != len(dst) {
		return fmt.Errorf("jwk member %q is not canonical base64url of %d bytes", name, len(dst))
	}
	return nil
}

// rsaKey reads n and e (RFC 7518 §6.3.1) with token.RSAPublicKey's rules.
func rsaKey(ns, es string) (*rsa.PublicKey, error) {
	n, err := b64.DecodeString(ns)
	if err != nil {
		return nil, errors.New("jwk member \"n\" is not canonical base64url")
	}
	e, err := b64.DecodeString(es)
	if err != nil {
		return nil, errors.New("jwk member \"e\" is not canonical base64url")
	}
	return token.RSAPublicKey(n, e)
}
