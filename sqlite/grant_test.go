package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"sync"
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

// 64 concurrent writers through the group committer and the WAL syncer,
// half issuing tokens and half rotating their own refresh chains: every
// answer is the caller's own (the token or family it asked about), and
// every acknowledged write is stored under its own hash.
func TestBatch_64ConcurrentIssuancesAndRotations_EachAnswerItsOwn(t *testing.T) {
	db := mustOpenMigrated(t, options{synchronous: "FULL"})
	ctx := context.Background()
	now := time.Now()
	grantFixture(t, db, now)
	const chains, rounds = 32, 5
	hash := func(chain, i int) []byte { return hashOf(1_000_000 + chain*1000 + i) }
	fams := make([]*latch.Family, chains)
	for c := range chains {
		code := &latch.AuthCode{Hash: hashOf(-2 - c), ClientID: "app", UserID: "u1", FamilyID: fmt.Sprint("fam-", c),
			IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := db.CreateCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		f := &latch.Family{ID: code.FamilyID, ClientID: "app", UserID: "u1", Scope: []string{"read"},
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		is := rotationIssue(f, 0, now)
		is.Refresh.Hash, is.JWT = hash(c, 0), nil
		if err := db.RedeemCode(ctx, code.Hash, now, f, is); err != nil {
			t.Fatal(err)
		}
		fams[c] = f
	}
	var wg sync.WaitGroup
	for c := range chains {
		wg.Go(func() { // a refresh chain
			for i := range rounds {
				is := rotationIssue(fams[c], 0, now)
				is.Refresh.Hash, is.Refresh.ID, is.JWT = hash(c, i+1), fmt.Sprint("rt-", c, "-", i+1), nil
				tok, fam, err := db.RotateRefresh(ctx, hash(c, i), now, 0, is)
				if err != nil {
					t.Errorf("chain %d rotation %d: %v", c, i, err)
					return
				}
				if !bytes.Equal(tok.Hash, hash(c, i)) || fam.ID != fams[c].ID {
					t.Errorf("chain %d rotation %d answered token %x of family %s", c, i, tok.Hash, fam.ID)
				}
			}
		})
		wg.Go(func() { // an issuer of opaque tokens
			for i := range rounds {
				n := 2_000_000 + c*1000 + i
				if err := db.CreateToken(ctx, accessToken(n, "app")); err != nil {
					t.Errorf("issuer %d token %d: %v", c, i, err)
				}
			}
		})
	}
	wg.Wait()
	for c := range chains {
		for i := range rounds {
			rt, err := db.Token(ctx, hash(c, i+1))
			if err != nil || rt.FamilyID != fams[c].ID {
				t.Errorf("successor %d of chain %d: %v, %v", i+1, c, rt, err)
			}
			n := 2_000_000 + c*1000 + i
			at, err := db.Token(ctx, hashOf(n))
			if err != nil || at.ID != fmt.Sprint("tok-", n) {
				t.Errorf("token %d of issuer %d: %v, %v", i, c, at, err)
			}
		}
	}
}
