package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"
)

// Nonces is a NonceChecker (RFC 9449 §9) that keeps no state: a nonce is
// the number of the current period and an HMAC of it under a key, so every
// process holding the same key hands out and accepts the same nonces, and
// a nonce is accepted in the period it was handed out and the next one
// (so between one and two periods). Rotate by replacing the key: nonces
// under the old key are then refused with use_dpop_nonce, and clients
// retry with the new one.
type Nonces struct {
	key    []byte
	period time.Duration
	now    func() time.Time
}

// NewNonces returns Nonces under key (at least 32 bytes, from crypto/rand,
// shared by the processes that must accept each other's nonces), changing
// every period (at least a second), on the clock now (time.Now when nil).
func NewNonces(key []byte, period time.Duration, now func() time.Time) (*Nonces, error) {
	if len(key) < 32 {
		return nil, errors.New("dpop: a nonce key needs at least 32 bytes")
	}
	if period < time.Second {
		return nil, errors.New("dpop: the nonce period must be at least 1s")
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{key: append([]byte(nil), key...), period: period, now: now}, nil
}

func (n *Nonces) at(i uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], i)
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return b64.EncodeToString(b[:])
}

func (n *Nonces) current() uint64 { return uint64(n.now().UnixNano() / int64(n.period)) }

// Nonce implements NonceChecker: the nonce of the current period.
func (n *Nonces) Nonce() string { return n.at(n.current()) }

// Valid implements NonceChecker: the nonce of this period or the last.
func (n *Nonces) Valid(nonce string) bool {
	var b [24]byte
	if len(nonce) != b64.EncodedLen(len(b)) {
		return false
	}
	if k, err := b64.Decode(b[:], []byte(nonce)); err != nil || k != len(b) {
		return false
	}
	i, cur := binary.BigEndian.Uint64(b[:8]), n.current()
	if i != cur && i+1 != cur {
		return false
	}
	return hmac.Equal([]byte(n.at(i)), []byte(nonce))
}
