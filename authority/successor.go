package authority

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// SuccessorKeyPurpose names the key, derived from the key-encryption key
// (keys.Manager.DeriveKey), under which refresh successors are derived.
// Every node sharing a store shares the KEK, so every node derives the same
// successor for a token.
const SuccessorKeyPurpose = "refresh successor v1"

// successorOf returns the refresh token that replaces parent, a refresh
// token of family familyID, when parent is rotated: an opaque token whose
// 256-bit body is HMAC-SHA256(key, parent || 0 || familyID).
//
// Deriving the successor instead of drawing it at random makes every use
// of parent within the grace window (two tabs, a retry after a lost
// response, or a thief's replay) get the same successor, so the family
// never forks into two live chains: whoever uses the successor second,
// after its own window, is a reuse and revokes the family (RFC 9700
// §4.14.2). The store keeps only the successor's hash, as for any token.
//
// The key is what keeps this safe: without it, anyone holding parent
// could compute its successor offline instead of presenting parent, where
// the reuse rules apply. parent itself, not its stored hash, is the input,
// so that a copy of the database together with the KEK still yields no
// successor of a live token.
func successorOf(key []byte, parent, familyID string) (string, error) {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parent))
	mac.Write([]byte{0})
	mac.Write([]byte(familyID))
	return token.NewOpaque(latch.KindRefresh, bytes.NewReader(mac.Sum(nil)))
}
