package bff

import "testing"

func TestOpenedSessions_HitOnlyOnTheSameSealedBytes(t *testing.T) {
	var o openedSessions
	k := [32]byte{1}
	o.put(k, []byte("sealed-1"), session{Subject: "alice"})
	if s, ok := o.get(k, []byte("sealed-1")); !ok || s.Subject != "alice" {
		t.Fatalf("get(same bytes) = %+v, %v; want alice", s, ok)
	}
	// A refresh or another node rewrote the session: open it again.
	if _, ok := o.get(k, []byte("sealed-2")); ok {
		t.Fatal("get(other bytes) hit")
	}
	if _, ok := o.get([32]byte{2}, []byte("sealed-1")); ok {
		t.Fatal("get(other key) hit")
	}
	o.drop(k)
	if _, ok := o.get(k, []byte("sealed-1")); ok {
		t.Fatal("get after drop hit")
	}
}

func TestOpenedSessions_Bounded(t *testing.T) {
	var o openedSessions
	for i := range openedMax + 100 {
		o.put([32]byte{byte(i), byte(i >> 8)}, []byte("x"), session{})
	}
	if n := len(o.m); n != openedMax {
		t.Fatalf("%d entries, want at most %d", n, openedMax)
	}
}
