package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var tokenTests = []test{
	{"Create_RoundTripsEveryField", testTokenRoundTrip},
	{"Create_WithoutFamily_RoundTrips", testTokenNoFamily},
	{"Create_DuplicateHash_IsConflict", testTokenDuplicate},
	{"Get_Missing_IsNotFound", testTokenMissing},
	{"Get_Expired_IsReturned", testTokenExpired},
}

func testTokenRoundTrip(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	access := newToken("app", "at")
	access.RegistrationID = "reg-app"
	refresh := newToken("app", "rt")
	refresh.Kind = latch.KindRefresh
	refresh.ExpiresAt = base.Add(30 * 24 * time.Hour)
	refresh.RotatedAt = base.Add(time.Hour)
	for _, tok := range []*latch.Token{access, refresh} {
		mustCreateToken(t, s, tok)
	}
	for _, tok := range []*latch.Token{access, refresh} {
		got := mustToken(t, s, tok.Hash)
		checkToken(t, tok, got)
		if !got.Active(base) {
			t.Errorf("token %s: Active(base) = false, want true", tok.ID)
		}
	}
}

func testTokenNoFamily(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("svc"))
	tok := newToken("svc", "cc")
	tok.FamilyID = ""
	tok.Audience = nil
	tok.Scope = nil
	mustCreateToken(t, s, tok)
	checkToken(t, tok, mustToken(t, s, tok.Hash))
}

func testTokenDuplicate(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	mustCreateToken(t, s, newToken("app", "at"))
	dup := newToken("app", "at")
	dup.ID, dup.Subject = "tok-other", "mallory"
	wantCode(t, "CreateToken(duplicate hash)", s.CreateToken(ctx(t), dup), latch.ErrConflict)
	checkToken(t, newToken("app", "at"), mustToken(t, s, dup.Hash))
}

func testTokenMissing(t *testing.T, s latch.Store) {
	_, err := s.Token(ctx(t), sum("never issued"))
	wantCode(t, "Token(missing)", err, latch.ErrNotFound)
}

func testTokenExpired(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok := newToken("app", "old")
	tok.IssuedAt = base.Add(-2 * time.Hour)
	tok.ExpiresAt = base.Add(-time.Hour)
	mustCreateToken(t, s, tok)
	got := mustToken(t, s, tok.Hash)
	checkToken(t, tok, got)
	if got.Active(base) {
		t.Errorf("expired token: Active(base) = true, want false")
	}
}
