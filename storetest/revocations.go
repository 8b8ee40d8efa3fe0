package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var revocationTests = []test{
	{"Revoke_AssignsStrictlyIncreasingSeq", testRevokeSeq},
	{"Revoke_JWTTwice_KeepsOneEntryAndItsSeq", testRevokeJWTIdempotent},
	{"Revoke_Opaque_DeletesTheToken", testRevokeOpaqueDeletes},
	{"Revoke_OpaqueTwice_KeepsOneEntryAndItsSeq", testRevokeOpaqueIdempotent},
	{"Revoke_OpaqueUnknownToken_IsLogged", testRevokeOpaqueUnknown},
	{"Revoke_SameJTIConcurrently_OneEntry", testRevokeConcurrentSame},
	{"IsRevoked_MatchesIssuerAndJTI", testIsRevoked},
	{"IsRevokedOpaque_MatchesTheLoggedHashOnly", testIsRevokedOpaque},
	{"RevocationsSince_RoundTripsEveryField", testRevocationsRoundTrip},
	{"RevocationsSince_PagesWithCursor", testRevocationsPaging},
	{"RevocationsSince_Empty", testRevocationsEmpty},
	{"Seq_NotReusedAfterPurge", testSeqNotReused},
}

func testRevokeSeq(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	var last int64
	for i := range 10 {
		var r *latch.Revocation
		if i%3 == 2 {
			tok := newToken("app", fmt.Sprint("t", i))
			mustCreateToken(t, s, tok)
			r = opaqueRevocation(tok.Hash)
		} else {
			r = jwtRevocation("https://issuer.example", fmt.Sprint("jti-", i))
		}
		seq := mustRevoke(t, s, r)
		if seq <= last {
			t.Fatalf("revocation %d: Seq = %d after %d, want strictly increasing", i, seq, last)
		}
		last = seq
	}
}

func testRevokeJWTIdempotent(t *testing.T, s latch.Store) {
	first := mustRevoke(t, s, jwtRevocation("https://issuer.example", "jti-1"))
	mustRevoke(t, s, jwtRevocation("https://issuer.example", "jti-2"))

	again := jwtRevocation("https://issuer.example", "jti-1")
	again.RevokedAt = base.Add(time.Hour)
	if seq := mustRevoke(t, s, again); seq != first {
		t.Errorf("revoking (iss, jti) again: Seq = %d, want the existing %d", seq, first)
	}
	if again.Created {
		t.Errorf("revoking (iss, jti) again: Created = true, want false")
	}
	rs := mustRevocationsSince(t, s, 0, 100)
	if len(rs) != 2 {
		t.Fatalf("feed has %d entries after revoking one jti twice, want 2", len(rs))
	}
	want := jwtRevocation("https://issuer.example", "jti-1")
	want.Seq = first
	checkRevocation(t, want, rs[0])
	fresh := jwtRevocation("https://issuer.example", "jti-3")
	mustRevoke(t, s, fresh)
	if !fresh.Created {
		t.Errorf("a new revocation: Created = false, want true")
	}
}

func testRevokeOpaqueDeletes(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok, keep := newToken("app", "rt"), newToken("app", "keep")
	mustCreateToken(t, s, tok)
	mustCreateToken(t, s, keep)

	mustRevoke(t, s, opaqueRevocation(tok.Hash))
	_, err := s.Token(ctx(t), tok.Hash)
	wantCode(t, "Token after Revoke(opaque)", err, latch.ErrNotFound)
	checkToken(t, keep, mustToken(t, s, keep.Hash))
	if mustIsRevoked(t, s, "", "") {
		t.Errorf("an opaque revocation made IsRevoked(\"\", \"\") true")
	}
}

func testRevokeOpaqueIdempotent(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok := newToken("app", "rt")
	mustCreateToken(t, s, tok)
	first := mustRevoke(t, s, opaqueRevocation(tok.Hash))
	mustRevoke(t, s, jwtRevocation("https://issuer.example", "between"))
	if seq := mustRevoke(t, s, opaqueRevocation(tok.Hash)); seq != first {
		t.Errorf("revoking an opaque token again: Seq = %d, want the existing %d", seq, first)
	}
	rs := mustRevocationsSince(t, s, 0, 100)
	if len(rs) != 2 {
		t.Fatalf("feed has %d entries after revoking one token twice, want 2", len(rs))
	}
	want := opaqueRevocation(tok.Hash)
	want.Seq = first
	checkRevocation(t, want, rs[0])
}

// An opaque revocation of a hash the store does not hold (already purged,
// or revoked on another node) still reaches the feed, so caches drop it.
func testRevokeOpaqueUnknown(t *testing.T, s latch.Store) {
	r := opaqueRevocation(sum("not stored"))
	seq := mustRevoke(t, s, r)
	rs := mustRevocationsSince(t, s, 0, 10)
	if len(rs) != 1 || rs[0].Seq != seq {
		t.Fatalf("feed = %d entries, want the one with Seq %d", len(rs), seq)
	}
}

func testRevokeConcurrentSame(t *testing.T, s latch.Store) {
	const n = 16
	seqs := make([]int64, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := jwtRevocation("https://issuer.example", "raced")
			if err := s.Revoke(ctx(t), r); err != nil {
				t.Errorf("Revoke #%d: %v", i, err)
			}
			seqs[i], created[i] = r.Seq, r.Created
		})
	}
	wg.Wait()
	winners := 0
	for _, c := range created {
		if c {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d of %d concurrent revokes of one jti saw Created, want exactly 1 (single-use checks depend on it)", winners, n)
	}
	for i, seq := range seqs {
		if seq != seqs[0] || seq <= 0 {
			t.Fatalf("concurrent revokes of one jti got Seqs %v, want one value > 0 (#%d differs)", seqs, i)
		}
	}
	if rs := mustRevocationsSince(t, s, 0, 100); len(rs) != 1 {
		t.Errorf("feed has %d entries after %d concurrent revokes of one jti, want 1", len(rs), n)
	}
}

