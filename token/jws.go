package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/latch-auth/latch"
)

// minRSABits is the smallest RSA modulus latch signs or verifies with
// (RFC 7518 §3.3 asks for 2048 bits or more).
const minRSABits = 2048

type family uint8

const (
	famECDSA family = iota + 1
	famEdDSA
	famPKCS1
	famPSS
)

// algSpec is what an algorithm means to the signature layer. Only the four
// values below are ever reachable from a token; the type is general so that
// the tests can run the same code over the RFC 7520 examples (ES512, PS384).
type algSpec struct {
	alg    latch.Algorithm
	family family
	hash   crypto.Hash    // crypto.Hash(0) for EdDSA, which hashes internally
	curve  elliptic.Curve // ECDSA only
	size   int            // ECDSA only: bytes per coordinate, the signature is 2*size
}

var (
	specES256 = algSpec{alg: latch.ES256, family: famECDSA, hash: crypto.SHA256, curve: elliptic.P256(), size: 32}
	specEdDSA = algSpec{alg: latch.EdDSA, family: famEdDSA}
	specRS256 = algSpec{alg: latch.RS256, family: famPKCS1, hash: crypto.SHA256}
	specPS256 = algSpec{alg: latch.PS256, family: famPSS, hash: crypto.SHA256}

	// RFC 7518 §3.5: the salt is as long as the hash. Verification insists
	// on it rather than auto-detecting, so a token has one valid form.
	pssOptions = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
)

// specFor returns the spec of one of the algorithms latch implements. Names
// are compared exactly (RFC 7515 §4.1.1: alg is case-sensitive).
func specFor(alg string) (*algSpec, bool) {
	switch alg {
	case "ES256":
		return &specES256, true
	case "EdDSA":
		return &specEdDSA, true
	case "RS256":
		return &specRS256, true
	case "PS256":
		return &specPS256, true
	}
	return nil, false
}

// checkKey reports whether pub is a key this algorithm may use, and returns
// the exact signature length it implies. Verify checks the length before
// decoding anything else of the signature (RFC 7518 §3.4: an ES256
// signature is exactly 64 bytes; RFC 8017 §8.2.2: an RSA signature is as long
// as the modulus).
func (sp *algSpec) checkKey(pub crypto.PublicKey) (sigLen int, err error) {
	switch sp.family {
	case famECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return 0, fmt.Errorf("%s needs an ECDSA public key, have %T", sp.alg, pub)
		}
		if k.Curve.Params() != sp.curve.Params() {
			return 0, fmt.Errorf("%s needs curve %s, have %s", sp.alg, sp.curve.Params().Name, k.Curve.Params().Name)
		}
		return 2 * sp.size, nil
	case famEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return 0, fmt.Errorf("%s needs an Ed25519 public key, have %T", sp.alg, pub)
		}
		return ed25519.SignatureSize, nil
	case famPKCS1, famPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return 0, fmt.Errorf("%s needs an RSA public key, have %T", sp.alg, pub)
		}
		if k.N.BitLen() < minRSABits {
			return 0, fmt.Errorf("%s needs an RSA key of at least %d bits, have %d", sp.alg, minRSABits, k.N.BitLen())
		}
		return k.Size(), nil
	}
	return 0, errors.New("unknown algorithm family")
}

// digest hashes the signing input with the algorithm's hash into buf.
func (sp *algSpec) digest(buf *[64]byte, input []byte) []byte {
	switch sp.hash {
	case crypto.SHA256:
		*(*[32]byte)(buf[:32]) = sha256.Sum256(input)
		return buf[:32]
	case crypto.SHA384:
		*(*[48]byte)(buf[:48]) = sha512.Sum384(input)
		return buf[:48]
	case crypto.SHA512:
		*buf = sha512.Sum512(input)
		return buf[:64]
	}
	panic("token: unsupported hash")
}

