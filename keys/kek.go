package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// Sealer encrypts private signing keys at rest under the operator's
// key-encryption key (KEK) with AES-256-GCM. The KEK lives outside the
// database (a file or an environment variable), so a copy of the database
// alone yields no signing key (docs/security.md).
type Sealer struct {
	aead cipher.AEAD
	kek  []byte // for Derive only
}

// NewSealer returns a Sealer for kek, which must be exactly KEKSize bytes.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("keys: the key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return &Sealer{aead: aead, kek: append([]byte(nil), kek...)}, nil
}

// Derive returns a 32-byte key for purpose, derived from the KEK with
// HKDF-SHA256 (RFC 5869) and purpose as its info: every node holding the
// KEK derives the same key, and a derived key reveals nothing of the KEK
// or of another purpose's key.
func (s *Sealer) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.kek, nil, purpose, KEKSize)
	if err != nil {
		panic("keys: HKDF of 32 bytes failed: " + err.Error()) // only for lengths over 255*32
	}
	return k
}

// Seal encrypts plaintext and returns nonce || ciphertext || tag. The 96-bit
// nonce is always drawn from crypto/rand, never from an injected reader: a
// repeated nonce under one GCM key leaks the authentication key, and a KEK
// seals few enough keys that random nonces are far from the birthday bound
// (NIST SP 800-38D §8.3). aad is authenticated but not stored; latch passes
// the kid, so a sealed private key copied onto another key's row fails to open.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("keys: read nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// errKEKMismatch is what Open says for every authentication failure: GCM
// cannot tell a wrong KEK from altered bytes or a row swap, and the wrong KEK
// is by far the most common cause in practice.
var errKEKMismatch = errors.New("keys: cannot open sealed key: the key-encryption key does not match the one the keys were sealed with (or the stored key was altered or copied from another row)")

// Open decrypts what Seal returned with the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, fmt.Errorf("keys: sealed key is truncated (%d bytes)", len(sealed))
	}
	plain, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, errKEKMismatch
	}
	return plain, nil
}

// ParseKEK decodes a KEK given as base64 (standard or URL alphabet, padded or
// not) of exactly KEKSize bytes; surrounding whitespace is ignored. The
// error never contains the input, which is a secret.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keys: the key-encryption key is empty; generate one with `openssl rand -base64 32`")
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KEKSize {
			return nil, fmt.Errorf("keys: the key-encryption key must be base64 of %d bytes, got %d bytes; generate one with `openssl rand -base64 32`", KEKSize, len(b))
		}
		return b, nil
	}
	return nil, errors.New("keys: the key-encryption key is not valid base64; generate one with `openssl rand -base64 32`")
}

// LoadKEKFile reads a base64 KEK from path (see ParseKEK). It refuses a file
// that group or others may access: a KEK that any local user can read
// protects nothing. A missing file yields an error wrapping fs.ErrNotExist,
// so `--dev` can fall back to GenerateKEKFile.
func LoadKEKFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: open key-encryption key file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the file checked is the file read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: stat key-encryption key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: key-encryption key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; its ACLs are out of our reach here.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keys: key-encryption key file %s is accessible by group or others (mode %04o); run `chmod 600 %s`", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("keys: read key-encryption key file: %w", err)
	}
	kek, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return kek, nil
}

// GenerateKEKFile creates path with mode 0600 and writes a new KEK of
// KEKSize bytes read from r (crypto/rand.Reader if nil), base64-encoded, for
// `latch serve --dev`. It never overwrites: if path exists it fails with an
// error wrapping fs.ErrExist, because replacing a KEK makes every stored
// signing key unreadable.
func GenerateKEKFile(path string, r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	kek := make([]byte, KEKSize)
	if _, err := io.ReadFull(r, kek); err != nil {
		return nil, fmt.Errorf("keys: generate key-encryption key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keys: create key-encryption key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(kek) + "\n")
	if err == nil {
		err = f.Sync() // the KEK must outlive a crash as surely as the keys it seals
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("keys: write key-encryption key file: %w", err)
	}
	return kek, nil
}
