package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// grantFixture stores client "app", user "u1" and a family "fam" of theirs
// redeemed from a code, with a refresh token (hashOf(0)) and a JWT "jti-0".
func grantFixture(tb testing.TB, db *DB, now time.Time) *latch.Family {
	tb.Helper()
	ctx := context.Background()
	if err := db.CreateClient(ctx, &latch.Client{ID: "app"}); err != nil {
		tb.Fatal(err)
	}
	if err := db.CreateUser(ctx, &latch.User{ID: "u1", Username: "alice", PasswordHash: "x"}); err != nil {
		tb.Fatal(err)
	}
	code := &latch.AuthCode{Hash: hashOf(-1), ClientID: "app", UserID: "u1", FamilyID: "fam",
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := db.CreateCode(ctx, code); err != nil {
		tb.Fatal(err)
	}
	f := &latch.Family{ID: "fam", ClientID: "app", UserID: "u1", SessionID: "sid",
		Scope: []string{"openid", "read"}, Audience: []string{"https://api.example.com"},
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := db.RedeemCode(ctx, code.Hash, now, f, rotationIssue(f, 0, now)); err != nil {
		tb.Fatal(err)
	}
	return f
}

// rotationIssue is what a refresh grant with JWT access tokens writes.
func rotationIssue(f *latch.Family, i int, now time.Time) latch.Issue {
	return latch.Issue{
		Refresh: &latch.Token{Hash: hashOf(i), Kind: latch.KindRefresh, ID: fmt.Sprint("rt-", i),
			ClientID: f.ClientID, Subject: f.UserID, Scope: f.Scope, Audience: f.Audience,
			FamilyID: f.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		JWT: &latch.IssuedJWT{Issuer: "https://issuer.example", JTI: fmt.Sprint("jti-", i), ExpiresAt: now.Add(5 * time.Minute)},
	}
}

// Deleting the user or the client of a family revokes it first, so its
// JWTs are denylisted at once instead of living until they expire.
func TestDeleteUserOrClient_DenylistsFamilyJWTs(t *testing.T) {
	for _, del := range []string{"user", "client"} {
		t.Run(del, func(t *testing.T) {
			db := mustOpenMigrated(t, options{synchronous: "FULL"})
			ctx := context.Background()
			now := time.Now()
			grantFixture(t, db, now)
			var err error
			if del == "user" {
				err = db.DeleteUser(ctx, "u1")
			} else {
				err = db.DeleteClient(ctx, "app")
			}
			if err != nil {
				t.Fatalf("Delete %s: %v", del, err)
			}
			if ok, err := db.IsRevoked(ctx, "https://issuer.example", "jti-0"); err != nil || !ok {
				t.Errorf("IsRevoked(jti-0) after deleting the %s = %v, %v, want true", del, ok, err)
			}
			if _, err := db.Token(ctx, hashOf(0)); latch.ErrorCode(err) != latch.ENOTFOUND {
				t.Errorf("Token(rt-0) after deleting the %s: err = %v, want ENOTFOUND", del, err)
			}
			rs, err := db.RevocationsSince(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 {
				t.Errorf("revocation log has %d entries, want 2 (the refresh token and the JWT)", len(rs))
			}
		})
	}
}

// BenchmarkRotateRefresh is the store's cost of one refresh grant: read the
// token and its family, mark it rotated, write the successor refresh token
// and the JWT record, in one synced transaction.
func BenchmarkRotateRefresh(b *testing.B) {
	db := mustOpenMigrated(b, options{synchronous: "FULL"})
	ctx := context.Background()
	now := time.Now()
	f := grantFixture(b, db, now)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, _, err := db.RotateRefresh(ctx, hashOf(i), now, 0, rotationIssue(f, i+1, now)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
