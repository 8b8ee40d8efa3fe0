package latch

import (
	"errors"
	"testing"
	"time"
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

func TestRedemptionAndRotationRules(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := &AuthCode{FamilyID: "f", ExpiresAt: now.Add(time.Second)}
	for _, tc := range []struct {
		used, exp time.Time
		fam       string
		want      Redemption
	}{
		{time.Time{}, now.Add(time.Second), "f", RedeemUse},
		{time.Time{}, now, "f", RedeemExpired},
		{now.Add(-time.Minute), now.Add(-time.Hour), "f", RedeemReuse}, // used, then expired: still a reuse
		{time.Time{}, now.Add(time.Second), "g", RedeemOtherFamily},
	} {
		c.UsedAt, c.ExpiresAt = tc.used, tc.exp
		if got := RedemptionOf(c, now, tc.fam); got != tc.want {
			t.Errorf("RedemptionOf(used %v, exp %v, fam %s) = %d, want %d", tc.used, tc.exp, tc.fam, got, tc.want)
		}
	}
	live := &Family{ID: "f", ExpiresAt: now.Add(time.Hour)}
	tok := &Token{ID: "t", ExpiresAt: now.Add(time.Hour)}
	const grace = 10 * time.Second
	for _, tc := range []struct {
		rotated time.Time
		want    Rotation
	}{{time.Time{}, RotateFirst}, {now.Add(-grace + time.Nanosecond), RotateRetry}, {now.Add(-grace), RotateReuse}} {
		tok.RotatedAt = tc.rotated
		if got, why := RotationOf(tok, live, now, grace); got != tc.want || why != "" {
			t.Errorf("RotationOf(rotated %v) = %d %q, want %d", tc.rotated, got, why, tc.want)
		}
	}
	for name, tc := range map[string]struct {
		t *Token
		f *Family
	}{
		"token expired":  {&Token{ExpiresAt: now}, live},
		"family expired": {&Token{ExpiresAt: now.Add(time.Hour)}, &Family{ExpiresAt: now}},
		"family revoked": {&Token{ExpiresAt: now.Add(time.Hour)}, &Family{ExpiresAt: now.Add(time.Hour), RevokedAt: now}},
	} {
		if got, why := RotationOf(tc.t, tc.f, now, grace); got != 0 || why == "" {
			t.Errorf("%s: RotationOf = %d %q, want a refusal", name, got, why)
		}
	}
}

func TestUsedCodeExpiry_IsTheLaterOfCodeAndFamily(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		code, family, want time.Time
	}{
		{now.Add(time.Minute), now.Add(30 * 24 * time.Hour), now.Add(30 * 24 * time.Hour)}, // the usual case
		{now.Add(time.Minute), now.Add(time.Second), now.Add(time.Minute)},                 // a family shorter than the code
		{now.Add(time.Minute), time.Time{}, now.Add(time.Minute)},
	} {
		got := UsedCodeExpiry(&AuthCode{ExpiresAt: tc.code}, &Family{ExpiresAt: tc.family})
		if !got.Equal(tc.want) {
			t.Errorf("UsedCodeExpiry(code %v, family %v) = %v, want %v", tc.code, tc.family, got, tc.want)
		}
	}
}
