package token

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/latch-auth/latch"
)

// VerifySignature is the raw JWS signature check (RFC 7515 §5.2 step 8) of
// sig over input under pub with alg, for JWTs whose key is not in a KeySet:
// a DPoP proof carries its own key in its header (RFC 9449 §4.2). alg must
// be one latch implements and pub must fit it; sig must have the exact
// length the key implies. Failures wrap ErrAlgorithm or ErrSignature.
func VerifySignature(alg latch.Algorithm, pub crypto.PublicKey, input, sig []byte) error {
	spec, ok := specFor(string(alg))
	if !ok {
		return fmt.Errorf("token: alg %q: %w", alg, ErrAlgorithm)
	}
	sigLen, err := spec.checkKey(pub)
	if err != nil {
		return fmt.Errorf("token: %v: %w", err, ErrAlgorithm)
	}
	if len(sig) != sigLen {
		return fmt.Errorf("token: %s signature is %d bytes, want %d: %w", alg, len(sig), sigLen, ErrSignature)
	}
	if !spec.verify(pub, input, sig) {
		return fmt.Errorf("token: %w", ErrSignature)
	}
	return nil
}

// SignSignature is the raw JWS signature (RFC 7515 §5.1 step 5) of input
// with key under alg, in the JWS form (r‖s for ECDSA, RFC 7518 §3.4), for
// JWTs whose header Signer does not write: a DPoP proof names its key by
// value, not by kid (RFC 9449 §4.2).
func SignSignature(alg latch.Algorithm, key crypto.Signer, input []byte) ([]byte, error) {
	spec, ok := specFor(string(alg))
	if !ok {
		return nil, fmt.Errorf("token: unsupported algorithm %q", alg)
	}
	if key == nil {
		return nil, fmt.Errorf("token: sign: no key")
	}
	sigLen, err := spec.checkKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("token: sign: %v", err)
	}
	s := Signer{alg: alg, spec: spec, key: key, sigLen: sigLen}
	sig, err := s.sign(input)
	if err != nil {
		return nil, fmt.Errorf("token: sign: %w", err)
	}
	if len(sig) != sigLen {
		return nil, fmt.Errorf("token: sign: signature of %d bytes, want %d", len(sig), sigLen)
	}
	return sig, nil
}

// maxRSABits bounds the RSA keys read from JWKs: token.Verify handles
// signatures up to 8192 bits, and a larger key costs more per check.
const maxRSABits = 8192

// RSAPublicKey builds an RSA public key from the n and e of a JWK (RFC 7518
// §6.3.1), decoded: minimal big-endian integers, a modulus of 2048 to 8192
// bits (§3.3 asks for 2048 or more) and odd, an odd exponent from 3 to
// 2^31-1, the range crypto/rsa accepts. verify (the JWKS) and dpop (a
// proof's jwk) read RSA keys through it.
func RSAPublicKey(n, e []byte) (*rsa.PublicKey, error) {
	if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 {
		return nil, errors.New("RSA n and e must be minimal big-endian integers")
	}
	N := new(big.Int).SetBytes(n)
	if bits := N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits: need %d to %d", bits, minRSABits, maxRSABits)
	}
	if N.Bit(0) == 0 {
		return nil, errors.New("RSA modulus is even")
	}
	if len(e) > 4 {
		return nil, errors.New("RSA exponent is too large")
	}
	var E int64
	for _, b := range e {
		E = E<<8 | int64(b)
	}
	if E < 3 || E > 1<<31-1 || E%2 == 0 {
		return nil, fmt.Errorf("RSA exponent %d: need an odd value from 3 to 2^31-1", E)
	}
	return &rsa.PublicKey{N: N, E: int(E)}, nil
}
