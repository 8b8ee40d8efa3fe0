package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var concurrencyTests = []test{
	{"CreateAndRevoke_16Goroutines_NoErrorNoLostWrite", testConcurrentWrites},
	{"IssueAndRotate_64Each_EveryAnswerIsItsOwn", testConcurrentIssueAndRotate},
}

// 64 issuances and 64 refresh rotations at once, and among them a few
// issuances that repeat a stored hash: a store that gathers concurrent
// writes into one transaction must still answer each caller with its own
// result. Each rotation gets its own token and family back and its own
// successor is stored; each duplicate fails alone with ECONFLICT, and
// every other write is there afterwards.
func testConcurrentIssueAndRotate(t *testing.T, s latch.Store) {
	const n = 64
	grantSetup(t, s)
	fams := make([]*latch.Family, n)
	for i := range n {
		fams[i] = mustRedeem(t, s, "u1", fmt.Sprint("c", i), opaqueIssue)
	}
	taken := newToken("app", "taken")
	mustCreateToken(t, s, taken)
	now := base.Add(time.Hour)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok := newToken("app", fmt.Sprint("issued-", i))
			if i%16 == 0 {
				dup := *taken
				dup.ID = fmt.Sprint("dup-", i)
				err := s.CreateToken(ctx(t), &dup)
				wantCode(t, fmt.Sprintf("CreateToken %d of a stored hash", i), err, latch.ErrConflict)
				return
			}
			if err := s.CreateToken(ctx(t), tok); err != nil {
				t.Errorf("CreateToken %d: %v", i, err)
				return
			}
			checkToken(t, tok, mustToken(t, s, tok.Hash))
		})
		wg.Go(func() {
			f := fams[i]
			rt := refreshOf(f, fmt.Sprint("c", i))
			next := opaqueIssue(f, fmt.Sprint("next-", i))
			tok, fam, err := s.RotateRefresh(ctx(t), rt.Hash, now, grace, next)
			if err != nil {
				t.Errorf("RotateRefresh %d: %v", i, err)
				return
			}
			if tok.ID != rt.ID || fam.ID != f.ID {
				t.Errorf("RotateRefresh %d answered token %s of family %s, want %s of %s", i, tok.ID, fam.ID, rt.ID, f.ID)
			}
			wantLive(t, s, next.Refresh, next.Access)
		})
	}
	wg.Wait()
	checkToken(t, taken, mustToken(t, s, taken.Hash))
}

