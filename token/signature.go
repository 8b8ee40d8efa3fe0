package token

import (
	"crypto"
	"fmt"

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
