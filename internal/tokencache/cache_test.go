package tokencache

import (
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCache_ServesUntilDeadlineOnly(t *testing.T) {
	c := New[string](10)
	k := [32]byte{1}
	c.Put(&k, "v", t0.Add(time.Minute), t0, c.Generation())
	if v, ok := c.Get(&k, t0.Add(59*time.Second)); !ok || v != "v" {
		t.Fatalf("before the deadline: %q %v", v, ok)
	}
	if _, ok := c.Get(&k, t0.Add(time.Minute)); ok {
		t.Fatal("served at its deadline")
	}
	c.Put(&k, "late", t0, t0, c.Generation())
	if v, _ := c.Get(&k, t0.Add(time.Second)); v == "late" {
		t.Fatal("stored a value whose deadline had already passed")
	}
}

// TestCache_WorkStartedBeforeARevocationIsNotStored: an answer computed
// before Drop or Flush must not land in the cache after it.
func TestCache_WorkStartedBeforeARevocationIsNotStored(t *testing.T) {
	for name, revoke := range map[string]func(*Cache[string]){
		"drop":  func(c *Cache[string]) { c.Drop(&[32]byte{9}) },
		"flush": func(c *Cache[string]) { c.Flush() },
	} {
		c := New[string](10)
		k := [32]byte{1}
		gen := c.Generation()
		revoke(c)
		c.Put(&k, "stale", t0.Add(time.Minute), t0, gen)
		if _, ok := c.Get(&k, t0); ok {
			t.Errorf("%s: an answer from before the revocation was stored", name)
		}
	}
}

func TestCache_BoundedAndDisabled(t *testing.T) {
	c := New[int](8)
	for i := range 100 {
		c.Put(&[32]byte{byte(i)}, i, t0.Add(time.Minute), t0, c.Generation())
	}
	if n := c.Len(); n > 8 {
		t.Fatalf("%d entries in a cache of 8", n)
	}
	off := New[int](0)
	off.Put(&[32]byte{1}, 1, t0.Add(time.Minute), t0, off.Generation())
	if off.Len() != 0 {
		t.Fatal("a cache of size 0 stored something")
	}
}
