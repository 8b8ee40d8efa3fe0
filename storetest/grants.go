package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var grantTests = []test{
	{"CreateCode_RoundTripsEveryField", testCodeRoundTrip},
	{"CreateCode_Duplicate_IsConflict", testCodeDuplicate},
	{"Code_Missing_IsNotFound", testCodeMissing},
	{"RedeemCode_Once_MarksUsedStoresFamilyWritesIssue", testRedeemOnce},
	{"RedeemCode_Twice_IsReusedAndRevokesFamily", testRedeemTwice},
	{"RedeemCode_Expired_IsUnauthorized", testRedeemExpired},
	{"RedeemCode_Missing_IsNotFound", testRedeemMissing},
	{"RedeemCode_IssueConflict_RollsBack", testRedeemConflict},
	{"RedeemCode_OtherFamily_FailsAndWritesNothing", testRedeemOtherFamily},
	{"Family_Missing_IsNotFound", testFamilyMissing},
	{"CreateFamily_StoresFamilyAndIssue_ConflictRollsBack", testCreateFamily},
	{"RotateRefresh_First_WritesIssueAndSetsRotatedAt", testRotateFirst},
	{"RotateRefresh_WithinGrace_SameSuccessorWrittenOnce", testRotateWithinGrace},
	{"RotateRefresh_WithinGrace_OtherSuccessor_IsUnauthorizedWritesNothing", testRotateWithinGraceOtherSuccessor},
	{"RotateRefresh_AfterGrace_IsReusedAndRevokesFamily", testRotateAfterGrace},
	{"RotateRefresh_ExpiredTokenOrFamily_IsUnauthorized", testRotateExpired},
	{"RotateRefresh_RevokedFamily_IsRefused", testRotateRevoked},
	{"RotateRefresh_MissingOrAccessToken_IsNotFound", testRotateMissing},
	{"RefreshChain_ReadsTokenFamilyUser_WhateverTheirState", testRefreshChain},
	{"RotateRefresh_IssueConflict_RollsBack", testRotateConflict},
	{"RevokeFamily_DeletesTokensDenylistsJWTs_Idempotent", testRevokeFamily},
	{"RevokeFamily_Missing_IsNotFound", testRevokeFamilyMissing},
	{"RevokeFamilies_ByUser_RevokesOnlyTheUsers", testRevokeFamiliesByUser},
	{"RevokeFamilies_BySession_RevokesOnlyTheSessions", testRevokeFamiliesBySession},
	{"RevokeFamilies_NotExactlyOneField_IsInvalid", testRevokeFamiliesInvalid},
	{"RevokeFamilies_DeletesUnredeemedCodesOfTheUserOrSession", testRevokeFamiliesDeletesCodes},
	{"RedeemCode_UsedThenExpired_IsStillReused", testRedeemUsedThenExpired},
	{"DeleteClientOrUser_RemovesCodesAndFamilies", testGrantDeleteCascade},
	{"PurgeExpired_RemovesExpiredCodesFamiliesJWTs", testPurgeGrants},
	{"RotateRefresh_32Concurrent_NoGrace_OneWinsFamilyRevoked", testRotateConcurrentNoGrace},
	{"RotateRefresh_32Concurrent_WithinGrace_AllSucceedOneChainLives", testRotateConcurrentGrace},
	{"RedeemCode_ReplayAfterCodePurgeHorizon_RevokesFamily", testRedeemReplayAfterPurge},
}

// errUnauthorized and errInvalid match any latch error with their code.
var (
	errUnauthorized = &latch.Error{Code: latch.EUNAUTHORIZED}
	errInvalid      = &latch.Error{Code: latch.EINVALID}
)

const issuer = "https://issuer.example"

// grace is the rotation grace window the tests use unless they test it.
const grace = 10 * time.Second

// grantSetup creates client "app" and users "u1" and "u2".
func grantSetup(tb testing.TB, s latch.Store) {
	tb.Helper()
	mustCreateClient(tb, s, newClient("app"))
	mustCreateUser(tb, s, newUser("u1", "alice"))
	mustCreateUser(tb, s, newUser("u2", "bob"))
}

// newCode returns a code of client "app" and userID, issued at base and
// valid for a minute, starting family "fam-"+name.
func newCode(userID, name string) *latch.AuthCode {
	return &latch.AuthCode{
		Hash:          sum("code " + name),
		ClientID:      "app",
		UserID:        userID,
		SessionID:     "sid-" + name,
		RedirectURI:   "https://app.example.com/callback?a=1&b=2",
		Scope:         []string{"openid", "read", "ünïcødé"},
		Audience:      []string{"https://api.example.com", "urn:example:other"},
		Nonce:         "n-0S6_WzA2Mj",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		DPoPJKT:       "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		AuthTime:      base.Add(-time.Hour),
		FamilyID:      "fam-" + name,
		IssuedAt:      base.Add(-10 * time.Second),
		ExpiresAt:     base.Add(50 * time.Second),
	}
}

// familyOf returns the family redeeming c starts: created at base, for 30 days.
func familyOf(c *latch.AuthCode) *latch.Family {
	return &latch.Family{
		ID:        c.FamilyID,
		ClientID:  c.ClientID,
		UserID:    c.UserID,
		SessionID: c.SessionID,
		Scope:     c.Scope,
		Audience:  c.Audience,
		AuthTime:  c.AuthTime,
		CreatedAt: base,
		ExpiresAt: base.Add(30 * 24 * time.Hour),
	}
}

// refreshOf returns a refresh token of family f, valid for a week from base.
func refreshOf(f *latch.Family, name string) *latch.Token {
	return &latch.Token{
		Hash:      sum("refresh " + name),
		Kind:      latch.KindRefresh,
		ID:        "rt-" + name,
		ClientID:  f.ClientID,
		Subject:   f.UserID,
		Scope:     f.Scope,
		Audience:  f.Audience,
		FamilyID:  f.ID,
		IssuedAt:  base,
		ExpiresAt: base.Add(7 * 24 * time.Hour),
	}
}

// accessOf returns an opaque access token of family f, valid for 10 minutes from base.
func accessOf(f *latch.Family, name string) *latch.Token {
	t := refreshOf(f, name)
	t.Hash, t.Kind, t.ID = sum("access "+name), latch.KindAccess, "at-"+name
	t.ExpiresAt = base.Add(10 * time.Minute)
	return t
}

func jwtOf(name string) *latch.IssuedJWT {
	return &latch.IssuedJWT{Issuer: issuer, JTI: "jti-" + name, ExpiresAt: base.Add(10 * time.Minute)}
}

// opaqueIssue is a refresh token and an opaque access token named name.
func opaqueIssue(f *latch.Family, name string) latch.Issue {
	return latch.Issue{Refresh: refreshOf(f, name), Access: accessOf(f, name)}
}

// jwtIssue is a refresh token and a JWT access token named name.
func jwtIssue(f *latch.Family, name string) latch.Issue {
	return latch.Issue{Refresh: refreshOf(f, name), JWT: jwtOf(name)}
}

