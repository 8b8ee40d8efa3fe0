package bff

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch"
)

// DefaultRedisPrefix is the prefix of every key RedisStore writes.
const DefaultRedisPrefix = "latch:bff:"

// RedisStore is the Store for several BFF nodes behind one load balancer:
// each record is a Redis hash {s: sealed bytes, e: expiry in unix
// microseconds} whose TTL is the record's expiry, so Redis drops it on
// time by itself.
//
// The expiry is also kept in the hash and compared with the caller's now,
// so that both stores answer the same under Config.Now (and the
// conformance tests run on a fixed clock); the TTL is the clean-up. Every
// read-check-write is one Lua script, atomic on the server.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
	owned  bool // Close closes c
}

var _ Store = (*RedisStore)(nil)

// OpenRedis connects to the Redis server at rawURL
// (redis://[user:password@]host:port/db, or rediss:// for TLS) and checks
// that it answers.
func OpenRedis(ctx context.Context, rawURL string) (*RedisStore, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bff: redis: %v; expected redis://host:port/db", err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("bff: redis: cannot reach %s: %w", opt.Addr, err)
	}
	s := NewRedisStore(c, "")
	s.owned = true
	return s, nil
}

// NewRedisStore returns a Store on c whose keys start with prefix
// (DefaultRedisPrefix when ""). Close does not close c.
func NewRedisStore(c redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{c: c, prefix: prefix}
}

// Close closes the client if OpenRedis made it.
func (s *RedisStore) Close() error {
	if s.owned {
		return s.c.Close()
	}
	return nil
}

func (s *RedisStore) key(kind string, key []byte) string {
	return s.prefix + kind + ":" + hex.EncodeToString(key)
}

// ttl is the Redis TTL of a record that expires at expires: at least 1ms,
// since PX 0 is an error and a record expiring now is already gone for
// every reader.
func ttl(expires, now time.Time) int64 {
	return max(expires.Sub(now).Milliseconds(), 1)
}

func us(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

var (
	// KEYS[1]; ARGV: sealed, expires_us, ttl_ms. 0 if the key exists.
	redisCreate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
	// KEYS[1]; ARGV: sealed. The value stored under KEYS[1], set to
	// sealed if there was none.
	redisCreateKey = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`)
	// KEYS[1]; ARGV: sealed, now_us. 0 if missing or expired.
	redisUpdate = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1])
return 1`)
	// KEYS[1]; ARGV: expires_us, now_us, ttl_ms. 0 if missing or expired.
	redisTouch = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)
)

func redisFail(op string, err error) error {
	return fmt.Errorf("bff: redis: %s: %w", op, err)
}

func (s *RedisStore) create(ctx context.Context, kind string, key, sealed []byte, expires, now time.Time) error {
	n, err := redisCreate.Run(ctx, s.c, []string{s.key(kind, key)}, sealed, us(expires), ttl(expires, now)).Int()
	if err != nil {
		return redisFail("create "+kind, err)
	}
	if n == 0 {
		return latch.Errorf(latch.ECONFLICT, "bff: redis: create %s: the record exists", kind)
	}
	return nil
}

// CreateSession implements Store.
func (s *RedisStore) CreateSession(ctx context.Context, key, sealed []byte, expires, now time.Time) error {
	return s.create(ctx, kindSession, key, sealed, expires, now)
}

// Session implements Store.
func (s *RedisStore) Session(ctx context.Context, key []byte, now time.Time) ([]byte, time.Time, error) {
	vals, err := s.c.HMGet(ctx, s.key(kindSession, key), "s", "e").Result()
	if err != nil {
		return nil, time.Time{}, redisFail("read session", err)
	}
	sealed, ok1 := vals[0].(string)
	e, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return nil, time.Time{}, redisFail("read session", fmt.Errorf("expiry %q is not a number", e))
	}
	if exp <= now.UnixMicro() {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	return []byte(sealed), time.UnixMicro(exp), nil
}

func (s *RedisStore) runUpdate(ctx context.Context, op string, script *redis.Script, key []byte, args ...any) error {
	n, err := script.Run(ctx, s.c, []string{s.key(kindSession, key)}, args...).Int()
	if err != nil {
		return redisFail(op, err)
	}
	if n == 0 {
		return latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	return nil
}

// UpdateSession implements Store.
func (s *RedisStore) UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error {
	return s.runUpdate(ctx, "update session", redisUpdate, key, sealed, us(now))
}

// TouchSession implements Store.
func (s *RedisStore) TouchSession(ctx context.Context, key []byte, expires, now time.Time) error {
	return s.runUpdate(ctx, "touch session", redisTouch, key, us(expires), us(now), ttl(expires, now))
}

// DeleteSession implements Store.
func (s *RedisStore) DeleteSession(ctx context.Context, key []byte) error {
	if err := s.c.Del(ctx, s.key(kindSession, key)).Err(); err != nil {
		return redisFail("delete session", err)
	}
	return nil
}

// Purge implements Store: Redis expires records by their TTL.
func (*RedisStore) Purge(context.Context, time.Time) (int, error) { return 0, nil }

// CreateKey implements Store. A key record is a plain string without TTL
// under PREFIX + "key:" + name.
func (s *RedisStore) CreateKey(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	v, err := redisCreateKey.Run(ctx, s.c, []string{s.prefix + "key:" + name}, sealed).Text()
	if err != nil {
		return nil, redisFail("create key", err)
	}
	return []byte(v), nil
}
