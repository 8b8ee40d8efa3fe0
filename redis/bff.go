package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch"
)

// DefaultBFFPrefix is the prefix of every key BFFStore writes.
const DefaultBFFPrefix = "latch:bff:"

// BFFStore is the Backend-for-Frontend's session store (bff.Store) for
// several BFF nodes behind one load balancer: each record is a Redis hash {s: sealed bytes, e: expiry in unix
// microseconds} whose TTL is the record's expiry, so Redis drops it on
// time by itself.
//
// The expiry is also kept in the hash and compared with the caller's now,
// so that both stores answer the same under Config.Now (and the
// conformance tests run on a fixed clock); the TTL is the clean-up. Every
// read-check-write is one Lua script, atomic on the server.
type BFFStore struct {
	c      goredis.UniversalClient
	prefix string
	owned  bool // Close closes c
}

// OpenBFF connects to the Redis server at rawURL
// (redis://[user:password@]host:port/db, or rediss:// for TLS) and checks
// that it answers.
func OpenBFF(ctx context.Context, rawURL string) (*BFFStore, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bff: redis: %v; expected redis://host:port/db", err)
	}
	c := goredis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("bff: redis: cannot reach %s: %w", opt.Addr, err)
	}
	s := NewBFFStore(c, "")
	s.owned = true
	return s, nil
}

// NewBFFStore returns a Store on c whose keys start with prefix
// (DefaultBFFPrefix when ""). Close does not close c.
func NewBFFStore(c goredis.UniversalClient, prefix string) *BFFStore {
	if prefix == "" {
		prefix = DefaultBFFPrefix
	}
	return &BFFStore{c: c, prefix: prefix}
}

// Close closes the client if OpenBFF made it.
func (s *BFFStore) Close() error {
	if s.owned {
		return s.c.Close()
	}
	return nil
}

// bffKindSession names session records in their keys.
const bffKindSession = "session"

func (s *BFFStore) key(kind string, key []byte) string {
	return s.prefix + kind + ":" + hex.EncodeToString(key)
}

// bffTTL is the Redis TTL of a record that expires at expires: at least 1ms,
// since PX 0 is an error and a record expiring now is already gone for
// every reader.
func bffTTL(expires, now time.Time) int64 {
	return max(expires.Sub(now).Milliseconds(), 1)
}

func bffMicros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

var (
	// KEYS[1]; ARGV: sealed, expires_us, ttl_ms. 0 if the key exists.
	bffCreate = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
	// KEYS[1]; ARGV: sealed, now_us. 0 if missing or expired.
	bffUpdate = goredis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1])
return 1`)
	// KEYS[1]; ARGV: expires_us, now_us, ttl_ms. 0 if missing or expired.
	bffTouch = goredis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
)

func bffFail(op string, err error) error {
	return fmt.Errorf("bff: redis: %s: %w", op, err)
}

func (s *BFFStore) create(ctx context.Context, kind string, key, sealed []byte, expires, now time.Time) error {
	n, err := bffCreate.Run(ctx, s.c, []string{s.key(kind, key)}, sealed, bffMicros(expires), bffTTL(expires, now)).Int()
	if err != nil {
		return bffFail("create "+kind, err)
	}
	if n == 0 {
		return latch.Errorf(latch.ECONFLICT, "bff: redis: create %s: the record exists", kind)
	}
	return nil
}

// CreateSession implements Store.
func (s *BFFStore) CreateSession(ctx context.Context, key, sealed []byte, expires, now time.Time) error {
	return s.create(ctx, bffKindSession, key, sealed, expires, now)
}

// Session implements Store.
func (s *BFFStore) Session(ctx context.Context, key []byte, now time.Time) ([]byte, time.Time, error) {
	vals, err := s.c.HMGet(ctx, s.key(bffKindSession, key), "s", "e").Result()
	if err != nil {
		return nil, time.Time{}, bffFail("read session", err)
	}
	sealed, ok1 := vals[0].(string)
	e, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return nil, time.Time{}, bffFail("read session", fmt.Errorf("expiry %q is not a number", e))
	}
	if exp <= now.UnixMicro() {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	return []byte(sealed), time.UnixMicro(exp), nil
}

func (s *BFFStore) runUpdate(ctx context.Context, op string, script *goredis.Script, key []byte, args ...any) error {
	n, err := script.Run(ctx, s.c, []string{s.key(bffKindSession, key)}, args...).Int()
	if err != nil {
		return bffFail(op, err)
	}
	if n == 0 {
		return latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	return nil
}

// UpdateSession implements Store.
func (s *BFFStore) UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error {
	return s.runUpdate(ctx, "update session", bffUpdate, key, sealed, bffMicros(now))
}

// TouchSession implements Store.
func (s *BFFStore) TouchSession(ctx context.Context, key []byte, expires, now time.Time) error {
	return s.runUpdate(ctx, "touch session", bffTouch, key, bffMicros(expires), bffMicros(now), bffTTL(expires, now))
}

// DeleteSession implements Store.
func (s *BFFStore) DeleteSession(ctx context.Context, key []byte) error {
	if err := s.c.Del(ctx, s.key(bffKindSession, key)).Err(); err != nil {
		return bffFail("delete session", err)
	}
	return nil
}

// Purge implements Store: Redis expires records by their TTL.
func (*BFFStore) Purge(context.Context, time.Time) (int, error) { return 0, nil }