func mustCreateCode(tb testing.TB, s latch.Store, c *latch.AuthCode) {
	tb.Helper()
	if err := s.CreateCode(ctx(tb), c); err != nil {
		tb.Fatalf("CreateCode(%s): %v", c.FamilyID, err)
	}
}

func mustCode(tb testing.TB, s latch.Store, hash []byte) *latch.AuthCode {
	tb.Helper()
	c, err := s.Code(ctx(tb), hash)
	if err != nil {
		tb.Fatalf("Code(%x): %v", hash[:4], err)
	}
	return c
}

func mustFamily(tb testing.TB, s latch.Store, id string) *latch.Family {
	tb.Helper()
	f, err := s.Family(ctx(tb), id)
	if err != nil {
		tb.Fatalf("Family(%q): %v", id, err)
	}
	return f
}

// mustRedeem creates a code of userID named name and redeems it at base
// with issue(family, name), and returns the family.
func mustRedeem(tb testing.TB, s latch.Store, userID, name string, issue func(*latch.Family, string) latch.Issue) *latch.Family {
	tb.Helper()
	c := newCode(userID, name)
	mustCreateCode(tb, s, c)
	f := familyOf(c)
	if err := s.RedeemCode(ctx(tb), c.Hash, base, f, issue(f, name)); err != nil {
		tb.Fatalf("RedeemCode(%s): %v", name, err)
	}
	return f
}

func mustRotate(tb testing.TB, s latch.Store, hash []byte, now time.Time, grace time.Duration, issue latch.Issue) (*latch.Token, *latch.Family) {
	tb.Helper()
	tok, f, err := s.RotateRefresh(ctx(tb), hash, now, grace, issue)
	if err != nil {
		tb.Fatalf("RotateRefresh(%x) at %v: %v", hash[:4], now, err)
	}
	return tok, f
}

// wantReused fails unless err is the reuse error: ECONFLICT and ErrReused.
func wantReused(tb testing.TB, op string, err error) {
	tb.Helper()
	if !errors.Is(err, latch.ErrReused) || !errors.Is(err, latch.ErrConflict) {
		tb.Fatalf("%s: err = %v (code %q), want ErrReused with code %q", op, err, latch.ErrorCode(err), latch.ECONFLICT)
	}
}

// wantGone fails unless every token is gone.
func wantGone(tb testing.TB, s latch.Store, op string, toks ...*latch.Token) {
	tb.Helper()
	for _, tok := range toks {
		_, err := s.Token(ctx(tb), tok.Hash)
		wantCode(tb, fmt.Sprintf("Token(%s) %s", tok.ID, op), err, latch.ErrNotFound)
	}
}

// wantLive fails unless every token is stored as written.
func wantLive(tb testing.TB, s latch.Store, toks ...*latch.Token) {
	tb.Helper()
	for _, tok := range toks {
		checkToken(tb, tok, mustToken(tb, s, tok.Hash))
	}
}

// wantRevokedAt fails unless the family is revoked at at.
func wantRevokedAt(tb testing.TB, s latch.Store, id string, at time.Time) {
	tb.Helper()
	var d diff
	d.time("RevokedAt", at, mustFamily(tb, s, id).RevokedAt)
	d.check(tb, "family "+id)
}

// wantFamilyLive fails unless the family is stored unrevoked.
func wantFamilyLive(tb testing.TB, s latch.Store, id string) {
	tb.Helper()
	if at := mustFamily(tb, s, id).RevokedAt; !at.IsZero() {
		tb.Errorf("family %s: RevokedAt = %v, want zero", id, at)
	}
}

// feed is the revocation log by key: opaque entries by token hash, JWT
// entries by jti (all of issuer).
type feed struct {
	opaque map[string]*latch.Revocation
	jwt    map[string]*latch.Revocation
	n      int
}

func mustFeed(tb testing.TB, s latch.Store) feed {
	tb.Helper()
	f := feed{opaque: map[string]*latch.Revocation{}, jwt: map[string]*latch.Revocation{}}
	for _, r := range mustRevocationsSince(tb, s, 0, 1000) {
		f.n++
		switch r.Kind {
		case latch.RevokeOpaque:
			f.opaque[string(r.TokenHash)] = r
		case latch.RevokeJWT:
			if r.Issuer == issuer {
				f.jwt[r.JTI] = r
			}
		}
	}
	return f
}

// wantOpaqueLogged fails unless each token has a RevokeOpaque entry revoked at at.
func (f feed) wantOpaqueLogged(tb testing.TB, at time.Time, toks ...*latch.Token) {
	tb.Helper()
	for _, tok := range toks {
		r := f.opaque[string(tok.Hash)]
		if r == nil {
			tb.Errorf("token %s: no RevokeOpaque entry in the revocation log", tok.ID)
			continue
		}
		var d diff
		d.time("ExpiresAt", tok.ExpiresAt, r.ExpiresAt)
		d.time("RevokedAt", at, r.RevokedAt)
		d.check(tb, "RevokeOpaque entry of "+tok.ID)
	}
}

// wantJWTDenylisted fails unless each JWT is denylisted, with an entry revoked at at.
func (f feed) wantJWTDenylisted(tb testing.TB, s latch.Store, at time.Time, jwts ...*latch.IssuedJWT) {
	tb.Helper()
	for _, j := range jwts {
		if !mustIsRevoked(tb, s, j.Issuer, j.JTI) {
			tb.Errorf("JWT %s: IsRevoked = false, want true", j.JTI)
		}
		r := f.jwt[j.JTI]
		if r == nil {
			tb.Errorf("JWT %s: no RevokeJWT entry in the revocation log", j.JTI)
			continue
		}
		var d diff
		d.time("ExpiresAt", j.ExpiresAt, r.ExpiresAt)
		d.time("RevokedAt", at, r.RevokedAt)
		d.check(tb, "RevokeJWT entry of "+j.JTI)
	}
}

func checkCode(tb testing.TB, want, got *latch.AuthCode) {
	tb.Helper()
	var d diff
	d.bytes("Hash", want.Hash, got.Hash)
	d.str("ClientID", want.ClientID, got.ClientID)
	d.str("UserID", want.UserID, got.UserID)
	d.str("SessionID", want.SessionID, got.SessionID)
	d.str("RedirectURI", want.RedirectURI, got.RedirectURI)
	d.list("Scope", want.Scope, got.Scope)
	d.list("Audience", want.Audience, got.Audience)
	d.str("Nonce", want.Nonce, got.Nonce)
	d.str("CodeChallenge", want.CodeChallenge, got.CodeChallenge)
	d.str("DPoPJKT", want.DPoPJKT, got.DPoPJKT)
	d.time("AuthTime", want.AuthTime, got.AuthTime)
	d.str("FamilyID", want.FamilyID, got.FamilyID)
	d.time("IssuedAt", want.IssuedAt, got.IssuedAt)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.time("UsedAt", want.UsedAt, got.UsedAt)
	d.check(tb, "code "+want.FamilyID)
}