// verify is the raw signature check: it reports whether sig is a valid
// signature of input under pub. pub must have passed checkKey and sig must
// have the length checkKey returned.
func (sp *algSpec) verify(pub crypto.PublicKey, input, sig []byte) bool {
	if sp.family == famEdDSA {
		// crypto/ed25519 rejects non-canonical s (RFC 8032 §5.1.7), so
		// EdDSA signatures are not malleable.
		return ed25519.Verify(pub.(ed25519.PublicKey), input, sig)
	}
	var buf [64]byte // escapes into crypto/ecdsa and crypto/rsa; EdDSA skips it
	switch sp.family {
	case famECDSA:
		// JWS carries r‖s (RFC 7518 §3.4); crypto/ecdsa reads ASN.1. Both
		// halves are re-encoded as minimal DER INTEGERs, which is exactly
		// what ecdsa.Verify does with big.Ints, minus the big.Ints. High-s
		// signatures are valid here as they are in the math: see the
		// Revocation docs (security invariant 4).
		var der [2 + 3 + 2*(2+1+66)]byte
		n := p1363ToASN1(der[:], sig, sp.size)
		return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sp.digest(&buf, input), der[:n])
	case famPKCS1:
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), sp.hash, sp.digest(&buf, input), sig) == nil
	case famPSS:
		opts := pssOptions
		opts.Hash = sp.hash
		return rsa.VerifyPSS(pub.(*rsa.PublicKey), sp.hash, sp.digest(&buf, input), sig, &opts) == nil
	}
	return false
}

// p1363ToASN1 writes SEQUENCE { INTEGER r, INTEGER s } for sig = r‖s into
// der and returns its length.
func p1363ToASN1(der, sig []byte, size int) int {
	var body [2 * (3 + 66)]byte
	n := appendASN1Int(body[:0], sig[:size])
	n = appendASN1Int(n, sig[size:])
	der[0] = 0x30
	i := 1
	if len(n) >= 0x80 {
		der[i] = 0x81
		i++
	}
	der[i] = byte(len(n))
	i++
	return i + copy(der[i:], n)
}

func appendASN1Int(b, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	pad := len(v) > 0 && v[0]&0x80 != 0
	l := len(v)
	if pad {
		l++
	}
	b = append(b, 0x02, byte(l))
	if pad {
		b = append(b, 0)
	}
	return append(b, v...)
}

// Signer signs JWTs with one key under one kid. It is safe for concurrent
// use.
type Signer struct {
	kid    string
	alg    latch.Algorithm
	spec   *algSpec
	key    crypto.Signer
	sigLen int

	mu      sync.RWMutex
	headers map[string]string // typ -> encoded protected header and '.'
}

// maxCachedHeaders bounds the header cache; callers use a handful of
// constant typ values (at+jwt, JWT, ...).
const maxCachedHeaders = 16

// NewSigner returns a Signer for key under kid. key must fit alg: a P-256
// ECDSA key for ES256, Ed25519 for EdDSA, RSA of at least 2048 bits for RS256
// and PS256.
func NewSigner(kid string, alg latch.Algorithm, key crypto.Signer) (*Signer, error) {
	if kid == "" {
		return nil, errors.New("token: a signer needs a kid")
	}
	if key == nil {
		return nil, errors.New("token: a signer needs a key")
	}
	spec, ok := specFor(string(alg))
	if !ok {
		return nil, fmt.Errorf("token: unsupported algorithm %q", alg)
	}
	sigLen, err := spec.checkKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token: key %q: %v", kid, err)
	}
	return &Signer{kid: kid, alg: alg, spec: spec, key: key, sigLen: sigLen, headers: make(map[string]string)}, nil
}

// KeyID returns the kid the signer puts in every header.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm returns the signer's algorithm.
func (s *Signer) Algorithm() latch.Algorithm { return s.alg }

// header returns base64url of {"alg":...,"kid":...,"typ":...} followed by
// '.', cached per typ.
func (s *Signer) header(typ string) string {
	s.mu.RLock()
	h, ok := s.headers[typ]
	s.mu.RUnlock()
	if ok {
		return h
	}
	b := []byte(`{"alg":`)
	b = appendString(b, string(s.alg))
	b = append(b, `,"kid":`...)
	b = appendString(b, s.kid)
	b = append(b, `,"typ":`...)
	b = appendString(b, typ)
	b = append(b, '}')
	h = b64.EncodeToString(b) + "."
	s.mu.Lock()
	if len(s.headers) < maxCachedHeaders {
		s.headers[typ] = h
	}
	s.mu.Unlock()
	return h
}

