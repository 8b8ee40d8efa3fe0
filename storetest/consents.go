package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var consentTests = []test{
	{"Save_RoundTripsEveryField", testConsentRoundTrip},
	{"Save_Again_ReplacesScopeKeepsCreatedAt", testConsentReplace},
	{"Save_UnknownUserOrClient_IsInvalid", testConsentInvalid},
	{"Get_Missing_IsNotFound", testConsentMissing},
	{"UserConsents_ByClientOnlyTheUsers", testUserConsents},
	{"Delete_RemovesThatConsentOnly", testConsentDelete},
	{"DeleteClientOrUser_RemovesTheirConsents", testConsentCascade},
	{"UserFamilies_LiveOnesOldestFirstOnlyTheUsers", testUserFamilies},
}

func newConsent(userID, clientID string) *latch.Consent {
	return &latch.Consent{UserID: userID, ClientID: clientID, Scope: []string{"email", "openid", "ünïcødé"},
		CreatedAt: base, UpdatedAt: base.Add(time.Minute)}
}

func consentSetup(tb testing.TB, s latch.Store) {
	tb.Helper()
	mustCreateClient(tb, s, newClient("app"))
	mustCreateClient(tb, s, newClient("other"))
	mustCreateUser(tb, s, newUser("u1", "alice"))
	mustCreateUser(tb, s, newUser("u2", "bob"))
}

func mustSaveConsent(tb testing.TB, s latch.Store, c *latch.Consent) {
	tb.Helper()
	if err := s.SaveConsent(ctx(tb), c); err != nil {
		tb.Fatalf("SaveConsent(%s, %s): %v", c.UserID, c.ClientID, err)
	}
}

func mustConsent(tb testing.TB, s latch.Store, userID, clientID string) *latch.Consent {
	tb.Helper()
	c, err := s.Consent(ctx(tb), userID, clientID)
	if err != nil {
		tb.Fatalf("Consent(%s, %s): %v", userID, clientID, err)
	}
	return c
}

func checkConsent(tb testing.TB, want, got *latch.Consent) {
	tb.Helper()
	var d diff
	d.str("UserID", want.UserID, got.UserID)
	d.str("ClientID", want.ClientID, got.ClientID)
	d.list("Scope", want.Scope, got.Scope)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	d.check(tb, "consent "+want.UserID+"/"+want.ClientID)
}

func testConsentRoundTrip(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	want := newConsent("u1", "app")
	mustSaveConsent(t, s, want)
	checkConsent(t, want, mustConsent(t, s, "u1", "app"))
}

func testConsentReplace(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	mustSaveConsent(t, s, newConsent("u1", "app"))
	again := &latch.Consent{UserID: "u1", ClientID: "app", Scope: []string{"openid", "profile"},
		CreatedAt: base.Add(time.Hour), UpdatedAt: base.Add(2 * time.Hour)}
	mustSaveConsent(t, s, again)
	want := *again
	want.CreatedAt = base
	checkConsent(t, &want, mustConsent(t, s, "u1", "app"))
}

func testConsentInvalid(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	for _, c := range []*latch.Consent{newConsent("nobody", "app"), newConsent("u1", "nothing")} {
		if err := s.SaveConsent(ctx(t), c); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("SaveConsent(%s, %s) = %v, want EINVALID", c.UserID, c.ClientID, err)
		}
	}
}

func testConsentMissing(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	mustSaveConsent(t, s, newConsent("u1", "app"))
	for _, k := range [][2]string{{"u2", "app"}, {"u1", "other"}, {"", ""}} {
		if _, err := s.Consent(ctx(t), k[0], k[1]); latch.ErrorCode(err) != latch.ENOTFOUND {
			t.Errorf("Consent(%q, %q) = %v, want ENOTFOUND", k[0], k[1], err)
		}
	}
}

func testUserConsents(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	other, app := newConsent("u1", "other"), newConsent("u1", "app")
	mustSaveConsent(t, s, other)
	mustSaveConsent(t, s, app)
	mustSaveConsent(t, s, newConsent("u2", "app"))
	got, err := s.UserConsents(ctx(t), "u1")
	if err != nil || len(got) != 2 {
		t.Fatalf("UserConsents(u1) = %d consents, %v; want 2", len(got), err)
	}
	checkConsent(t, app, got[0])
	checkConsent(t, other, got[1])
	for _, id := range []string{"u3", ""} {
		if got, err := s.UserConsents(ctx(t), id); err != nil || len(got) != 0 {
			t.Errorf("UserConsents(%q) = %d, %v; want none", id, len(got), err)
		}
	}
}

func testConsentDelete(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	mustSaveConsent(t, s, newConsent("u1", "app"))
	mustSaveConsent(t, s, newConsent("u1", "other"))
	mustSaveConsent(t, s, newConsent("u2", "app"))
	if err := s.DeleteConsent(ctx(t), "u1", "app"); err != nil {
		t.Fatalf("DeleteConsent: %v", err)
	}
	if _, err := s.Consent(ctx(t), "u1", "app"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Consent after delete = %v, want ENOTFOUND", err)
	}
	mustConsent(t, s, "u1", "other")
	mustConsent(t, s, "u2", "app")
	if err := s.DeleteConsent(ctx(t), "u1", "app"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("DeleteConsent again = %v, want ENOTFOUND", err)
	}
}

func testConsentCascade(t *testing.T, s latch.Store) {
	consentSetup(t, s)
	mustSaveConsent(t, s, newConsent("u1", "app"))
	mustSaveConsent(t, s, newConsent("u1", "other"))
	mustSaveConsent(t, s, newConsent("u2", "other"))
	if err := s.DeleteClient(ctx(t), "app"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	if err := s.DeleteUser(ctx(t), "u2"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	got, err := s.UserConsents(ctx(t), "u1")
	if err != nil || len(got) != 1 || got[0].ClientID != "other" {
		t.Errorf("UserConsents(u1) after deleting client app = %v, %v; want only other's", got, err)
	}
	if got, err := s.UserConsents(ctx(t), "u2"); err != nil || len(got) != 0 {
		t.Errorf("UserConsents(u2) after deleting u2 = %d, %v; want none", len(got), err)
	}
}

func testUserFamilies(t *testing.T, s latch.Store) {
	grantSetup(t, s)
	first := mustRedeem(t, s, "u1", "first", opaqueIssue)
	revoked := mustRedeem(t, s, "u1", "revoked", opaqueIssue)
	mustRedeem(t, s, "u2", "bobs", opaqueIssue)
	// A later family, expired: still listed (the caller decides what
	// expired means to it).
	c := newCode("u1", "later")
	mustCreateCode(t, s, c)
	later := familyOf(c)
	later.CreatedAt, later.ExpiresAt = base.Add(time.Second), base.Add(2*time.Second)
	if err := s.RedeemCode(ctx(t), c.Hash, base, later, opaqueIssue(later, "later")); err != nil {
		t.Fatalf("RedeemCode(later): %v", err)
	}
	if err := s.RevokeFamily(ctx(t), revoked.ID, base); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	got, err := s.UserFamilies(ctx(t), "u1")
	if err != nil || len(got) != 2 {
		t.Fatalf("UserFamilies(u1) = %d families, %v; want 2", len(got), err)
	}
	checkFamily(t, first, got[0])
	checkFamily(t, later, got[1])
	for _, id := range []string{"u3", ""} {
		if got, err := s.UserFamilies(ctx(t), id); err != nil || len(got) != 0 {
			t.Errorf("UserFamilies(%q) = %d, %v; want none", id, len(got), err)
		}
	}
}