func testIsRevoked(t *testing.T, s latch.Store) {
	mustRevoke(t, s, jwtRevocation("https://a.example", "jti-1"))
	for _, tc := range []struct {
		issuer, jti string
		want        bool
	}{
		{"https://a.example", "jti-1", true},
		{"https://a.example", "jti-2", false},
		{"https://b.example", "jti-1", false}, // the denylist key is (iss, jti), not jti
		{"https://a.example/", "jti-1", false},
		{"", "", false},
	} {
		if got := mustIsRevoked(t, s, tc.issuer, tc.jti); got != tc.want {
			t.Errorf("IsRevoked(%q, %q) = %v, want %v", tc.issuer, tc.jti, got, tc.want)
		}
	}
}

// IsRevokedOpaque tells a revoked opaque token from one never issued (both
// are not found by Token), and does not confuse it with a JWT entry.
func testIsRevokedOpaque(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok, live := newToken("app", "revoked"), newToken("app", "live")
	mustCreateToken(t, s, tok)
	mustCreateToken(t, s, live)
	mustRevoke(t, s, opaqueRevocation(tok.Hash))
	mustRevoke(t, s, jwtRevocation("https://issuer.example", "jti-1"))
	for _, tc := range []struct {
		name string
		hash []byte
		want bool
	}{
		{"the revoked token", tok.Hash, true},
		{"a live token", live.Hash, false},
		{"a token never issued", sum("never"), false},
		{"an empty hash", nil, false},
	} {
		got, err := s.IsRevokedOpaque(ctx(t), tc.hash)
		if err != nil {
			t.Fatalf("IsRevokedOpaque(%s): %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("IsRevokedOpaque(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testRevocationsRoundTrip(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok := newToken("app", "rt")
	mustCreateToken(t, s, tok)
	want := []*latch.Revocation{
		jwtRevocation("https://issuer.example", "jti-1"),
		opaqueRevocation(tok.Hash),
	}
	want[1].ExpiresAt = base.Add(30 * 24 * time.Hour)
	for _, r := range want {
		mustRevoke(t, s, r)
	}
	got := mustRevocationsSince(t, s, 0, 10)
	if len(got) != len(want) {
		t.Fatalf("RevocationsSince(0, 10) = %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		checkRevocation(t, want[i], got[i])
	}
}

func testRevocationsPaging(t *testing.T, s latch.Store) {
	var seqs []int64
	for i := range 10 {
		seqs = append(seqs, mustRevoke(t, s, jwtRevocation("https://issuer.example", fmt.Sprint("jti-", i))))
	}
	var got []int64
	after := int64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging did not end; got %v", got)
		}
		page := mustRevocationsSince(t, s, after, 3)
		if len(page) > 3 {
			t.Fatalf("RevocationsSince(%d, 3) = %d entries, want at most 3", after, len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if r.Seq <= after {
				t.Fatalf("RevocationsSince(%d, 3) returned Seq %d", after, r.Seq)
			}
			got = append(got, r.Seq)
			after = r.Seq
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Errorf("paged Seqs = %v, want %v", got, seqs)
	}
	mid := mustRevocationsSince(t, s, seqs[4], 2)
	if len(mid) != 2 || mid[0].Seq != seqs[5] || mid[1].Seq != seqs[6] {
		t.Errorf("RevocationsSince(%d, 2) = %v, want Seqs %v", seqs[4], seqsOf(mid), seqs[5:7])
	}
	if mid[0].JTI != "jti-5" {
		t.Errorf("RevocationsSince(%d, 2)[0].JTI = %q, want jti-5", seqs[4], mid[0].JTI)
	}
}

func testRevocationsEmpty(t *testing.T, s latch.Store) {
	if rs := mustRevocationsSince(t, s, 0, 10); len(rs) != 0 {
		t.Errorf("RevocationsSince on an empty store = %v, want none", seqsOf(rs))
	}
	seq := mustRevoke(t, s, jwtRevocation("https://issuer.example", "only"))
	if rs := mustRevocationsSince(t, s, seq, 10); len(rs) != 0 {
		t.Errorf("RevocationsSince(last) = %v, want none", seqsOf(rs))
	}
}

// A follower's cursor is the last Seq it saw; if a purged Seq were handed
// out again, the follower would skip the new entry.
func testSeqNotReused(t *testing.T, s latch.Store) {
	r := jwtRevocation("https://issuer.example", "short-lived")
	r.ExpiresAt = base.Add(-time.Minute)
	old := mustRevoke(t, s, r)
	if n := mustPurgeExpired(t, s, base); n != 1 {
		t.Fatalf("PurgeExpired = %d, want 1", n)
	}
	if seq := mustRevoke(t, s, jwtRevocation("https://issuer.example", "next")); seq <= old {
		t.Errorf("Seq after purging %d = %d, want greater", old, seq)
	}
}

func seqsOf(rs []*latch.Revocation) []int64 {
	var seqs []int64
	for _, r := range rs {
		seqs = append(seqs, r.Seq)
	}
	return seqs
}
