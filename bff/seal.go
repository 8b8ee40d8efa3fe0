package bff

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size of Config.Key: AES-256.
const KeySize = 32

// Record kinds, bound into each record's key derivation and AAD so that a
// sealed session can never be opened as a pending login or the reverse.
const (
	kindSession = "session"
	kindLogin   = "login"
)

// sealer encrypts the BFF's records at rest with AES-256-GCM.
//
// Each record is sealed under its own key, HKDF-SHA256(Key, info = kind ||
// record key), with a random 96-bit nonce, and the record key as AAD. The
// per-record key is what keeps random nonces safe: a session is resealed on
// every refresh, and a busy BFF under one GCM key would reach the 2^32
// random-nonce bound of NIST SP 800-38D §8.3 within weeks, while one
// session's key seals a few hundred times in its life. The AAD binds the
// ciphertext to its row: a sealed record copied under another key (another
// cookie) does not open.
type sealer struct {
	prk []byte // HKDF-Extract(Key)
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("bff: Key must be %d bytes (AES-256), got %d; generate one with `openssl rand -base64 32`", KeySize, len(key))
	}
	prk, err := hkdf.Extract(sha256.New, key, []byte("latch bff v1"))
	if err != nil {
		return nil, fmt.Errorf("bff: derive record keys: %w", err)
	}
	return &sealer{prk: prk}, nil
}

func (s *sealer) aead(kind string, recordKey []byte) (cipher.AEAD, error) {
	k, err := hkdf.Expand(sha256.New, s.prk, kind+"\x00"+string(recordKey), KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext for the record of kind under recordKey and
// returns nonce || ciphertext || tag.
func (s *sealer) seal(kind string, recordKey, plaintext []byte) ([]byte, error) {
	a, err := s.aead(kind, recordKey)
	if err != nil {
		return nil, fmt.Errorf("bff: seal: %w", err)
	}
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	// Nonces always come from crypto/rand, never from Config.Rand: a
	// repeated nonce under one GCM key leaks its authentication key.
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("bff: seal: read nonce: %w", err)
	}
	return a.Seal(nonce, nonce, plaintext, aad(kind, recordKey)), nil
}

// errUnseal is every failure to open a record: GCM cannot tell a changed
// Key from altered bytes or a record moved to another key.
var errUnseal = errors.New("bff: cannot open a stored record: it was sealed under another Key (was the key file replaced?) or altered")

// open decrypts what seal returned for the same kind and recordKey.
func (s *sealer) open(kind string, recordKey, sealed []byte) ([]byte, error) {
	a, err := s.aead(kind, recordKey)
	if err != nil {
		return nil, fmt.Errorf("bff: open: %w", err)
	}
	ns := a.NonceSize()
	if len(sealed) < ns+a.Overhead() {
		return nil, errUnseal
	}
	plain, err := a.Open(nil, sealed[:ns], sealed[ns:], aad(kind, recordKey))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}

func aad(kind string, recordKey []byte) []byte {
	return append([]byte("latch bff "+kind+"\x00"), recordKey...)
}