// Sign returns the compact JWS (RFC 7515 §7.1) of claims with the protected
// header {"alg","kid","typ"} and nothing else. claims is a Claims, a *Claims
// (marshalled without reflection) or anything json.Marshal turns into an
// object. typ is required: it is what keeps an ID token from being accepted
// as an access token (RFC 8725 §3.11), so use "at+jwt" for access tokens
// (RFC 9068 §2.1).
func (s *Signer) Sign(typ string, claims any) (string, error) {
	if typ == "" {
		return "", errors.New("token: sign: typ is required")
	}
	var payload []byte
	var err error
	switch c := claims.(type) {
	case *Claims:
		payload, err = c.appendJSON(make([]byte, 0, 256))
	case Claims:
		payload, err = c.appendJSON(make([]byte, 0, 256))
	default:
		payload, err = json.Marshal(claims)
	}
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	if len(payload) == 0 || payload[0] != '{' {
		return "", fmt.Errorf("token: sign: claims must marshal to a JSON object, have %T", claims)
	}
	h := s.header(typ)
	inputLen := len(h) + b64.EncodedLen(len(payload))
	out := make([]byte, inputLen, inputLen+1+b64.EncodedLen(s.sigLen))
	copy(out, h)
	b64.Encode(out[len(h):], payload)

	sig, err := s.sign(out)
	if err != nil {
		return "", fmt.Errorf("token: sign with key %q: %w", s.kid, err)
	}
	if len(sig) != s.sigLen {
		return "", fmt.Errorf("token: sign with key %q: signature of %d bytes, want %d", s.kid, len(sig), s.sigLen)
	}
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	return string(out), nil
}

func (s *Signer) sign(input []byte) ([]byte, error) {
	var buf [64]byte
	// Every random value comes from crypto/rand (security invariant 9).
	switch s.spec.family {
	case famECDSA:
		der, err := s.key.Sign(rand.Reader, s.spec.digest(&buf, input), s.spec.hash)
		if err != nil {
			return nil, err
		}
		return asn1ToP1363(der, s.spec.size)
	case famEdDSA:
		return s.key.Sign(rand.Reader, input, crypto.Hash(0))
	case famPKCS1:
		return s.key.Sign(rand.Reader, s.spec.digest(&buf, input), s.spec.hash)
	case famPSS:
		opts := pssOptions
		opts.Hash = s.spec.hash
		return s.key.Sign(rand.Reader, s.spec.digest(&buf, input), &opts)
	}
	return nil, errors.New("unknown algorithm family")
}

// asn1ToP1363 turns the DER ECDSA signature a crypto.Signer returns
// (possibly an HSM or a KMS) into the fixed-length r‖s of RFC 7518 §3.4.
func asn1ToP1363(der []byte, size int) ([]byte, error) {
	bad := errors.New("malformed ECDSA signature from signer")
	if len(der) < 2 || der[0] != 0x30 {
		return nil, bad
	}
	body, i := der[2:], int(der[1])
	if der[1] == 0x81 && len(der) > 2 {
		body, i = der[3:], int(der[2])
	} else if der[1] >= 0x80 {
		return nil, bad
	}
	if i != len(body) {
		return nil, bad
	}
	out := make([]byte, 2*size)
	for k := 0; k < 2; k++ {
		if len(body) < 2 || body[0] != 0x02 || int(body[1]) > len(body)-2 {
			return nil, bad
		}
		v := body[2 : 2+int(body[1])]
		body = body[2+int(body[1]):]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > size {
			return nil, bad
		}
		copy(out[(k+1)*size-len(v):(k+1)*size], v)
	}
	if len(body) != 0 {
		return nil, bad
	}
	return out, nil
}
