package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/latch-auth/latch"
)

// Prefixes of opaque tokens. They make a leaked token recognisable to secret
// scanners and tell an access token from a refresh token without a lookup.
const (
	PrefixAccess  = "lt_at_"
	PrefixRefresh = "lt_rt_"
	// PrefixOpaque is common to every latch opaque token: a string with it
	// is judged as one (ParseOpaque), never as a JWT.
	PrefixOpaque = "lt_"
)

// IsOpaque reports whether raw claims to be a latch opaque token, by its
// prefix alone; ParseOpaque says whether it is a well-formed one.
func IsOpaque(raw string) bool { return strings.HasPrefix(raw, PrefixOpaque) }

const (
	opaqueBodyBytes = 32 // 256 bits
	prefixLen       = 6
	opaqueBodyLen   = 43 // base64url, no padding, of 32 bytes
	checksumLen     = 6  // base64url, no padding, of a 4-byte CRC-32
	opaqueLen       = prefixLen + opaqueBodyLen + checksumLen
)

// b64 is the only base64 latch reads: the URL alphabet without padding, and
// Strict, so the unused low bits of the last character must be zero and every
// byte string has exactly one accepted encoding (RFC 7515 §2, §3.1).
var b64 = base64.RawURLEncoding.Strict()

// NewOpaque returns a new opaque token of the given kind: the kind's prefix,
// 256 bits from r encoded base64url, and a CRC-32 of both, so that ParseOpaque
// can refuse a mistyped or truncated token without a store lookup. r is
// crypto/rand.Reader when nil (security invariant 9); tests pass their own.
func NewOpaque(kind latch.TokenKind, r io.Reader) (string, error) {
	var prefix string
	switch kind {
	case latch.KindAccess:
		prefix = PrefixAccess
	case latch.KindRefresh:
		prefix = PrefixRefresh
	default:
		return "", fmt.Errorf("token: unknown token kind %q", kind)
	}
	if r == nil {
		r = rand.Reader
	}
	var body [opaqueBodyBytes]byte
	if _, err := io.ReadFull(r, body[:]); err != nil {
		return "", fmt.Errorf("token: read random: %w", err)
	}
	var out [opaqueLen]byte
	copy(out[:], prefix)
	b64.Encode(out[prefixLen:], body[:])
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(out[:prefixLen+opaqueBodyLen]))
	b64.Encode(out[prefixLen+opaqueBodyLen:], sum[:])
	return string(out[:]), nil
}

// ParseOpaque checks the form of an opaque token, untagged (NewOpaque) or
// tagged (NewTaggedOpaque): the prefix, the exact length, the base64url
// alphabet in canonical form and the checksum. It says nothing about
// whether the token was ever issued; only a store lookup of Hash(raw) does;
// nor does it check a tag (CheckTag does, given the keys). Every failure
// wraps ErrMalformed.
func ParseOpaque(raw string) (latch.TokenKind, error) {
	if len(raw) != opaqueLen && len(raw) != taggedLen {
		return "", fmt.Errorf("token: opaque token has %d bytes, want %d (or %d with a tag): %w", len(raw), opaqueLen, taggedLen, ErrMalformed)
	}
	var kind latch.TokenKind
	switch raw[:prefixLen] {
	case PrefixAccess:
		kind = latch.KindAccess
	case PrefixRefresh:
		kind = latch.KindRefresh
	default:
		return "", fmt.Errorf("token: opaque token has an unknown prefix: %w", ErrMalformed)
	}
	var in [taggedLen]byte
	copy(in[:], raw)
	var body [opaqueBodyBytes]byte
	if n, err := b64.Decode(body[:], in[prefixLen:prefixLen+opaqueBodyLen]); err != nil || n != opaqueBodyBytes {
		return "", fmt.Errorf("token: opaque token body is not canonical base64url: %w", ErrMalformed)
	}
	signed := len(raw) - checksumLen
	if len(raw) == taggedLen {
		var kid [tagKeyIDBytes]byte
		var tag [tagBytes]byte
		at := prefixLen + opaqueBodyLen
		if n, err := b64.Decode(kid[:], in[at:at+tagKeyIDLen]); err != nil || n != len(kid) {
			return "", fmt.Errorf("token: opaque token key id is not canonical base64url: %w", ErrMalformed)
		}
		at += tagKeyIDLen
		if n, err := b64.Decode(tag[:], in[at:at+tagLen]); err != nil || n != len(tag) {
			return "", fmt.Errorf("token: opaque token tag is not canonical base64url: %w", ErrMalformed)
		}
	}
	var sum [4]byte
	if n, err := b64.Decode(sum[:], in[signed:len(raw)]); err != nil || n != len(sum) {
		return "", fmt.Errorf("token: opaque token checksum is not canonical base64url: %w", ErrMalformed)
	}
	// The checksum is not a secret (anyone can compute it), so a plain
	// comparison is fine here; the token itself is compared only as a hash.
	if binary.BigEndian.Uint32(sum[:]) != crc32.ChecksumIEEE(in[:signed]) {
		return "", fmt.Errorf("token: opaque token checksum mismatch: %w", ErrMalformed)
	}
	return kind, nil
}

// Hash returns the SHA-256 of a raw token (opaque token, refresh token,
// session ID or client secret): the only form in which latch stores one, so a
// copy of the database yields no usable credential.
func Hash(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// NewID returns 128 random bits from r, base64url without padding (22
// characters): for jti, token IDs and client IDs. r is crypto/rand.Reader
// when nil.
func NewID(r io.Reader) (string, error) { return randomString(r, 16) }

// NewSecret returns 256 random bits from r, base64url without padding (43
// characters): for client secrets, which are stored as Hash. r is
// crypto/rand.Reader when nil.
func NewSecret(r io.Reader) (string, error) { return randomString(r, 32) }

func randomString(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var buf [32]byte
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return "", fmt.Errorf("token: read random: %w", err)
	}
	var out [43]byte
	m := b64.EncodedLen(n)
	b64.Encode(out[:m], buf[:n])
	return string(out[:m]), nil
}
