package latch

import (
	"errors"
	"testing"
)

func TestReusedf_IsConflictAndReused(t *testing.T) {
	err := Reusedf("refresh token %s reused", "x")
	if ErrorCode(err) != ECONFLICT || !errors.Is(err, ErrReused) || !errors.Is(err, ErrConflict) {
		t.Fatalf("Reusedf: code %q, Is(ErrReused) %v", ErrorCode(err), errors.Is(err, ErrReused))
	}
	if errors.Is(Errorf(ECONFLICT, "other"), ErrReused) {
		t.Fatal("a plain conflict must not be ErrReused")
	}
}

func TestSessionSID_StableDistinctAndNotTheHash(t *testing.T) {
	a := &Session{IDHash: []byte("0123456789abcdef0123456789abcdef")}
	b := &Session{IDHash: []byte("0123456789abcdef0123456789abcdeX")}
	if a.SID() != a.SID() || a.SID() == b.SID() || len(a.SID()) != 22 {
		t.Fatalf("SID: %q %q", a.SID(), b.SID())
	}
}