// Sixteen goroutines issue tokens, read them back, and revoke JWTs and
// some of their own opaque tokens at once, as a busy server does. Every
// call must succeed (no SQLITE_BUSY, no serialization failure left to the
// caller), and afterwards every write must be there exactly once.
func testConcurrentWrites(t *testing.T, s latch.Store) {
	const (
		workers   = 16
		perWorker = 20
	)
	mustCreateClient(t, s, newClient("app"))
	type result struct {
		kept, revoked []*latch.Token
		seqs          []int64
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			res := &results[w]
			for i := range perWorker {
				tok := newToken("app", fmt.Sprintf("w%d-t%d", w, i))
				if err := s.CreateToken(ctx(t), tok); err != nil {
					t.Errorf("worker %d: CreateToken: %v", w, err)
					return
				}
				if _, err := s.Token(ctx(t), tok.Hash); err != nil {
					t.Errorf("worker %d: Token right after CreateToken: %v", w, err)
					return
				}
				r := jwtRevocation("https://issuer.example", fmt.Sprintf("w%d-j%d", w, i))
				if i%4 == 3 {
					r = opaqueRevocation(tok.Hash)
					res.revoked = append(res.revoked, tok)
				} else {
					res.kept = append(res.kept, tok)
				}
				if err := s.Revoke(ctx(t), r); err != nil {
					t.Errorf("worker %d: Revoke: %v", w, err)
					return
				}
				res.seqs = append(res.seqs, r.Seq)
				if _, err := s.IsRevoked(ctx(t), "https://issuer.example", "w0-j0"); err != nil {
					t.Errorf("worker %d: IsRevoked: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[int64]bool{}
	for w, res := range results {
		for i, seq := range res.seqs {
			if seen[seq] {
				t.Fatalf("Seq %d handed out twice", seq)
			}
			seen[seq] = true
			if i > 0 && seq <= res.seqs[i-1] {
				t.Errorf("worker %d: Seq %d after %d, want increasing", w, seq, res.seqs[i-1])
			}
		}
		for _, tok := range res.kept {
			checkToken(t, tok, mustToken(t, s, tok.Hash))
		}
		for _, tok := range res.revoked {
			_, err := s.Token(ctx(t), tok.Hash)
			wantCode(t, "Token after concurrent Revoke(opaque)", err, latch.ErrNotFound)
		}
	}
	feed := mustRevocationsSince(t, s, 0, workers*perWorker+10)
	if len(feed) != workers*perWorker {
		t.Fatalf("feed has %d entries, want %d", len(feed), workers*perWorker)
	}
	for i, r := range feed {
		if !seen[r.Seq] {
			t.Errorf("feed entry %d has Seq %d no Revoke returned", i, r.Seq)
		}
		if i > 0 && r.Seq <= feed[i-1].Seq {
			t.Errorf("feed out of order at %d: %d after %d", i, r.Seq, feed[i-1].Seq)
		}
	}
}

var contextTests = []test{
	{"Cancelled_EveryMethodFailsPromptly", testCancelled},
}

// A cancelled request must fail fast with an error that says so, never
// look like "not found" (introspection would answer inactive for the wrong
// reason, or worse, a write would be assumed done), and never write.
func testCancelled(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	tok := newToken("app", "present")
	mustCreateToken(t, s, tok)
	mustCreateKey(t, s, newKey("k1", base))
	mustCreateUser(t, s, newUser("u1", "alice"))
	sess := newSession("u1", "present")
	mustCreateSession(t, s, sess)
	code := newCode("u1", "present")
	mustCreateCode(t, s, code)
	fam := mustRedeem(t, s, "u1", "redeemed", opaqueIssue)
	rt := refreshOf(fam, "redeemed")

	c, cancel := context.WithCancel(ctx(t))
	cancel()
	fresh := newToken("app", "fresh")
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateClient", func() error { return s.CreateClient(c, newClient("new")) }},
		{"Client", func() error { _, err := s.Client(c, "app"); return err }},
		{"Clients", func() error { _, err := s.Clients(c); return err }},
		{"UpdateClient", func() error { return s.UpdateClient(c, newClient("app")) }},
		{"DeleteClient", func() error { return s.DeleteClient(c, "app") }},
		{"CreateToken", func() error { return s.CreateToken(c, fresh) }},
		{"Token", func() error { _, err := s.Token(c, tok.Hash); return err }},
		{"Revoke", func() error { return s.Revoke(c, opaqueRevocation(tok.Hash)) }},
		{"IsRevoked", func() error { _, err := s.IsRevoked(c, "https://issuer.example", "x"); return err }},
		{"RevocationsSince", func() error { _, err := s.RevocationsSince(c, 0, 10); return err }},
		{"CreateKey", func() error { return s.CreateKey(c, newKey("k2", base)) }},
		{"Keys", func() error { _, err := s.Keys(c); return err }},
		{"UpdateKey", func() error { return s.UpdateKey(c, newKey("k1", base)) }},
		{"CreateUser", func() error { return s.CreateUser(c, newUser("u2", "bob")) }},
		{"User", func() error { _, err := s.User(c, "u1"); return err }},
		{"UserByName", func() error { _, err := s.UserByName(c, "alice"); return err }},
		{"Users", func() error { _, err := s.Users(c); return err }},
		{"UpdateUser", func() error { return s.UpdateUser(c, newUser("u1", "renamed")) }},
		{"DeleteUser", func() error { return s.DeleteUser(c, "u1") }},
		{"CreateSession", func() error { return s.CreateSession(c, newSession("u1", "fresh")) }},
		{"Session", func() error { _, err := s.Session(c, sess.IDHash); return err }},
		{"TouchSession", func() error { return s.TouchSession(c, sess.IDHash, base.Add(time.Hour), base.Add(2*time.Hour)) }},
		{"DeleteSession", func() error { return s.DeleteSession(c, sess.IDHash) }},
		{"DeleteUserSessions", func() error { _, err := s.DeleteUserSessions(c, "u1"); return err }},
		{"CreateCode", func() error { return s.CreateCode(c, newCode("u1", "fresh")) }},
		{"Code", func() error { _, err := s.Code(c, code.Hash); return err }},
		{"RedeemCode", func() error {
			return s.RedeemCode(c, code.Hash, base, familyOf(code), opaqueIssue(familyOf(code), "present"))
		}},
		{"Family", func() error { _, err := s.Family(c, fam.ID); return err }},
		{"RefreshChain", func() error { _, _, _, err := s.RefreshChain(c, rt.Hash); return err }},
		{"RotateRefresh", func() error {
			_, _, err := s.RotateRefresh(c, rt.Hash, base, grace, opaqueIssue(fam, "next"))
			return err
		}},
		{"RevokeFamily", func() error { return s.RevokeFamily(c, fam.ID, base) }},
		{"RevokeFamilies", func() error {
			_, err := s.RevokeFamilies(c, latch.FamilyFilter{UserID: "u1"}, base)
			return err
		}},
		{"PurgeExpired", func() error { _, err := s.PurgeExpired(c, base.Add(time.Hour)); return err }},
		{"Ping", func() error { return s.Ping(c) }},
	}
	for _, tc := range calls {
		start := time.Now()
		err := tc.call()
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s with a cancelled context took %v", tc.name, d)
		}
		switch {
		case err == nil:
			t.Errorf("%s with a cancelled context: err = nil", tc.name)
		case errors.Is(err, latch.ErrNotFound):
			t.Errorf("%s with a cancelled context: err = %v, looks like not found", tc.name, err)
		case !errors.Is(err, context.Canceled):
			t.Errorf("%s with a cancelled context: err = %v, want errors.Is(err, context.Canceled)", tc.name, err)
		}
	}

	// Nothing was written or removed.
	checkClient(t, newClient("app"), mustClient(t, s, "app"))
	checkToken(t, tok, mustToken(t, s, tok.Hash))
	if _, err := s.Token(ctx(t), fresh.Hash); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("CreateToken with a cancelled context stored the token (Token: %v)", err)
	}
	if rs := mustRevocationsSince(t, s, 0, 10); len(rs) != 0 {
		t.Errorf("Revoke with a cancelled context wrote %d entries", len(rs))
	}
	if ks := mustKeys(t, s); len(ks) != 1 {
		t.Errorf("CreateKey with a cancelled context: %d keys, want 1", len(ks))
	}
	checkUser(t, newUser("u1", "alice"), mustUser(t, s, "u1"))
	if us := mustUsers(t, s); len(us) != 1 {
		t.Errorf("CreateUser with a cancelled context: %d users, want 1", len(us))
	}
	checkSession(t, sess, mustSession(t, s, sess.IDHash))
	wantNoSession(t, s, "created with a cancelled context", newSession("u1", "fresh").IDHash)
	if _, err := s.Code(ctx(t), newCode("u1", "fresh").Hash); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("CreateCode with a cancelled context stored the code (Code: %v)", err)
	}
	checkCode(t, code, mustCode(t, s, code.Hash))
	checkFamily(t, familyOf(newCode("u1", "redeemed")), mustFamily(t, s, fam.ID))
	checkToken(t, rt, mustToken(t, s, rt.Hash))
	wantGone(t, s, "written with a cancelled context", opaqueIssue(fam, "next").Refresh)
}