func checkFamily(tb testing.TB, want, got *latch.Family) {
	tb.Helper()
	var d diff
	d.str("ID", want.ID, got.ID)
	d.str("ClientID", want.ClientID, got.ClientID)
	d.str("UserID", want.UserID, got.UserID)
	d.str("SessionID", want.SessionID, got.SessionID)
	d.list("Scope", want.Scope, got.Scope)
	d.list("Audience", want.Audience, got.Audience)
	d.time("AuthTime", want.AuthTime, got.AuthTime)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.time("RevokedAt", want.RevokedAt, got.RevokedAt)
	d.check(tb, "family "+want.ID)
}

func testCodeRoundTrip(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	want := newCode("u1", "c1")
	mustCreateCode(t, s, want)
	checkCode(t, want, mustCode(t, s, want.Hash))

	// Empty optional fields round-trip too.
	bare := newCode("u1", "bare")
	bare.SessionID, bare.Nonce, bare.Scope, bare.Audience = "", "", nil, nil
	mustCreateCode(t, s, bare)
	checkCode(t, bare, mustCode(t, s, bare.Hash))
}

func testCodeDuplicate(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	mustCreateCode(t, s, newCode("u1", "c1"))
	dup := newCode("u2", "c1")
	wantCode(t, "CreateCode(duplicate)", s.CreateCode(ctx(t), dup), latch.ErrConflict)
	checkCode(t, newCode("u1", "c1"), mustCode(t, s, dup.Hash))
}

func testCodeMissing(t *testing.T, s latch.Store) {
	_, err := s.Code(ctx(t), sum("never issued"))
	wantCode(t, "Code(missing)", err, latch.ErrNotFound)
}

func testRedeemOnce(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	issue := opaqueIssue(f, "c1")
	now := base.Add(5 * time.Second)
	if err := s.RedeemCode(ctx(t), c.Hash, now, f, issue); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	used := *c
	used.UsedAt = now
	used.ExpiresAt = f.ExpiresAt // kept while its family can be revoked
	checkCode(t, &used, mustCode(t, s, c.Hash))
	checkFamily(t, f, mustFamily(t, s, f.ID))
	wantLive(t, s, issue.Refresh, issue.Access)

	// A JWT issue is recorded: revoking the family denylists it.
	c2 := newCode("u1", "c2")
	mustCreateCode(t, s, c2)
	f2 := familyOf(c2)
	f2.SessionID = "" // a family no login session started
	if err := s.RedeemCode(ctx(t), c2.Hash, now, f2, jwtIssue(f2, "c2")); err != nil {
		t.Fatalf("RedeemCode(JWT issue): %v", err)
	}
	checkFamily(t, f2, mustFamily(t, s, f2.ID))
	if mustIsRevoked(t, s, issuer, "jti-c2") {
		t.Fatal("JWT of a live family is denylisted")
	}
	if err := s.RevokeFamily(ctx(t), f2.ID, now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	mustFeed(t, s).wantJWTDenylisted(t, s, now, jwtOf("c2"))
}

func testRedeemTwice(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	first := jwtIssue(f, "c1")
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, first); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	// The family grows: a rotation adds a refresh and an opaque access token.
	second := opaqueIssue(f, "c1-2")
	mustRotate(t, s, first.Refresh.Hash, base.Add(time.Second), grace, second)
	other := mustRedeem(t, s, "u1", "other", opaqueIssue)

	// The attacker replays the code.
	now := base.Add(2 * time.Second)
	err := s.RedeemCode(ctx(t), c.Hash, now, familyOf(c), opaqueIssue(f, "attacker"))
	wantReused(t, "RedeemCode(used code)", err)
	wantRevokedAt(t, s, f.ID, now)
	wantGone(t, s, "after the code's reuse", first.Refresh, second.Refresh, second.Access)
	wantGone(t, s, "of the refused redemption", opaqueIssue(f, "attacker").Refresh, opaqueIssue(f, "attacker").Access)
	fd := mustFeed(t, s)
	fd.wantOpaqueLogged(t, now, first.Refresh, second.Refresh, second.Access)
	fd.wantJWTDenylisted(t, s, now, first.JWT)
	// Another family is untouched.
	wantFamilyLive(t, s, other.ID)
	wantLive(t, s, opaqueIssue(other, "other").Refresh, opaqueIssue(other, "other").Access)
	if _, ok := fd.opaque[string(opaqueIssue(other, "other").Refresh.Hash)]; ok {
		t.Error("a token of another family was logged as revoked")
	}

	// A third use is refused the same way, and the revocation stands.
	err = s.RedeemCode(ctx(t), c.Hash, now.Add(time.Second), familyOf(c), opaqueIssue(f, "attacker"))
	wantReused(t, "RedeemCode(used code, again)", err)
	if !mustFamily(t, s, f.ID).RevokedAt.Before(now.Add(time.Second)) {
		t.Error("family's RevokedAt moved on a second revocation")
	}
	if got := mustFeed(t, s).n; got != fd.n {
		t.Errorf("a second revocation appended %d log entries, want 0", got-fd.n)
	}
}

func testRedeemExpired(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	issue := opaqueIssue(f, "c1")
	err := s.RedeemCode(ctx(t), c.Hash, c.ExpiresAt, f, issue) // expired at ExpiresAt
	wantCode(t, "RedeemCode(expired)", err, errUnauthorized)
	checkCode(t, c, mustCode(t, s, c.Hash))
	_, err = s.Family(ctx(t), f.ID)
	wantCode(t, "Family after an expired redemption", err, latch.ErrNotFound)
	wantGone(t, s, "after an expired redemption", issue.Refresh, issue.Access)
}

func testRedeemMissing(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	f := familyOf(c)
	err := s.RedeemCode(ctx(t), c.Hash, base, f, opaqueIssue(f, "c1"))
	wantCode(t, "RedeemCode(missing)", err, latch.ErrNotFound)
	_, err = s.Family(ctx(t), f.ID)
	wantCode(t, "Family after redeeming a missing code", err, latch.ErrNotFound)
}

func testRedeemConflict(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	issue := opaqueIssue(f, "c1")
	// The access token's hash is taken: the whole redemption must roll back.
	taken := newToken("app", "taken")
	taken.Hash = issue.Access.Hash
	mustCreateToken(t, s, taken)
	err := s.RedeemCode(ctx(t), c.Hash, base, f, issue)
	wantCode(t, "RedeemCode(issue conflicts)", err, latch.ErrConflict)
	if errors.Is(err, latch.ErrReused) {
		t.Fatalf("RedeemCode(issue conflicts): err = %v, is ErrReused", err)
	}
	checkCode(t, c, mustCode(t, s, c.Hash)) // still unused
	_, err = s.Family(ctx(t), f.ID)
	wantCode(t, "Family after a rolled-back redemption", err, latch.ErrNotFound)
	wantGone(t, s, "after a rolled-back redemption", issue.Refresh)
	wantLive(t, s, taken)

	// The code can still be redeemed.
	retry := opaqueIssue(f, "retry")
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, retry); err != nil {
		t.Fatalf("RedeemCode after a rolled-back one: %v", err)
	}
	wantLive(t, s, retry.Refresh, retry.Access)
}

