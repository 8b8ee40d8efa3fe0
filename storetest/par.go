package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var pushedRequestTests = []test{
	{"Create_RoundTripsEveryField", testPushedRoundTrip},
	{"Create_Duplicate_IsConflict", testPushedDuplicate},
	{"Get_Missing_IsNotFound", testPushedMissing},
	{"Use_DeletesIt_SecondUseIsNotFound", testPushedUseOnce},
	{"Use_Expired_IsUnauthorized", testPushedUseExpired},
	{"Use_Concurrent_ExactlyOneWins", testPushedUseConcurrent},
	{"DeleteClient_RemovesItsRequests", testPushedDeleteClient},
	{"PurgeExpired_RemovesExpiredOnly", testPushedPurge},
}

func newPushed(name string) *latch.PushedRequest {
	return &latch.PushedRequest{
		Hash:      sum("request_uri " + name),
		ClientID:  "app",
		Params:    "client_id=app&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&scope=openid+%C3%BC&state=" + name,
		CreatedAt: base,
		ExpiresAt: base.Add(90 * time.Second),
	}
}

func checkPushed(tb testing.TB, want, got *latch.PushedRequest) {
	tb.Helper()
	var d diff
	d.bytes("Hash", want.Hash, got.Hash)
	d.str("ClientID", want.ClientID, got.ClientID)
	d.str("Params", want.Params, got.Params)
	d.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	d.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	d.check(tb, "pushed request")
}

func mustCreatePushed(tb testing.TB, s latch.Store, p *latch.PushedRequest) {
	tb.Helper()
	if err := s.CreatePushedRequest(ctx(tb), p); err != nil {
		tb.Fatalf("CreatePushedRequest: %v", err)
	}
}

func mustPushed(tb testing.TB, s latch.Store, hash []byte) *latch.PushedRequest {
	tb.Helper()
	p, err := s.PushedRequest(ctx(tb), hash)
	if err != nil {
		tb.Fatalf("PushedRequest: %v", err)
	}
	return p
}

func testPushedRoundTrip(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	want := newPushed("a")
	mustCreatePushed(t, s, want)
	checkPushed(t, want, mustPushed(t, s, want.Hash))
	// Read again: a read never uses it up.
	checkPushed(t, want, mustPushed(t, s, want.Hash))
}

func testPushedDuplicate(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	mustCreatePushed(t, s, newPushed("a"))
	other := newPushed("a")
	other.Params = "state=other"
	wantCode(t, "CreatePushedRequest(duplicate)", s.CreatePushedRequest(ctx(t), other), latch.ErrConflict)
	checkPushed(t, newPushed("a"), mustPushed(t, s, other.Hash))
}

func testPushedMissing(t *testing.T, s latch.Store) {
	_, err := s.PushedRequest(ctx(t), sum("nope"))
	wantCode(t, "PushedRequest(missing)", err, latch.ErrNotFound)
	wantCode(t, "UsePushedRequest(missing)", s.UsePushedRequest(ctx(t), sum("nope"), base), latch.ErrNotFound)
}

func testPushedUseOnce(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	p := newPushed("a")
	mustCreatePushed(t, s, p)
	if err := s.UsePushedRequest(ctx(t), p.Hash, base.Add(89*time.Second)); err != nil {
		t.Fatalf("UsePushedRequest: %v", err)
	}
	_, err := s.PushedRequest(ctx(t), p.Hash)
	wantCode(t, "PushedRequest after use", err, latch.ErrNotFound)
	wantCode(t, "UsePushedRequest again", s.UsePushedRequest(ctx(t), p.Hash, base), latch.ErrNotFound)
}

func testPushedUseExpired(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	p := newPushed("a")
	mustCreatePushed(t, s, p)
	err := s.UsePushedRequest(ctx(t), p.Hash, p.ExpiresAt)
	if latch.ErrorCode(err) != latch.EUNAUTHORIZED {
		t.Fatalf("UsePushedRequest at its expiry = %v, want %s", err, latch.EUNAUTHORIZED)
	}
}

func testPushedUseConcurrent(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	p := newPushed("a")
	mustCreatePushed(t, s, p)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.UsePushedRequest(ctx(t), p.Hash, base) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case latch.ErrorCode(err) != latch.ENOTFOUND:
			t.Errorf("UsePushedRequest = %v, want nil or %s", err, latch.ENOTFOUND)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent uses succeeded, want exactly 1", won, n)
	}
}

func testPushedDeleteClient(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	p := newPushed("a")
	mustCreatePushed(t, s, p)
	if err := s.DeleteClient(ctx(t), "app"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	_, err := s.PushedRequest(ctx(t), p.Hash)
	wantCode(t, "PushedRequest of a deleted client", err, latch.ErrNotFound)
}

func testPushedPurge(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	old, live := newPushed("old"), newPushed("live")
	old.ExpiresAt = base.Add(-time.Second)
	mustCreatePushed(t, s, old)
	mustCreatePushed(t, s, live)
	if n := mustPurgeExpired(t, s, base); n != 1 {
		t.Errorf("PurgeExpired = %d, want 1", n)
	}
	_, err := s.PushedRequest(ctx(t), old.Hash)
	wantCode(t, "PushedRequest after purge", err, latch.ErrNotFound)
	checkPushed(t, live, mustPushed(t, s, live.Hash))
}
