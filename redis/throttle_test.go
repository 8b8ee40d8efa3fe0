package redis_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch/internal/redistest"
	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/throttle"
	"github.com/latch-auth/latch/throttle/throttletest"
)

// TestThrottle_Contract runs the LoginThrottle contract (the rules of
// throttle.Config) against Redis; throttle.TestThrottle_Contract_Memory runs
// the same against the in-memory throttle.
func TestThrottle_Contract(t *testing.T) {
	redistest.URL(t) // skip once, not per case
	throttletest.Run(t, func(t *testing.T, cfg throttle.Config) throttle.Throttle {
		return redistest.Client(t, nil).Throttle("https://auth.example.com", "account", cfg)
	})
}

// raw is a plain go-redis client on LATCH_TEST_REDIS, to look at what the
// package wrote.
func raw(t *testing.T) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestThrottle_KeysAreHashed_AndExpireAfterForget: Redis never holds a
// username or an address, and every key lives Forget after its last
// failure, so Redis does not grow with the guesses.
func TestThrottle_KeysAreHashed_AndExpireAfterForget(t *testing.T) {
	prefix := redistest.Prefix(t)
	c := redistest.ClientWith(t, redis.Config{Prefix: prefix})
	cfg := throttle.Config{Threshold: 2, Base: time.Second, Max: time.Minute, Forget: time.Hour}
	ctx, now := context.Background(), time.Now()
	for _, scope := range []string{"account", "address"} {
		th := c.Throttle("https://auth.example.com", scope, cfg)
		for _, k := range []string{"user:alice", "203.0.113.7"} {
			if _, err := th.Fail(ctx, sha256.Sum256([]byte(k)), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := raw(t)
	keys, err := r.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("keys %v, want 4 (2 scopes × 2 keys)", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "alice") || strings.Contains(k, "203.0.113") {
			t.Errorf("key %q holds a username or an address in clear", k)
		}
		vals, err := r.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range vals {
			if strings.Contains(v, "alice") || strings.Contains(v, "203.0.113") {
				t.Errorf("key %q field %s = %q", k, f, v)
			}
		}
		ttl, err := r.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %q TTL %v, want at most Forget (1h)", k, ttl)
		}
	}
}

// TestThrottle_ConcurrentNodes_CountEveryFailure: failures sent at once by
// two nodes (two clients) are each counted: the script is atomic, so no
// read-modify-write loses one.
func TestThrottle_ConcurrentNodes_CountEveryFailure(t *testing.T) {
	prefix := redistest.Prefix(t)
	cfg := throttle.Config{Threshold: 1, Base: time.Millisecond, Max: 24 * time.Hour, Forget: 48 * time.Hour}
	nodes := []*redis.Throttle{
		redistest.ClientWith(t, redis.Config{Prefix: prefix}).Throttle("https://auth.example.com", "account", cfg),
		redistest.ClientWith(t, redis.Config{Prefix: prefix}).Throttle("https://auth.example.com", "account", cfg),
	}
	const n = 20
	key := sha256.Sum256([]byte("user:alice"))
	now := time.Now().Truncate(time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := nodes[i%2].Fail(context.Background(), key, now); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 20 failures over a threshold of 1: 1ms doubled 19 times.
	want := time.Millisecond << (n - 1)
	for i, node := range nodes {
		got, err := node.Blocked(context.Background(), key, now)
		if err != nil || got != want {
			t.Fatalf("node %d: Blocked = %v, %v; want %v (every failure counted once)", i, got, err, want)
		}
	}
}

// TestThrottle_ClosedClient_Errors: a throttle whose Redis is gone answers
// an error (the server then counts in memory), never a silent "not
// blocked".
func TestThrottle_ClosedClient_Errors(t *testing.T) {
	c := redistest.Client(t, nil)
	th := c.Throttle("https://auth.example.com", "account", throttle.Config{Threshold: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour})
	c.Close()
	ctx, key := context.Background(), sha256.Sum256([]byte("user:alice"))
	if _, err := th.Blocked(ctx, key, time.Now()); err == nil || !strings.HasPrefix(err.Error(), "redis: login throttle: read") {
		t.Errorf("Blocked on a closed client: %v", err)
	}
	if _, err := th.Fail(ctx, key, time.Now()); err == nil {
		t.Error("Fail on a closed client: no error")
	}
	if err := th.Reset(ctx, key); err == nil {
		t.Error("Reset on a closed client: no error")
	}
}