func testRedeemOtherFamily(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	f.ID = "fam-not-the-codes"
	issue := opaqueIssue(f, "c1")
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, issue); err == nil {
		t.Fatal("RedeemCode with a family that is not the code's: err = nil")
	}
	checkCode(t, c, mustCode(t, s, c.Hash))
	_, err := s.Family(ctx(t), f.ID)
	wantCode(t, "Family after a refused redemption", err, latch.ErrNotFound)
	wantGone(t, s, "after a refused redemption", issue.Refresh, issue.Access)
}

func testFamilyMissing(t *testing.T, s latch.Store) {
	_, err := s.Family(ctx(t), "fam-nope")
	wantCode(t, "Family(missing)", err, latch.ErrNotFound)
}

func testCreateFamily(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := familyOf(newCode("u1", "pw"))
	f.SessionID = "" // the password grant has no login session
	issue := jwtIssue(f, "pw")
	if err := s.CreateFamily(ctx(t), f, issue); err != nil {
		t.Fatalf("CreateFamily: %v", err)
	}
	checkFamily(t, f, mustFamily(t, s, f.ID))
	wantLive(t, s, issue.Refresh)
	// The refresh token rotates like any other.
	mustRotate(t, s, issue.Refresh.Hash, base.Add(time.Minute), grace, opaqueIssue(f, "pw2"))

	// A conflicting token rolls the whole grant back: no family is left.
	g := familyOf(newCode("u1", "pw3"))
	dup := accessOf(g, "pw2") // the hash of a token already stored
	err := s.CreateFamily(ctx(t), g, latch.Issue{Refresh: refreshOf(g, "pw3"), Access: dup})
	wantCode(t, "CreateFamily(token exists)", err, latch.ErrConflict)
	_, err = s.Family(ctx(t), g.ID)
	wantCode(t, "Family(rolled back)", err, latch.ErrNotFound)
	wantCode(t, "CreateFamily(family exists)", s.CreateFamily(ctx(t), f, latch.Issue{}), latch.ErrConflict)
}

func testRotateFirst(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	now := base.Add(time.Hour)
	next := jwtIssue(f, "next")
	tok, fam := mustRotate(t, s, rt.Hash, now, grace, next)

	want := *rt
	want.RotatedAt = now
	checkToken(t, &want, tok)
	checkFamily(t, f, fam)
	checkToken(t, &want, mustToken(t, s, rt.Hash)) // kept, to recognise reuse
	wantLive(t, s, next.Refresh, accessOf(f, "c1"))
	if mustIsRevoked(t, s, issuer, next.JWT.JTI) {
		t.Error("the successor's JWT is denylisted")
	}
	// The successor rotates in its turn.
	mustRotate(t, s, next.Refresh.Hash, now.Add(time.Hour), grace, opaqueIssue(f, "third"))
	wantLive(t, s, opaqueIssue(f, "third").Refresh)
}

// retryIssue is what a retry of a rotation within grace writes: a new
// access token named name, and the successor the first rotation stored.
func retryIssue(f *latch.Family, successor, name string) latch.Issue {
	return latch.Issue{Refresh: refreshOf(f, successor), Access: accessOf(f, name)}
}

func testRotateWithinGrace(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	first := base.Add(time.Hour)
	a, b := opaqueIssue(f, "a"), retryIssue(f, "a", "b")
	mustRotate(t, s, rt.Hash, first, grace, a)
	// The successor is rotated in its turn before the retry comes: the
	// retry still gets it, and the chain goes on from its successor.
	a2 := opaqueIssue(f, "a2")
	mustRotate(t, s, a.Refresh.Hash, first.Add(time.Millisecond), grace, a2)
	tok, _ := mustRotate(t, s, rt.Hash, first.Add(grace-time.Millisecond), grace, b)
	var d diff
	d.time("RotatedAt", first, tok.RotatedAt) // the first rotation's
	d.time("stored RotatedAt", first, mustToken(t, s, rt.Hash).RotatedAt)
	d.check(t, "token rotated twice within grace")
	rotatedA := *a.Refresh
	rotatedA.RotatedAt = first.Add(time.Millisecond)
	wantLive(t, s, &rotatedA, a.Access, b.Access, a2.Refresh) // the successor as the first rotation wrote it
	wantFamilyLive(t, s, f.ID)
	if n := mustFeed(t, s).n; n != 0 {
		t.Errorf("revocation log has %d entries after a retry within grace, want 0", n)
	}

	// One chain: the successor's successor rotates, and the successor
	// itself, used again after its own window, is a reuse.
	mustRotate(t, s, a2.Refresh.Hash, first.Add(time.Hour), grace, opaqueIssue(f, "a3"))
	_, _, err := s.RotateRefresh(ctx(t), a.Refresh.Hash, first.Add(time.Hour), grace, opaqueIssue(f, "fork"))
	wantReused(t, "RotateRefresh(the shared successor, after its window)", err)
	wantGone(t, s, "after reuse of the shared successor", a.Access, b.Access, a2.Refresh, opaqueIssue(f, "a3").Refresh)
}

func testRotateWithinGraceOtherSuccessor(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", jwtIssue)
	other := mustRedeem(t, s, "u1", "other", opaqueIssue)
	rt := refreshOf(f, "c1")
	first := base.Add(time.Minute)
	a := opaqueIssue(f, "a")
	mustRotate(t, s, rt.Hash, first, grace, a)
	for _, tc := range []struct {
		name  string
		issue latch.Issue
	}{
		{"a successor never stored", jwtIssue(f, "fork")},
		{"a refresh token of another family", latch.Issue{Refresh: refreshOf(other, "other"), JWT: jwtOf("fork")}},
		{"an access token, not a refresh token", latch.Issue{Refresh: accessOf(f, "a"), JWT: jwtOf("fork")}},
	} {
		_, _, err := s.RotateRefresh(ctx(t), rt.Hash, first.Add(time.Second), grace, tc.issue)
		wantCode(t, "RotateRefresh(retry within grace with "+tc.name+")", err, errUnauthorized)
		if errors.Is(err, latch.ErrReused) {
			t.Errorf("RotateRefresh(retry with %s) is a reuse: %v", tc.name, err)
		}
	}
	wantGone(t, s, "after refused retries", jwtIssue(f, "fork").Refresh, accessOf(f, "fork"))
	if mustIsRevoked(t, s, issuer, jwtOf("fork").JTI) || mustFeed(t, s).n != 0 {
		t.Error("a refused retry wrote to the revocation log")
	}
	// The refused retries wrote no JWT record: revoking the family
	// denylists only the JWT of the redemption.
	if err := s.RevokeFamily(ctx(t), f.ID, first.Add(2*time.Second)); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	if mustIsRevoked(t, s, issuer, jwtOf("fork").JTI) {
		t.Error("a refused retry's JWT was recorded in the family")
	}
	mustFeed(t, s).wantJWTDenylisted(t, s, first.Add(2*time.Second), jwtOf("c1"))
	wantFamilyLive(t, s, other.ID)
}

