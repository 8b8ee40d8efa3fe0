package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/latch-auth/latch"
)

// A tagged opaque token carries, besides the random body, the identifier of
// a tag key and an HMAC-SHA256 tag under that key:
//
//	prefix(6) body(43) kid(4) tag(22) crc(6)     81 characters
//
// The CRC-32 of NewOpaque only catches typing errors: anyone can compute it,
// so it lets anyone mint well-formed garbage that costs the issuer a lookup.
// The tag can be checked only with the key, which the authorization server
// shares with its gateways and resource servers (GET /oauth2/opaque-token-keys),
// so a forged token is refused there without a round trip to the issuer.
// It authenticates nothing: a token with a good tag is still looked up (its
// hash) at the issuer, which alone says whether it is active. A leaked key
// therefore lets its holder put forged tokens back on the budgeted miss path
// of a gateway, no more.
const (
	tagKeyIDBytes = 3
	tagKeyIDLen   = 4 // base64url of 3 bytes
	tagBytes      = 16
	tagLen        = 22 // base64url, no padding, of 16 bytes
	taggedLen     = prefixLen + opaqueBodyLen + tagKeyIDLen + tagLen + checksumLen

	// MinTagKeyBytes is the shortest tag-key secret accepted: HMAC-SHA256
	// keys should be at least as long as the hash (RFC 2104 §3).
	MinTagKeyBytes = 32
)

// ErrForgedTag: an opaque token names a known tag key but its tag does not
// verify under it. It wraps ErrMalformed, so callers that treat any
// malformed token alike need not know about tags.
var ErrForgedTag = fmt.Errorf("token: opaque token tag does not verify: %w", ErrMalformed)

// TagKey is one HMAC key for the tags of opaque tokens. Its identifier is
// derived from the secret, so that the server and its verifiers can never
// disagree about which secret an identifier names.
type TagKey struct {
	id     string
	secret []byte
}

// NewTagKey returns the tag key of secret (at least MinTagKeyBytes).
func NewTagKey(secret []byte) (*TagKey, error) {
	if len(secret) < MinTagKeyBytes {
		return nil, fmt.Errorf("token: tag key of %d bytes; use at least %d random bytes", len(secret), MinTagKeyBytes)
	}
	sum := sha256.Sum256(append([]byte("latch opaque-token tag key id\x00"), secret...))
	return &TagKey{id: b64.EncodeToString(sum[:tagKeyIDBytes]), secret: append([]byte(nil), secret...)}, nil
}

// GenerateTagKey returns a tag key with 256 bits from r (crypto/rand.Reader
// when nil).
func GenerateTagKey(r io.Reader) (*TagKey, error) {
	if r == nil {
		r = rand.Reader
	}
	secret := make([]byte, MinTagKeyBytes)
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("token: read random: %w", err)
	}
	return NewTagKey(secret)
}

// ID is the key's identifier, as it appears in tokens: 4 base64url
// characters.
func (k *TagKey) ID() string { return k.id }

// Secret returns a copy of the key's secret, for handing to verifiers.
func (k *TagKey) Secret() []byte { return append([]byte(nil), k.secret...) }

// tag computes the tag of the token's first prefix+body+kid characters.
func (k *TagKey) tag(signed []byte) [tagBytes]byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write(signed)
	var out [tagBytes]byte
	copy(out[:], m.Sum(nil))
	return out
}

// NewTaggedOpaque returns a new opaque token of the given kind carrying a
// tag under key: the kind's prefix, 256 bits from r (crypto/rand.Reader
// when nil), key's identifier, the tag, and a CRC-32 of all of it.
func NewTaggedOpaque(kind latch.TokenKind, key *TagKey, r io.Reader) (string, error) {
	if key == nil {
		return "", errors.New("token: NewTaggedOpaque needs a tag key")
	}
	plain, err := NewOpaque(kind, r)
	if err != nil {
		return "", err
	}
	var out [taggedLen]byte
	n := copy(out[:], plain[:prefixLen+opaqueBodyLen])
	n += copy(out[n:], key.id)
	t := key.tag(out[:n])
	b64.Encode(out[n:], t[:])
	n += tagLen
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(out[:n]))
	b64.Encode(out[n:], sum[:])
	return string(out[:]), nil
}

// Tag is what CheckTag found out about an opaque token's tag.
type Tag int

const (
	// Untagged: the token has the older form, without a tag, which only
	// the issuer can judge.
	Untagged Tag = iota
	// TagUnknownKey: the token names a tag key not among those given,
	// minted under a key newer than the caller's copy, or forged. Only
	// the issuer can judge it; the caller may want to refresh its keys.
	TagUnknownKey
	// TagValid: the tag verifies under one of the keys given. The token
	// was minted by the issuer (or by a holder of the key); whether it is
	// active only the issuer can say.
	TagValid
)

// String names t for logs and metrics.
func (t Tag) String() string {
	switch t {
	case Untagged:
		return "untagged"
	case TagUnknownKey:
		return "unknown_key"
	case TagValid:
		return "valid"
	}
	return fmt.Sprintf("Tag(%d)", int(t))
}

// CheckTag parses raw as ParseOpaque does and, for a tagged token, checks
// its tag against keys. A token naming one of keys whose tag does not
// verify is an error wrapping ErrForgedTag (and so ErrMalformed); every
// other malformed token is an error wrapping ErrMalformed.
func CheckTag(raw string, keys []*TagKey) (latch.TokenKind, Tag, error) {
	kind, err := ParseOpaque(raw)
	if err != nil {
		return "", Untagged, err
	}
	if len(raw) != taggedLen {
		return kind, Untagged, nil
	}
	kid := raw[prefixLen+opaqueBodyLen : prefixLen+opaqueBodyLen+tagKeyIDLen]
	for _, k := range keys {
		if k == nil || k.id != kid {
			continue
		}
		var got [tagBytes]byte
		// ParseOpaque checked the alphabet and canonical form of the tag.
		b64.Decode(got[:], []byte(raw[prefixLen+opaqueBodyLen+tagKeyIDLen:taggedLen-checksumLen]))
		want := k.tag([]byte(raw[:prefixLen+opaqueBodyLen+tagKeyIDLen]))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return kind, TagUnknownKey, ErrForgedTag
		}
		return kind, TagValid, nil
	}
	return kind, TagUnknownKey, nil
}
