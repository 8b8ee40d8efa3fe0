package throttle

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle_BoundedAndForgetful(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewMemory(Config{Threshold: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour, Entries: 2})
	a, b, c := Key("a"), Key("b"), Key("c")
	for _, k := range [][32]byte{a, b} {
		if !th.fail(k, now) {
			t.Fatal("the threshold-th failure started no back-off")
		}
	}
	if th.blocked(a, now) != time.Second || th.BackingOff(now) != 2 {
		t.Fatal("a is not backing off")
	}
	// A third key evicts the one whose last failure is oldest.
	th.fail(b, now.Add(time.Millisecond))
	th.fail(c, now.Add(2*time.Millisecond))
	if len(th.entries) != 2 || th.quiet.Len()+th.backing.Len() != 2 {
		t.Fatalf("%d entries, want 2", len(th.entries))
	}
	if th.blocked(a, now) != 0 || th.blocked(b, now) == 0 || th.blocked(c, now) == 0 {
		t.Fatal("eviction removed the wrong key")
	}
	// b has 2 failures: 2s from its last one. An hour after it, forgotten.
	if got := th.blocked(b, now.Add(time.Millisecond)); got != 2*time.Second {
		t.Fatalf("b blocked %v, want 2s", got)
	}
	later := now.Add(2*time.Millisecond + time.Hour)
	if th.blocked(b, later) != 0 {
		t.Fatal("failures not forgotten")
	}
	th.fail(c, later)
	if got := th.blocked(c, later); got != time.Second {
		t.Fatalf("after forgetting, the count restarted at %v, want 1s", got)
	}
	// The cap holds however many failures pile up, without overflow.
	for i := range 200 {
		th.fail(a, later.Add(time.Duration(i)))
	}
	if got := th.blocked(a, later.Add(199)); got != time.Minute {
		t.Fatalf("back-off %v, want capped at 1m", got)
	}
}

// A flood of failures on other keys, more than the map holds, must not
// forget a key that is backing off: the flood would otherwise reset the
// victim's back-off for the price of one failure per key.
func TestThrottle_FloodOfOtherKeys_KeepsBackoff(t *testing.T) {
	const entries = 1000
	now := time.Unix(1_000_000, 0)
	th := NewMemory(Config{Threshold: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour, Entries: entries})
	victim := Key("victim")
	for i := range 10 {
		th.fail(victim, now.Add(time.Duration(i)*time.Millisecond))
	}
	before := th.blocked(victim, now.Add(time.Second))
	if before == 0 {
		t.Fatal("the victim is not backing off")
	}
	for i := range 10 * entries {
		th.fail(Key(fmt.Sprintf("other-%d", i)), now.Add(time.Second+time.Duration(i)*time.Microsecond))
	}
	if n := len(th.entries); n > entries {
		t.Fatalf("%d entries, want at most %d", n, entries)
	}
	if got := th.blocked(victim, now.Add(time.Second)); got != before {
		t.Fatalf("after the flood the victim waits %v, want %v", got, before)
	}
	// Its count survives too: the next failure lengthens the back-off.
	th.fail(victim, now.Add(time.Hour))
	if got := th.blocked(victim, now.Add(time.Hour)); got != 64*time.Second {
		t.Fatalf("next back-off %v, want 64s (the 11th failure)", got)
	}
}

// When every key has reached the threshold, the map still stays bounded:
// the one whose last failure is oldest goes, and a key whose failures are
// already forgotten goes before any live one.
func TestThrottle_AllBackingOff_StaysBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewMemory(Config{Threshold: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour, Entries: 3})
	stale, a, b := Key("stale"), Key("a"), Key("b")
	th.fail(stale, now)
	th.fail(a, now.Add(time.Hour-time.Second))
	th.fail(b, now.Add(time.Hour))
	later := now.Add(time.Hour + time.Second)
	th.fail(Key("c"), later)
	if _, ok := th.entries[stale]; ok || len(th.entries) != 3 {
		t.Fatalf("the forgotten key was not evicted first (%d entries)", len(th.entries))
	}
	th.fail(Key("d"), later)
	_, hasA := th.entries[a]
	_, hasB := th.entries[b]
	if hasA || !hasB || len(th.entries) != 3 {
		t.Fatalf("the oldest backing-off key was not the one evicted (%d entries)", len(th.entries))
	}
}