func testRotateAfterGrace(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", jwtIssue)
	other := mustRedeem(t, s, "u1", "other", jwtIssue)
	rt := refreshOf(f, "c1")
	first := base.Add(time.Second) // the access tokens and JWTs live 10 minutes from base
	next := opaqueIssue(f, "next")
	mustRotate(t, s, rt.Hash, first, grace, next)
	third := jwtIssue(f, "third")
	mustRotate(t, s, next.Refresh.Hash, first.Add(time.Second), grace, third)

	// rt is presented again, grace after its rotation: reuse.
	now := first.Add(grace)
	attempt := opaqueIssue(f, "attempt")
	_, _, err := s.RotateRefresh(ctx(t), rt.Hash, now, grace, attempt)
	wantReused(t, "RotateRefresh(rotated token, after grace)", err)
	wantRevokedAt(t, s, f.ID, now)
	wantGone(t, s, "after reuse", rt, next.Refresh, next.Access, third.Refresh, attempt.Refresh, attempt.Access)
	fd := mustFeed(t, s)
	fd.wantOpaqueLogged(t, now, rt, next.Refresh, next.Access, third.Refresh)
	fd.wantJWTDenylisted(t, s, now, jwtOf("c1"), third.JWT)
	// The other family is untouched.
	wantFamilyLive(t, s, other.ID)
	wantLive(t, s, refreshOf(other, "other"))
	if mustIsRevoked(t, s, issuer, jwtOf("other").JTI) {
		t.Error("another family's JWT is denylisted")
	}
	// Every token of the family is unusable now.
	_, _, err = s.RotateRefresh(ctx(t), third.Refresh.Hash, now, grace, opaqueIssue(f, "late"))
	if !errors.Is(err, latch.ErrNotFound) && !errors.Is(err, errUnauthorized) {
		t.Errorf("RotateRefresh(successor of a revoked family): err = %v, want ENOTFOUND or EUNAUTHORIZED", err)
	}
	wantGone(t, s, "after a refused rotation", opaqueIssue(f, "late").Refresh)
}

func testRotateExpired(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	next := opaqueIssue(f, "next")
	_, _, err := s.RotateRefresh(ctx(t), rt.Hash, rt.ExpiresAt, grace, next) // expired at ExpiresAt
	wantCode(t, "RotateRefresh(expired token)", err, errUnauthorized)
	wantGone(t, s, "after an expired rotation", next.Refresh, next.Access)
	checkToken(t, rt, mustToken(t, s, rt.Hash)) // not marked rotated
	wantFamilyLive(t, s, f.ID)

	// A family whose absolute lifetime ends before its token's.
	c := newCode("u1", "short")
	mustCreateCode(t, s, c)
	short := familyOf(c)
	short.ExpiresAt = base.Add(time.Hour)
	if err := s.RedeemCode(ctx(t), c.Hash, base, short, opaqueIssue(short, "short")); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	next = opaqueIssue(short, "short-next")
	_, _, err = s.RotateRefresh(ctx(t), refreshOf(short, "short").Hash, short.ExpiresAt, grace, next)
	wantCode(t, "RotateRefresh(expired family)", err, errUnauthorized)
	wantGone(t, s, "after a rotation in an expired family", next.Refresh, next.Access)
	checkToken(t, refreshOf(short, "short"), mustToken(t, s, refreshOf(short, "short").Hash))
}

