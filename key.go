package latch

import "time"

// Algorithm is a JWS signing algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
type Algorithm string

const (
	ES256 Algorithm = "ES256"
	EdDSA Algorithm = "EdDSA"
	RS256 Algorithm = "RS256"
	PS256 Algorithm = "PS256"
)

// Algorithms lists the signing algorithms latch can issue with.
var Algorithms = []Algorithm{ES256, EdDSA, RS256, PS256}

// Key is a signing key as stored. Private is sealed under the operator's
// key-encryption key; only package keys can open it.
type Key struct {
	ID        string // the JWS kid
	Algorithm Algorithm
	Public    []byte // PKIX (DER) public key
	Private   []byte // PKCS #8 (DER) private key, sealed with AES-256-GCM under the KEK

	CreatedAt time.Time
	// ActiveAt is when the key may start signing. Between CreatedAt and
	// ActiveAt it is published in the JWKS only (pre-publication), so every
	// verifier has it cached before the first token it signs arrives.
	ActiveAt time.Time
	// RetiredAt is when the key stopped signing early (latch keys retire);
	// zero while the key is in line. A key superseded by a newer active key
	// stops signing without being retired.
	RetiredAt time.Time
	// RemovedAt is when the key left the JWKS (retired with --now, i.e.
	// compromised); zero otherwise. Tokens it signed no longer verify.
	RemovedAt time.Time
	// Purpose says which line of keys the key belongs to: each line has
	// its own signer, superseded only by newer keys of the same line.
	Purpose KeyPurpose
}

// KeyPurpose names a line of signing keys.
type KeyPurpose string

const (
	// PurposeDefault keys sign everything: access tokens, ID tokens in
	// their algorithm, introspection responses.
	PurposeDefault KeyPurpose = ""
	// PurposeIDToken keys sign only ID tokens, in an algorithm the default
	// line does not use (an RSA key beside an ES256 default), so that
	// relying parties that only verify RS256 can use latch.
	PurposeIDToken KeyPurpose = "id_token"
)
