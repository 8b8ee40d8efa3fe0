package bff

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-auth/latch/redis"
	"github.com/latch-auth/latch/sqlite"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch"
)

// The one conformance suite both stores pass.

func TestStore_SQLite(t *testing.T) {
	runStoreTests(t, func(t *testing.T) Store { return newSQLiteStore(t) })
}

func TestStore_Redis(t *testing.T) {
	if os.Getenv("LATCH_TEST_REDIS") == "" {
		t.Skip("LATCH_TEST_REDIS is not set; set it to a Redis URL (e.g. redis://127.0.0.1:6379) to run the Redis store tests")
	}
	runStoreTests(t, func(t *testing.T) Store { return newRedisStore(t) })
}

func newSQLiteStore(t testing.TB) *sqlite.BFFStore {
	t.Helper()
	s, err := sqlite.OpenBFF(context.Background(), filepath.Join(t.TempDir(), "bff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newRedisStore returns a store on the Redis of LATCH_TEST_REDIS, under a
// prefix of its own that is deleted at cleanup; it skips without it.
func newRedisStore(t testing.TB) *redis.BFFStore {
	t.Helper()
	u := os.Getenv("LATCH_TEST_REDIS")
	if u == "" {
		t.Skip("LATCH_TEST_REDIS is not set; set it to a Redis URL (e.g. redis://127.0.0.1:6379) to run the Redis store tests")
	}
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("LATCH_TEST_REDIS: %v", err)
	}
	c := goredis.NewClient(opt)
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("LATCH_TEST_REDIS=%s does not answer: %v", u, err)
	}
	prefix := "latch:bfftest:" + hex.EncodeToString(randBytes(t, 8)) + ":"
	t.Cleanup(func() {
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		c.Close()
	})
	return redis.NewBFFStore(c, prefix)
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func runStoreTests(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	// Microseconds: the stores keep no finer time.
	now := time.Now().Truncate(time.Microsecond)
	key := func(t *testing.T) []byte { return randBytes(t, 32) }
	// Sealed values are binary, NUL bytes included.
	val := func(t *testing.T) []byte { return append([]byte{0, 0xff, 0}, randBytes(t, 40)...) }

	t.Run("SessionRoundTrip", func(t *testing.T) {
		s := newStore(t)
		k, v := key(t), val(t)
		exp := now.Add(time.Hour)
		if err := s.CreateSession(ctx, k, v, exp, now); err != nil {
			t.Fatal(err)
		}
		got, gotExp, err := s.Session(ctx, k, now)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, v) || !gotExp.Equal(exp) {
			t.Fatalf("Session = %x, %v; want %x, %v", got, gotExp, v, exp)
		}
	})
	t.Run("CreateSession_Duplicate_IsConflict", func(t *testing.T) {
		s := newStore(t)
		k := key(t)
		if err := s.CreateSession(ctx, k, val(t), now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		err := s.CreateSession(ctx, k, val(t), now.Add(time.Hour), now)
		if latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("second create: %v, want ECONFLICT", err)
		}
	})
	t.Run("Session_Missing_IsNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, _, err := s.Session(ctx, key(t), now); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("Session: %v, want ErrNotFound", err)
		}
	})
	t.Run("Session_Expired_IsNotFound", func(t *testing.T) {
		s := newStore(t)
		k := key(t)
		exp := now.Add(time.Minute)
		if err := s.CreateSession(ctx, k, val(t), exp, now); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Session(ctx, k, exp.Add(-time.Microsecond)); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		if _, _, err := s.Session(ctx, k, exp); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("at expiry: %v, want ErrNotFound", err)
		}
	})
	t.Run("UpdateSession_KeepsExpiry", func(t *testing.T) {
		s := newStore(t)
		k, v2 := key(t), val(t)
		exp := now.Add(time.Hour)
		if err := s.CreateSession(ctx, k, val(t), exp, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateSession(ctx, k, v2, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, gotExp, err := s.Session(ctx, k, now)
		if err != nil || !bytes.Equal(got, v2) || !gotExp.Equal(exp) {
			t.Fatalf("after update: %x, %v, %v; want %x, %v", got, gotExp, err, v2, exp)
		}
	})
	t.Run("UpdateSession_DeletedOrExpired_DoesNotResurrect", func(t *testing.T) {
		s := newStore(t)
		k := key(t)
		exp := now.Add(time.Minute)
		if err := s.CreateSession(ctx, k, val(t), exp, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateSession(ctx, k, val(t), exp); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("update at expiry: %v, want ErrNotFound", err)
		}
		if err := s.DeleteSession(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateSession(ctx, k, val(t), now); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("update after delete: %v, want ErrNotFound", err)
		}
		if _, _, err := s.Session(ctx, k, now); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("Session after delete and update: %v, want ErrNotFound", err)
		}
	})
	t.Run("TouchSession_MovesExpiry", func(t *testing.T) {
		s := newStore(t)
		k := key(t)
		if err := s.CreateSession(ctx, k, val(t), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		later := now.Add(30 * time.Second)
		newExp := later.Add(time.Hour)
		if err := s.TouchSession(ctx, k, newExp, later); err != nil {
			t.Fatal(err)
		}
		_, gotExp, err := s.Session(ctx, k, now.Add(2*time.Minute))
		if err != nil || !gotExp.Equal(newExp) {
			t.Fatalf("after touch: %v, %v; want %v", gotExp, err, newExp)
		}
		if err := s.TouchSession(ctx, key(t), newExp, now); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("touch missing: %v, want ErrNotFound", err)
		}
		if err := s.TouchSession(ctx, k, newExp.Add(time.Hour), newExp); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("touch expired: %v, want ErrNotFound", err)
		}
	})
	t.Run("DeleteSession_Missing_IsNoError", func(t *testing.T) {
		s := newStore(t)
		if err := s.DeleteSession(ctx, key(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Purge_KeepsLiveRecords", func(t *testing.T) {
		s := newStore(t)
		live, dead := key(t), key(t)
		if err := s.CreateSession(ctx, live, val(t), now.Add(time.Hour), now); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, dead, val(t), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		later := now.Add(2 * time.Minute)
		n, err := s.Purge(ctx, later)
		if err != nil {
			t.Fatal(err)
		}
		if _, isRedis := s.(*redis.BFFStore); !isRedis && n != 1 {
			t.Fatalf("Purge removed %d records, want 1", n)
		}
		if _, _, err := s.Session(ctx, live, later); err != nil {
			t.Fatalf("live session after purge: %v", err)
		}
		if _, _, err := s.Session(ctx, dead, later); !errors.Is(err, latch.ErrNotFound) {
			t.Fatalf("expired session after purge: %v", err)
		}
	})
}

func TestOpenSQLite_FileIsPrivate(t *testing.T) {
	s := newSQLiteStore(t)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("database file mode %04o, want 0600", perm)
	}
}

func TestOpenSQLite_Reopen_KeepsSessions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bff.db")
	s, err := sqlite.OpenBFF(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k := randBytes(t, 32)
	if err := s.CreateSession(ctx, k, []byte("x"), now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.OpenBFF(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Session(ctx, k, now); err != nil {
		t.Fatalf("session after reopen: %v", err)
	}
}
