package authority

import (
	"bytes"
	"testing"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// TestSuccessorOf_OnePerParentFamilyAndKey: the successor of a refresh
// token is a well-formed refresh token, the same every time it is derived
// with the same key (another node, a retry), and another one for another
// parent, family or key.
func TestSuccessorOf_OnePerParentFamilyAndKey(t *testing.T) {
	key, otherKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	parent, err := token.NewOpaque(latch.KindRefresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherParent, err := token.NewOpaque(latch.KindRefresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustSuccessor := func(key []byte, parent, family string) string {
		t.Helper()
		s, err := successorOf(key, parent, family)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := mustSuccessor(key, parent, "fam")
	if kind, err := token.ParseOpaque(s); err != nil || kind != latch.KindRefresh {
		t.Fatalf("successor %q: kind %q, %v; want a refresh token", s, kind, err)
	}
	if again := mustSuccessor(append([]byte(nil), key...), parent, "fam"); again != s {
		t.Errorf("derived twice: %q and %q", s, again)
	}
	for name, other := range map[string]string{
		"other parent": mustSuccessor(key, otherParent, "fam"),
		"other family": mustSuccessor(key, parent, "fam2"),
		"other key":    mustSuccessor(otherKey, parent, "fam"),
	} {
		if other == s || other == parent {
			t.Errorf("%s: same successor %q", name, other)
		}
	}
}
