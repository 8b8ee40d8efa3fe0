package revfeed_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
	"github.com/latch-auth/latch/revfeed"
)

const issuer = "https://issuer.example"

// follower records what the feed passes on.
type follower struct {
	mu       sync.Mutex
	read     []*latch.Revocation
	complete int
}

func (f *follower) LogRead(page []*latch.Revocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read = append(f.read, page...)
}

func (f *follower) LogReadComplete(time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.complete++
}

// TestFeed_Read_SendsThisIssuersLiveEntries_AndKeepsTheFollowerInStep:
// after a sync, a follower at cursor 0 gets this issuer's JWT and the
// opaque token, not another issuer's JTI nor an expired entry, and its
// cursor moves past all four; the token cache (the Follower) saw every
// entry read.
func TestFeed_Read_SendsThisIssuersLiveEntries_AndKeepsTheFollowerInStep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second)
	store := latchtest.Store(t)
	for _, r := range []*latch.Revocation{
		{Kind: latch.RevokeJWT, Issuer: issuer, JTI: "ours", ExpiresAt: now.Add(time.Hour), RevokedAt: now},
		{Kind: latch.RevokeJWT, Issuer: "client-assertion:c1", JTI: "assertion", ExpiresAt: now.Add(time.Hour), RevokedAt: now},
		{Kind: latch.RevokeOpaque, TokenHash: make([]byte, 32), ExpiresAt: now.Add(time.Hour), RevokedAt: now},
		{Kind: latch.RevokeJWT, Issuer: issuer, JTI: "expired", ExpiresAt: now.Add(-time.Hour), RevokedAt: now},
	} {
		if err := store.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	fol := &follower{}
	f := revfeed.New(issuer, store, func() time.Time { return now }, slog.New(slog.DiscardHandler), fol)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()

	if err := f.Sync(ctx, f.SyncPoint()); err != nil {
		t.Fatal(err)
	}
	p, _, err := f.Read(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Entries {
		got = append(got, string(r.Kind)+":"+r.JTI)
	}
	if len(p.Entries) != 2 || p.Entries[0].JTI != "ours" || p.Entries[1].Kind != latch.RevokeOpaque {
		t.Fatalf("entries %v, want this issuer's JWT and the opaque token only", got)
	}
	if p.Next < 4 || p.Reset || p.NotReady {
		t.Fatalf("page next=%d reset=%v notReady=%v; want the cursor past all four entries", p.Next, p.Reset, p.NotReady)
	}
	fol.mu.Lock()
	n, c := len(fol.read), fol.complete
	fol.mu.Unlock()
	if n != 4 || c == 0 {
		t.Fatalf("the follower saw %d entries and %d complete reads; want all 4 and at least one", n, c)
	}

	// A cursor ahead of the log (a restored database) is answered with a reset.
	if p, _, err := f.Read(ctx, p.Next+100); err != nil || !p.Reset {
		t.Fatalf("cursor ahead of the log: reset=%v, %v; want a reset", p.Reset, err)
	}

	cancel()
	<-done
	if _, _, err := f.Read(context.Background(), 0); err != revfeed.ErrStopped {
		t.Fatalf("Read after Run ended: %v, want ErrStopped", err)
	}
}

func TestFeed_Acquire_CapsConnectionsPerClient(t *testing.T) {
	f := revfeed.New(issuer, latchtest.Store(t), time.Now, slog.New(slog.DiscardHandler), nil)
	var releases []func()
	for i := range revfeed.MaxConnsPerClient {
		release, ok := f.Acquire("c1")
		if !ok {
			t.Fatalf("connection %d refused under the cap of %d", i+1, revfeed.MaxConnsPerClient)
		}
		releases = append(releases, release)
	}
	if _, ok := f.Acquire("c1"); ok {
		t.Fatal("a connection over the cap was accepted")
	}
	if release, ok := f.Acquire("c2"); !ok {
		t.Fatal("another client was refused because of c1's connections")
	} else {
		release()
	}
	releases[0]()
	if _, ok := f.Acquire("c1"); !ok {
		t.Fatal("a connection was refused after one was released")
	}
}