func testRotateRevoked(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	if err := s.RevokeFamily(ctx(t), f.ID, base.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	next := opaqueIssue(f, "next")
	_, _, err := s.RotateRefresh(ctx(t), rt.Hash, base.Add(time.Hour), grace, next)
	if !errors.Is(err, latch.ErrNotFound) && !errors.Is(err, errUnauthorized) {
		t.Errorf("RotateRefresh(token of a revoked family): err = %v, want ENOTFOUND or EUNAUTHORIZED", err)
	}
	wantGone(t, s, "after a rotation in a revoked family", next.Refresh, next.Access)

	// A refresh token of the family written after its revocation (a race
	// the store cannot see) is refused all the same.
	late := refreshOf(f, "late")
	mustCreateToken(t, s, late)
	_, _, err = s.RotateRefresh(ctx(t), late.Hash, base.Add(time.Hour), grace, next)
	wantCode(t, "RotateRefresh(late token of a revoked family)", err, errUnauthorized)
	wantGone(t, s, "after a rotation in a revoked family", next.Refresh, next.Access)
}

func testRotateMissing(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	next := opaqueIssue(f, "next")
	_, _, err := s.RotateRefresh(ctx(t), sum("never issued"), base, grace, next)
	wantCode(t, "RotateRefresh(missing)", err, latch.ErrNotFound)
	_, _, err = s.RotateRefresh(ctx(t), accessOf(f, "c1").Hash, base, grace, next)
	wantCode(t, "RotateRefresh(an access token)", err, latch.ErrNotFound)
	wantGone(t, s, "after refused rotations", next.Refresh, next.Access)
	wantLive(t, s, accessOf(f, "c1"))
}

func testRefreshChain(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := familyOf(newCode("u2", "chain"))
	rt := refreshOf(f, "chain")
	// Every column the refresh grant checks, the DPoP key and the client
	// registration among them.
	rt.JKT, rt.RegistrationID = "jkt-of-chain", "reg-of-chain"
	if err := s.CreateFamily(ctx(t), f, latch.Issue{Refresh: rt, Access: accessOf(f, "chain")}); err != nil {
		t.Fatalf("CreateFamily: %v", err)
	}
	check := func(op string, want *latch.Token) {
		t.Helper()
		tok, fam, u, err := s.RefreshChain(ctx(t), rt.Hash)
		if err != nil {
			t.Fatalf("RefreshChain(%s): %v", op, err)
		}
		checkToken(t, want, tok)
		checkFamily(t, f, fam)
		checkUser(t, mustUser(t, s, "u2"), u)
	}
	check("live", rt)

	// The chain is read as it is: the rotation's rules are RotateRefresh's.
	now := base.Add(time.Hour)
	mustRotate(t, s, rt.Hash, now, grace, opaqueIssue(f, "chain2"))
	rotated := *rt
	rotated.RotatedAt = now
	check("rotated", &rotated)

	for _, tc := range []struct {
		name string
		hash []byte
	}{
		{"never issued", sum("never issued")},
		{"an access token", accessOf(f, "chain").Hash},
	} {
		_, _, _, err := s.RefreshChain(ctx(t), tc.hash)
		wantCode(t, "RefreshChain("+tc.name+")", err, latch.ErrNotFound)
	}
	// A revoked family's tokens are deleted with it.
	if err := s.RevokeFamily(ctx(t), f.ID, now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	_, _, _, err := s.RefreshChain(ctx(t), opaqueIssue(f, "chain2").Refresh.Hash)
	wantCode(t, "RefreshChain(a token of a revoked family)", err, latch.ErrNotFound)
}

func testRotateConflict(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	bad := opaqueIssue(f, "next")
	bad.Refresh.Hash = accessOf(f, "c1").Hash // taken
	_, _, err := s.RotateRefresh(ctx(t), rt.Hash, base.Add(time.Hour), grace, bad)
	wantCode(t, "RotateRefresh(issue conflicts)", err, latch.ErrConflict)
	if errors.Is(err, latch.ErrReused) {
		t.Fatalf("RotateRefresh(issue conflicts): err = %v, is ErrReused", err)
	}
	checkToken(t, rt, mustToken(t, s, rt.Hash)) // not marked rotated
	wantGone(t, s, "after a rolled-back rotation", bad.Access)

	// Long after, the token still rotates: the failed attempt did not count.
	good := opaqueIssue(f, "good")
	mustRotate(t, s, rt.Hash, base.Add(2*time.Hour), grace, good)
	wantLive(t, s, good.Refresh, good.Access)
	wantFamilyLive(t, s, f.ID)
}

func testRevokeFamily(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", jwtIssue)
	other := mustRedeem(t, s, "u1", "other", jwtIssue)
	rt := refreshOf(f, "c1")
	// The family holds an expired access token and an expired JWT too:
	// neither needs a log entry.
	now := base.Add(5 * time.Minute)
	mid := latch.Issue{Refresh: refreshOf(f, "mid"), Access: accessOf(f, "mid"), JWT: jwtOf("mid")}
	mid.Access.ExpiresAt, mid.JWT.ExpiresAt = base.Add(2*time.Minute), base.Add(2*time.Minute)
	mustRotate(t, s, rt.Hash, base.Add(time.Minute), grace, mid)

	if err := s.RevokeFamily(ctx(t), f.ID, now); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	wantRevokedAt(t, s, f.ID, now)
	wantGone(t, s, "of a revoked family", rt, mid.Refresh, mid.Access)
	fd := mustFeed(t, s)
	fd.wantOpaqueLogged(t, now, rt, mid.Refresh)
	fd.wantJWTDenylisted(t, s, now, jwtOf("c1"))
	if mustIsRevoked(t, s, issuer, mid.JWT.JTI) {
		t.Error("a JWT expired at now was denylisted")
	}
	if _, ok := fd.opaque[string(mid.Access.Hash)]; ok {
		t.Error("an access token expired at now was logged as revoked")
	}
	if fd.n != 3 {
		t.Errorf("revocation log has %d entries, want 3 (2 opaque, 1 JWT)", fd.n)
	}
	wantFamilyLive(t, s, other.ID)
	wantLive(t, s, refreshOf(other, "other"))

	// Again: no error, nothing new in the log.
	if err := s.RevokeFamily(ctx(t), f.ID, now.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeFamily(revoked): %v", err)
	}
	if got := mustFeed(t, s).n; got != fd.n {
		t.Errorf("revoking a revoked family appended %d log entries", got-fd.n)
	}
	if !mustFamily(t, s, f.ID).RevokedAt.Before(now.Add(time.Hour)) {
		t.Error("revoking a revoked family moved its RevokedAt")
	}
}

func testRevokeFamilyMissing(t *testing.T, s latch.Store) {
	wantCode(t, "RevokeFamily(missing)", s.RevokeFamily(ctx(t), "fam-nope", base), latch.ErrNotFound)
	if n := mustFeed(t, s).n; n != 0 {
		t.Errorf("RevokeFamily(missing) appended %d log entries", n)
	}
}

func testRevokeFamiliesByUser(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	mine := []*latch.Family{mustRedeem(t, s, "u1", "a", opaqueIssue), mustRedeem(t, s, "u1", "b", jwtIssue)}
	theirs := mustRedeem(t, s, "u2", "c", opaqueIssue)
	now := base.Add(time.Minute)
	n, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{UserID: "u1"}, now)
	if err != nil {
		t.Fatalf("RevokeFamilies(u1): %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeFamilies(u1) = %d, want 2", n)
	}
	for _, f := range mine {
		wantRevokedAt(t, s, f.ID, now)
	}
	wantGone(t, s, "of a revoked user family", refreshOf(mine[0], "a"), accessOf(mine[0], "a"), refreshOf(mine[1], "b"))
	fd := mustFeed(t, s)
	fd.wantOpaqueLogged(t, now, refreshOf(mine[0], "a"), accessOf(mine[0], "a"), refreshOf(mine[1], "b"))
	fd.wantJWTDenylisted(t, s, now, jwtOf("b"))
	wantFamilyLive(t, s, theirs.ID)
	wantLive(t, s, refreshOf(theirs, "c"), accessOf(theirs, "c"))

	// Only live families count.
	if n, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{UserID: "u1"}, now); err != nil || n != 0 {
		t.Errorf("RevokeFamilies(u1) again = %d, %v, want 0, nil", n, err)
	}
	if n, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{UserID: "nobody"}, now); err != nil || n != 0 {
		t.Errorf("RevokeFamilies(nobody) = %d, %v, want 0, nil", n, err)
	}
}

func testRevokeFamiliesDeletesCodes(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	inA, inB, other := newCode("u1", "ca"), newCode("u1", "cb"), newCode("u2", "cu2")
	inA.SessionID, inB.SessionID = "sid-A", "sid-B"
	for _, c := range []*latch.AuthCode{inA, inB, other} {
		mustCreateCode(t, s, c)
	}
	now := base.Add(time.Second)
	if _, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{SessionID: "sid-A"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Code(ctx(t), inA.Hash); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("code of the signed-out session: %v, want not found", err)
	}
	mustCode(t, s, inB.Hash)
	if _, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{UserID: "u1"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Code(ctx(t), inB.Hash); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("code of the signed-out user: %v, want not found", err)
	}
	mustCode(t, s, other.Hash) // another user's
	// A redeemed code stays, so that its reuse is still recognised.
	c := newCode("u2", "used")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, opaqueIssue(f, "used")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{UserID: "u2"}, now); err != nil {
		t.Fatal(err)
	}
	mustCode(t, s, c.Hash)
}

func testRedeemUsedThenExpired(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "late")
	mustCreateCode(t, s, c)
	f := familyOf(c)
	issue := opaqueIssue(f, "late")
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, issue); err != nil {
		t.Fatal(err)
	}
	err := s.RedeemCode(ctx(t), c.Hash, c.ExpiresAt.Add(time.Minute), familyOf(c), opaqueIssue(f, "late2"))
	wantReused(t, "RedeemCode(used, then expired)", err)
	wantGone(t, s, "of the reused code's family", issue.Refresh, issue.Access)
}

