// Package redistest connects the tests of several packages to the real
// Redis of LATCH_TEST_REDIS, each test under a key prefix of its own so
// that tests running at once (and other people's) never meet. It is test
// support: only _test.go files import it.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch/redis"
)

// URL returns LATCH_TEST_REDIS, or skips tb without it.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("LATCH_TEST_REDIS")
	if u == "" {
		tb.Skip("set LATCH_TEST_REDIS=redis://127.0.0.1:6379 to run the tests against Redis")
	}
	return u
}

// Prefix returns a key prefix no other test uses; every key under it is
// deleted at cleanup.
func Prefix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "latch:test:" + hex.EncodeToString(b) + ":"
	url := URL(tb)
	tb.Cleanup(func() {
		opt, err := goredis.ParseURL(url)
		if err != nil {
			tb.Errorf("redistest: %v", err)
			return
		}
		c := goredis.NewClient(opt)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("redistest: delete the keys under %s: %v", prefix, err)
		}
	})
	return prefix
}

// Client opens a redis.Client on LATCH_TEST_REDIS under a fresh Prefix,
// closed at cleanup; it skips tb without LATCH_TEST_REDIS. log may be nil.
func Client(tb testing.TB, log *slog.Logger) *redis.Client {
	tb.Helper()
	return ClientWith(tb, redis.Config{Prefix: Prefix(tb), Logger: log})
}

// ClientWith opens a redis.Client on LATCH_TEST_REDIS with cfg (its URL
// set here), closed at cleanup.
func ClientWith(tb testing.TB, cfg redis.Config) *redis.Client {
	tb.Helper()
	cfg.URL = URL(tb)
	c, err := redis.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
