package redis_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/dpop"
	"github.com/latch-auth/latch/internal/redistest"
)

func TestDPoPReplayCache_SeenOnceAcrossNodes_ForgetsAfterTTL(t *testing.T) {
	c := redistest.Client(t, nil)
	ctx := context.Background()
	a, b := c.DPoPReplayCache("api", nil), c.DPoPReplayCache("api", nil)
	until := time.Now().Add(2 * time.Second)
	if seen, err := a.Seen(ctx, "jkt jti-1", until); seen || err != nil {
		t.Fatalf("first: %v %v", seen, err)
	}
	// Another node (another cache value on the same Redis) sees it.
	if seen, err := b.Seen(ctx, "jkt jti-1", until); !seen || err != nil {
		t.Fatalf("replay on another node: %v %v", seen, err)
	}
	// Another scope does not.
	if seen, err := c.DPoPReplayCache("other-api", nil).Seen(ctx, "jkt jti-1", until); seen || err != nil {
		t.Fatalf("other scope: %v %v", seen, err)
	}
	// Redis forgets it after its time (polled, bounded).
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := a.Seen(ctx, "jkt jti-1", time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key outlived its TTL")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDPoPReplayCache_ConcurrentReplays_OneWins(t *testing.T) {
	c := redistest.Client(t, nil)
	r := c.DPoPReplayCache("api", nil)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			seen, err := r.Seen(context.Background(), "jkt jti-race", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if !seen {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d requests saw the proof as new", fresh.Load())
	}
}

// Through a dpop.Checker: a proof accepted by one node is a replay at
// another; with Redis unreachable, proofs are refused, not accepted.
func TestDPoPReplayCache_WithChecker(t *testing.T) {
	c := redistest.Client(t, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, _ := dpop.NewProver(key)
	proof, _ := p.Proof("GET", "https://api.example/x", "tok", "")
	req := dpop.Request{Method: "GET", URL: "https://api.example/x", AccessToken: "tok"}
	node := func(rc dpop.ReplayCache) *dpop.Checker {
		ch, err := dpop.New(dpop.Config{Replay: rc})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	if _, err := node(c.DPoPReplayCache("api", nil)).Check(context.Background(), proof, req); err != nil {
		t.Fatal(err)
	}
	if _, err := node(c.DPoPReplayCache("api", nil)).Check(context.Background(), proof, req); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("replay at node 2: %v", err)
	}
	c.Close() // Redis gone for this client
	proof2, _ := p.Proof("GET", "https://api.example/x", "tok", "")
	if _, err := node(c.DPoPReplayCache("api", nil)).Check(context.Background(), proof2, req); !errors.Is(err, dpop.ErrReplayUnavailable) {
		t.Fatalf("Redis closed: %v", err)
	}
}