func testRevokeFamiliesBySession(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	redeemIn := func(name, sid string) *latch.Family {
		c := newCode("u1", name)
		c.SessionID = sid
		mustCreateCode(t, s, c)
		f := familyOf(c)
		if err := s.RedeemCode(ctx(t), c.Hash, base, f, opaqueIssue(f, name)); err != nil {
			t.Fatalf("RedeemCode(%s): %v", name, err)
		}
		return f
	}
	inA := []*latch.Family{redeemIn("a1", "sid-A"), redeemIn("a2", "sid-A")}
	inB := redeemIn("b", "sid-B")
	noSession := redeemIn("pw", "") // the password grant's: no session
	now := base.Add(time.Minute)
	n, err := s.RevokeFamilies(ctx(t), latch.FamilyFilter{SessionID: "sid-A"}, now)
	if err != nil {
		t.Fatalf("RevokeFamilies(sid-A): %v", err)
	}
	if n != 2 {
		t.Errorf("RevokeFamilies(sid-A) = %d, want 2", n)
	}
	for _, f := range inA {
		wantRevokedAt(t, s, f.ID, now)
	}
	wantGone(t, s, "of a revoked session family", refreshOf(inA[0], "a1"), refreshOf(inA[1], "a2"))
	for _, f := range []*latch.Family{inB, noSession} {
		wantFamilyLive(t, s, f.ID)
	}
	wantLive(t, s, refreshOf(inB, "b"), refreshOf(noSession, "pw"))
}

func testRevokeFamiliesInvalid(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "a", opaqueIssue)
	for _, filter := range []latch.FamilyFilter{{}, {UserID: "u1", SessionID: f.SessionID}} {
		n, err := s.RevokeFamilies(ctx(t), filter, base)
		wantCode(t, fmt.Sprintf("RevokeFamilies(%+v)", filter), err, errInvalid)
		if n != 0 {
			t.Errorf("RevokeFamilies(%+v) = %d, want 0", filter, n)
		}
	}
	wantFamilyLive(t, s, f.ID)
	wantLive(t, s, refreshOf(f, "a"))
}

func testGrantDeleteCascade(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	mustCreateClient(t, s, newClient("gone"))
	// A code and a family of user u2, and a code and a family of client "gone".
	byUser := mustRedeem(t, s, "u2", "u2", opaqueIssue)
	userCode := newCode("u2", "u2-unused")
	mustCreateCode(t, s, userCode)
	clientCode := newCode("u1", "gone")
	clientCode.ClientID = "gone"
	mustCreateCode(t, s, clientCode)
	byClient := familyOf(clientCode)
	clientIssue := opaqueIssue(byClient, "gone")
	if err := s.RedeemCode(ctx(t), clientCode.Hash, base, byClient, clientIssue); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	kept := mustRedeem(t, s, "u1", "kept", opaqueIssue)

	if err := s.DeleteUser(ctx(t), "u2"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if err := s.DeleteClient(ctx(t), "gone"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	for _, c := range []*latch.AuthCode{newCode("u2", "u2"), userCode, clientCode} {
		_, err := s.Code(ctx(t), c.Hash)
		wantCode(t, "Code of a deleted user or client", err, latch.ErrNotFound)
	}
	for _, id := range []string{byUser.ID, byClient.ID} {
		_, err := s.Family(ctx(t), id)
		wantCode(t, "Family of a deleted user or client", err, latch.ErrNotFound)
	}
	for _, rt := range []*latch.Token{refreshOf(byUser, "u2"), clientIssue.Refresh} {
		_, _, err := s.RotateRefresh(ctx(t), rt.Hash, base.Add(time.Minute), grace, opaqueIssue(kept, "x"))
		if !errors.Is(err, latch.ErrNotFound) && !errors.Is(err, errUnauthorized) {
			t.Errorf("RotateRefresh(%s of a deleted family): err = %v, want ENOTFOUND or EUNAUTHORIZED", rt.ID, err)
		}
	}
	mustCode(t, s, newCode("u1", "kept").Hash)
	wantFamilyLive(t, s, kept.ID)
	wantLive(t, s, refreshOf(kept, "kept"))
}

func testPurgeGrants(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	// An expired code redeemed, long ago, into a now-expired family whose
	// refresh token and JWT are expired too: 4 rows plus the code.
	old := newCode("u1", "old")
	old.IssuedAt, old.ExpiresAt = base.Add(-2*time.Hour), base.Add(-time.Hour)
	mustCreateCode(t, s, old)
	oldFam := familyOf(old)
	oldFam.CreatedAt, oldFam.ExpiresAt = base.Add(-2*time.Hour), base.Add(-time.Second)
	oldIssue := jwtIssue(oldFam, "old")
	oldIssue.Refresh.ExpiresAt = base.Add(-time.Minute)
	oldIssue.JWT.ExpiresAt = base.Add(-time.Minute)
	if err := s.RedeemCode(ctx(t), old.Hash, base.Add(-2*time.Hour), oldFam, oldIssue); err != nil {
		t.Fatalf("RedeemCode(old): %v", err)
	}
	// A live family with one expired JWT record (1 row) and one live one.
	live := newCode("u1", "live")
	mustCreateCode(t, s, live)
	liveFam := familyOf(live)
	expiredJWT := jwtOf("live-expired")
	expiredJWT.ExpiresAt = base.Add(-time.Second)
	if err := s.RedeemCode(ctx(t), live.Hash, base, liveFam, latch.Issue{Refresh: refreshOf(liveFam, "live"), JWT: expiredJWT}); err != nil {
		t.Fatalf("RedeemCode(live): %v", err)
	}
	next := jwtIssue(liveFam, "live-next")
	mustRotate(t, s, refreshOf(liveFam, "live").Hash, base.Add(-time.Hour), grace, next)
	edge := newCode("u1", "edge")
	edge.ExpiresAt = base // not before now: kept
	mustCreateCode(t, s, edge)

	if n := mustPurgeExpired(t, s, base); n != 5 {
		t.Errorf("PurgeExpired = %d, want 5 (code, family, refresh token, 2 JWT records)", n)
	}
	_, err := s.Code(ctx(t), old.Hash)
	wantCode(t, "Code(expired) after purge", err, latch.ErrNotFound)
	_, err = s.Family(ctx(t), oldFam.ID)
	wantCode(t, "Family(expired) after purge", err, latch.ErrNotFound)
	mustCode(t, s, live.Hash)
	mustCode(t, s, edge.Hash)
	wantFamilyLive(t, s, liveFam.ID)
	wantLive(t, s, next.Refresh)

	// The purged JWT record is forgotten: revoking the family (at a time
	// when that JWT was still valid) denylists only the live one.
	if err := s.RevokeFamily(ctx(t), liveFam.ID, base.Add(-2*time.Second)); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	if mustIsRevoked(t, s, issuer, expiredJWT.JTI) {
		t.Error("a purged JWT record was still revoked with its family")
	}
	if !mustIsRevoked(t, s, issuer, next.JWT.JTI) {
		t.Error("a live JWT record was purged")
	}
}

// concurrentRotations has 32 goroutines rotate the refresh token of a fresh
// family at the same now, each with its own JWT and the same successor
// "next" (as the server derives it), and returns the family and the errors.
func concurrentRotations(t *testing.T, s latch.Store, grace time.Duration) (*latch.Family, []latch.Issue, []error) {
	const workers = 32
	grantSetup(t, s)
	f := mustRedeem(t, s, "u1", "c1", opaqueIssue)
	rt := refreshOf(f, "c1")
	now := base.Add(time.Minute) // the successors' JWTs are live: revoking denylists them
	issues := make([]latch.Issue, workers)
	errs := make([]error, workers)
	for w := range workers {
		issues[w] = latch.Issue{Refresh: refreshOf(f, "next"), JWT: jwtOf(fmt.Sprint("w", w))}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			_, _, errs[w] = s.RotateRefresh(ctx(t), rt.Hash, now, grace, issues[w])
		})
	}
	close(start)
	wg.Wait()
	return f, issues, errs
}

