package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// now is these tests' clock.
var now = time.Date(2031, time.March, 14, 15, 9, 26, 0, time.UTC)

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// A follower that polls RevocationsSince from the highest Seq it has seen
// must see every entry, however the writers' transactions interleave: a
// sequence draws seqs in call order, not commit order, so without the log
// lock an entry with a lower Seq can commit after the follower has moved
// past it.
func TestRevocationFeed_PollingFollowerMissesNothing(t *testing.T) {
	db := mustOpen(t, freshSchema(t))
	ctx := context.Background()
	const writers, perWriter = 8, 40

	done := make(chan struct{})
	seen := map[int64]bool{}
	var followerErr error
	var follower sync.WaitGroup
	follower.Go(func() {
		var cursor int64
		poll := func() bool {
			rs, err := db.RevocationsSince(ctx, cursor, 1000)
			if err != nil {
				followerErr = err
				return false
			}
			for _, r := range rs {
				seen[r.Seq] = true
				cursor = r.Seq
			}
			return true
		}
		for {
			select {
			case <-done:
				poll() // what committed after the last poll
				return
			default:
				if !poll() {
					return
				}
			}
		}
	})

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r := &latch.Revocation{Kind: latch.RevokeJWT, Issuer: "https://issuer.example",
					JTI: fmt.Sprintf("w%d-%d", w, i), ExpiresAt: now.Add(time.Hour), RevokedAt: now}
				if err := db.Revoke(ctx, r); err != nil {
					t.Errorf("writer %d: Revoke: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	follower.Wait()
	if followerErr != nil {
		t.Fatalf("RevocationsSince: %v", followerErr)
	}
	all, err := db.RevocationsSince(ctx, 0, writers*perWriter+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*perWriter {
		t.Fatalf("log has %d entries, want %d", len(all), writers*perWriter)
	}
	for _, r := range all {
		if !seen[r.Seq] {
			t.Errorf("the follower never saw Seq %d (%s)", r.Seq, r.JTI)
		}
	}
}

// Rotations, revocations of the family's tokens, revocations of the family
// and the deletion of its client, all at once, take their row and log
// locks in one order: every call ends with an answer the contract allows
// (a deadlock PostgreSQL breaks is retried, never returned), and no token
// of the family survives.
func TestFamily_ConcurrentRotateRevokeDelete(t *testing.T) {
	db := mustOpen(t, freshSchema(t))
	ctx := context.Background()
	client := &latch.Client{ID: "app", Name: "App", AuthMethod: latch.AuthSecretBasic,
		AccessTokenFormat: latch.FormatOpaque, AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour}
	if err := db.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &latch.User{ID: "u1", Username: "alice", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	fam := &latch.Family{ID: "fam", ClientID: "app", UserID: "u1", SessionID: "sid",
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	token := func(kind latch.TokenKind, name string) *latch.Token {
		return &latch.Token{Hash: hashOf(string(kind) + name), Kind: kind, ID: name, ClientID: "app",
			Subject: "u1", FamilyID: "fam", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	issue := func(name string) latch.Issue {
		return latch.Issue{Refresh: token(latch.KindRefresh, name), Access: token(latch.KindAccess, name),
			JWT: &latch.IssuedJWT{Issuer: "https://issuer.example", JTI: name, ExpiresAt: now.Add(time.Hour)}}
	}
	first := issue("first")
	if err := db.CreateFamily(ctx, fam, first); err != nil {
		t.Fatal(err)
	}

	allowed := func(op string, err error) {
		if err == nil || errors.Is(err, latch.ErrReused) {
			return
		}
		switch latch.ErrorCode(err) {
		case latch.ENOTFOUND, latch.EUNAUTHORIZED:
			return
		}
		t.Errorf("%s: %v", op, err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, _, err := db.RotateRefresh(ctx, first.Refresh.Hash, now, 0, issue(fmt.Sprintf("r%d", i)))
			allowed("RotateRefresh", err)
		})
	}
	for i := range 4 {
		wg.Go(func() {
			h := first.Access.Hash
			if i%2 == 1 {
				h = first.Refresh.Hash
			}
			allowed("Revoke", db.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeOpaque, TokenHash: h,
				ExpiresAt: now.Add(time.Hour), RevokedAt: now}))
		})
	}
	wg.Go(func() { allowed("RevokeFamily", db.RevokeFamily(ctx, "fam", now)) })
	wg.Go(func() {
		_, err := db.RevokeFamilies(ctx, latch.FamilyFilter{UserID: "u1"}, now)
		allowed("RevokeFamilies", err)
	})
	wg.Go(func() { allowed("DeleteClient", db.DeleteClient(ctx, "app")) })
	wg.Wait()

	var tokens, families int
	if err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM families)`).
		Scan(&tokens, &families); err != nil {
		t.Fatal(err)
	}
	if tokens != 0 || families != 0 {
		t.Errorf("after DeleteClient: %d tokens, %d families left, want none", tokens, families)
	}
	// The JWT of the first issue was denylisted, by whichever revocation
	// of the family came first.
	if revoked, err := db.IsRevoked(ctx, "https://issuer.example", "first"); err != nil || !revoked {
		t.Errorf("IsRevoked(first) = %v, %v; want true", revoked, err)
	}
}
