package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var keyTests = []test{
	{"Create_RoundTripsEveryField", testKeyRoundTrip},
	{"Create_Duplicate_IsConflict", testKeyDuplicate},
	{"List_Empty", testKeysEmpty},
	{"List_OrderedByCreatedAt", testKeysOrdered},
	{"Update_SetsAndClearsRetiredAndRemoved", testKeyUpdate},
	{"Update_Missing_IsNotFound", testKeyUpdateMissing},
}

func testKeyRoundTrip(t *testing.T, s latch.Store) {
	want := newKey("k1", base)
	want.Algorithm = latch.EdDSA
	mustCreateKey(t, s, want)
	ks := mustKeys(t, s)
	if len(ks) != 1 {
		t.Fatalf("Keys = %d keys, want 1", len(ks))
	}
	checkKey(t, want, ks[0])
	if !ks[0].RetiredAt.IsZero() || !ks[0].RemovedAt.IsZero() || ks[0].Purpose != latch.PurposeDefault {
		t.Errorf("unset RetiredAt, RemovedAt, Purpose came back as %v, %v, %q", ks[0].RetiredAt, ks[0].RemovedAt, ks[0].Purpose)
	}

	idt := newKey("k2", base.Add(time.Second))
	idt.Algorithm, idt.Purpose = latch.RS256, latch.PurposeIDToken
	mustCreateKey(t, s, idt)
	checkKey(t, idt, mustKeys(t, s)[1])
	idt.RetiredAt = base.Add(time.Hour)
	mustUpdateKey(t, s, idt)
	checkKey(t, idt, mustKeys(t, s)[1])
}

func testKeyDuplicate(t *testing.T, s latch.Store) {
	mustCreateKey(t, s, newKey("k1", base))
	other := newKey("k1", base.Add(time.Hour))
	other.Public = []byte("another key")
	wantCode(t, "CreateKey(duplicate)", s.CreateKey(ctx(t), other), latch.ErrConflict)
	ks := mustKeys(t, s)
	if len(ks) != 1 {
		t.Fatalf("Keys = %d keys, want 1", len(ks))
	}
	checkKey(t, newKey("k1", base), ks[0])
}

func testKeysEmpty(t *testing.T, s latch.Store) {
	if ks := mustKeys(t, s); len(ks) != 0 {
		t.Errorf("Keys on an empty store = %d keys, want 0", len(ks))
	}
}

func testKeysOrdered(t *testing.T, s latch.Store) {
	// IDs sort the other way round, so ordering by ID would fail.
	want := []*latch.Key{
		newKey("k-c", base.Add(-48*time.Hour)),
		newKey("k-b", base.Add(-24*time.Hour)),
		newKey("k-a", base),
	}
	for _, i := range []int{1, 2, 0} {
		mustCreateKey(t, s, want[i])
	}
	ks := mustKeys(t, s)
	if len(ks) != len(want) {
		t.Fatalf("Keys = %d keys, want %d", len(ks), len(want))
	}
	for i := range want {
		if ks[i].ID != want[i].ID {
			t.Fatalf("Keys[%d] = %s, want %s (ordered by CreatedAt)", i, ks[i].ID, want[i].ID)
		}
		checkKey(t, want[i], ks[i])
	}
}

func testKeyUpdate(t *testing.T, s latch.Store) {
	k := newKey("k1", base)
	mustCreateKey(t, s, k)
	mustCreateKey(t, s, newKey("k2", base.Add(time.Hour)))

	k.RetiredAt = base.Add(24 * time.Hour)
	mustUpdateKey(t, s, k)
	checkKey(t, k, mustKeys(t, s)[0])

	k.RemovedAt = base.Add(25 * time.Hour)
	mustUpdateKey(t, s, k)
	got := mustKeys(t, s)
	checkKey(t, k, got[0])
	checkKey(t, newKey("k2", base.Add(time.Hour)), got[1])

	k.RetiredAt, k.RemovedAt = time.Time{}, time.Time{}
	mustUpdateKey(t, s, k)
	got = mustKeys(t, s)
	checkKey(t, k, got[0])
	if !got[0].RetiredAt.IsZero() || !got[0].RemovedAt.IsZero() {
		t.Errorf("cleared RetiredAt, RemovedAt came back as %v, %v", got[0].RetiredAt, got[0].RemovedAt)
	}
}

func testKeyUpdateMissing(t *testing.T, s latch.Store) {
	wantCode(t, "UpdateKey(missing)", s.UpdateKey(ctx(t), newKey("nope", base)), latch.ErrNotFound)
	if ks := mustKeys(t, s); len(ks) != 0 {
		t.Errorf("UpdateKey(missing) created a key")
	}
}

func mustUpdateKey(tb testing.TB, s latch.Store, k *latch.Key) {
	tb.Helper()
	if err := s.UpdateKey(ctx(tb), k); err != nil {
		tb.Fatalf("UpdateKey(%q): %v", k.ID, err)
	}
}