func testRotateConcurrentNoGrace(t *testing.T, s latch.Store) {
	f, issues, errs := concurrentRotations(t, s, 0)
	var ok, reused int
	for w, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, latch.ErrReused):
			reused++
		case errors.Is(err, latch.ErrNotFound), errors.Is(err, errUnauthorized):
		default:
			t.Errorf("worker %d: RotateRefresh: %v, want nil, ErrReused, ENOTFOUND or EUNAUTHORIZED", w, err)
		}
	}
	// The calls are serialized: the first rotates, the second is a reuse
	// and revokes the family, the rest find nothing or a revoked family.
	if ok != 1 || reused < 1 {
		t.Fatalf("%d rotations succeeded and %d were reuses, want 1 and at least 1", ok, reused)
	}
	if mustFamily(t, s, f.ID).RevokedAt.IsZero() {
		t.Error("family not revoked after concurrent reuse")
	}
	wantGone(t, s, "after concurrent reuse", refreshOf(f, "c1"), accessOf(f, "c1"), refreshOf(f, "next"))
	// The winner's JWT, the one successor issued, is denylisted.
	var denylisted int
	for _, is := range issues {
		if mustIsRevoked(t, s, is.JWT.Issuer, is.JWT.JTI) {
			denylisted++
		}
	}
	if denylisted != 1 {
		t.Errorf("%d successor JWTs denylisted, want 1 (the winner's)", denylisted)
	}
}

// testRotateConcurrentGrace: 32 rotations of one token within grace all
// succeed and leave one chain, the shared successor, which rotates; the
// parent presented again 1 s after its window revokes the family with all
// 32 callers' access tokens.
func testRotateConcurrentGrace(t *testing.T, s latch.Store) {
	f, issues, errs := concurrentRotations(t, s, grace)
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: RotateRefresh within grace: %v", w, err)
		}
	}
	wantFamilyLive(t, s, f.ID)
	if n := mustFeed(t, s).n; n != 0 {
		t.Errorf("revocation log has %d entries after rotations within grace, want 0", n)
	}
	now := base.Add(time.Minute)
	parent := mustToken(t, s, refreshOf(f, "c1").Hash)
	var d diff
	d.time("parent RotatedAt", now, parent.RotatedAt)
	d.check(t, "after 32 rotations within grace")
	wantLive(t, s, refreshOf(f, "next")) // written once, never rotated
	// Every caller got "next": each uses it in turn; the first rotates
	// it, the others are retries within its window.
	for w := range issues {
		mustRotate(t, s, refreshOf(f, "next").Hash, now.Add(time.Second), grace,
			latch.Issue{Refresh: refreshOf(f, "third"), JWT: jwtOf(fmt.Sprint("third", w))})
	}
	wantLive(t, s, refreshOf(f, "third"))
	wantFamilyLive(t, s, f.ID)

	// The parent, 1 s after its window: reuse; the one chain dies.
	late := now.Add(grace + time.Second)
	_, _, err := s.RotateRefresh(ctx(t), refreshOf(f, "c1").Hash, late, grace, opaqueIssue(f, "thief"))
	wantReused(t, "RotateRefresh(parent, 1 s after the window)", err)
	wantRevokedAt(t, s, f.ID, late)
	wantGone(t, s, "after the parent's reuse", refreshOf(f, "c1"), refreshOf(f, "next"), refreshOf(f, "third"),
		opaqueIssue(f, "thief").Refresh, opaqueIssue(f, "thief").Access)
	fd := mustFeed(t, s)
	for w, is := range issues {
		fd.wantJWTDenylisted(t, s, late, is.JWT, jwtOf(fmt.Sprint("third", w)))
	}
}

// testRedeemReplayAfterPurge: a used code outlives the purge that removes
// expired unused codes, for as long as its family, so that a replay long
// after the code expired still revokes what it issued (RFC 6749 §4.1.2).
func testRedeemReplayAfterPurge(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	c := newCode("u1", "c1")
	mustCreateCode(t, s, c)
	unused := newCode("u1", "unused")
	mustCreateCode(t, s, unused)
	f := familyOf(c)
	f.ExpiresAt = base.Add(2 * time.Hour)
	issue := jwtIssue(f, "c1")
	issue.Access = accessOf(f, "c1")
	if err := s.RedeemCode(ctx(t), c.Hash, base, f, issue); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	used := *c
	used.UsedAt, used.ExpiresAt = base, f.ExpiresAt
	checkCode(t, &used, mustCode(t, s, c.Hash))

	// Two minutes later both codes have expired: the purge removes the
	// unused one and keeps the used one.
	purgeAt := c.ExpiresAt.Add(time.Minute)
	if n := mustPurgeExpired(t, s, purgeAt); n != 1 {
		t.Errorf("PurgeExpired = %d, want 1 (the unused code)", n)
	}
	_, err := s.Code(ctx(t), unused.Hash)
	wantCode(t, "Code(expired, unused) after purge", err, latch.ErrNotFound)
	checkCode(t, &used, mustCode(t, s, c.Hash))

	replay := purgeAt.Add(time.Second)
	err = s.RedeemCode(ctx(t), c.Hash, replay, familyOf(c), opaqueIssue(f, "replay"))
	wantReused(t, "RedeemCode(replayed after the purge)", err)
	wantRevokedAt(t, s, f.ID, replay)
	wantGone(t, s, "after the replay", issue.Refresh, issue.Access, opaqueIssue(f, "replay").Refresh)
	fd := mustFeed(t, s)
	fd.wantOpaqueLogged(t, replay, issue.Refresh, issue.Access)
	fd.wantJWTDenylisted(t, s, replay, issue.JWT)

	// Once the family has expired nothing is left to revoke: the code goes
	// with it.
	if n := mustPurgeExpired(t, s, f.ExpiresAt.Add(time.Second)); n < 2 {
		t.Errorf("PurgeExpired after the family expired = %d, want at least 2 (code and family)", n)
	}
	_, err = s.Code(ctx(t), c.Hash)
	wantCode(t, "Code(used) after its family expired and was purged", err, latch.ErrNotFound)
}
