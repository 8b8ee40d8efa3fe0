package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latch-auth/latch/throttle"
)

// Throttle is one scope of the login back-off in Redis, shared by every
// node that uses the same Redis, prefix and issuer; it implements
// throttle.Throttle with the same rules as the server's in-memory one:
// Threshold free failures, then a back-off of Base doubling per further
// failure up to Max, failures forgotten Forget after the last one. (That
// a refused attempt does not count and that a success resets accounts
// only are the server's doing: it does not call Fail or Reset then.)
//
// Each key is a hash {n: failures, l: last failure, u: end of the
// back-off}, times in unix microseconds of the caller's clock, so that it
// answers exactly as the in-memory throttle under an injected clock; its
// TTL (Forget, renewed by every failure) is what keeps Redis from
// growing. Its name is PREFIX + "throttle:" + scope + ":" + the hex of
// SHA-256(issuer, scope, the server's SHA-256 of the account or address):
// no username or address appears in Redis. (A hash of an IPv4 address can
// still be found by trying them all: guard Redis like the database.)
type Throttle struct {
	rdb    *goredis.Client
	prefix string
	salt   []byte
	cfg    throttle.Config
}

var _ throttle.Throttle = (*Throttle)(nil)

// Throttle returns the throttle of one scope ("account", "address") of
// the deployment issuer, with the rules of cfg (taken as valid:
// throttle.Config.Validate; its Entries bound is the in-memory one's, here
// every key expires Forget after its last failure). The issuer and scope
// are hashed into the keys, so deployments sharing a Redis and scopes
// sharing a key do not meet.
func (c *Client) Throttle(issuer, scope string, cfg throttle.Config) *Throttle {
	return &Throttle{
		rdb:    c.rdb,
		prefix: c.prefix + "throttle:" + scope + ":",
		salt:   []byte(issuer + "\x00" + scope + "\x00"),
		cfg:    cfg,
	}
}

func (t *Throttle) key(k [32]byte) string {
	h := sha256.New()
	h.Write(t.salt)
	h.Write(k[:])
	return t.prefix + hex.EncodeToString(h.Sum(nil))
}

// throttleFail counts one failure atomically: the read, the forgetting,
// the count and the new back-off are one step on the server, whichever
// node sends it. Times are integer microseconds, formatted with %d: Lua
// numbers are doubles, exact to 2^53 (the year 2255 in microseconds), but
// Redis would turn them into "1.7e+15" strings with 14 digits.
//
// KEYS[1]; ARGV: now, threshold, base, max, forget (µs), ttl (ms).
// Returns 1 when the failure started or lengthened a back-off, else 0.
var throttleFail = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'n', 'l', 'u')
local now = tonumber(ARGV[1])
local n = tonumber(r[1]) or 0
if r[2] and now - tonumber(r[2]) >= tonumber(ARGV[5]) then n = 0 end
n = n + 1
local threshold = tonumber(ARGV[2])
local untl = r[3] or '0'
local backoff = 0
if n >= threshold then
  local d = tonumber(ARGV[4])
  local k = n - threshold
  if k < 62 then d = math.min(d, tonumber(ARGV[3]) * 2 ^ k) end
  untl = string.format('%d', now + d)
  backoff = 1
end
redis.call('HSET', KEYS[1], 'n', string.format('%d', n), 'l', ARGV[1], 'u', untl)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return backoff`)

func us(d time.Duration) int64 { return d.Microseconds() }

func fail(op string, err error) error { return fmt.Errorf("redis: login throttle: %s: %w", op, err) }

// Blocked implements throttle.Throttle: one HMGET.
func (t *Throttle) Blocked(ctx context.Context, key [32]byte, now time.Time) (time.Duration, error) {
	vals, err := t.rdb.HMGet(ctx, t.key(key), "l", "u").Result()
	if err != nil {
		return 0, fail("read", err)
	}
	lastStr, ok1 := vals[0].(string)
	untilStr, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return 0, nil // no failure remembered
	}
	last, err1 := strconv.ParseInt(lastStr, 10, 64)
	until, err2 := strconv.ParseInt(untilStr, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fail("read", fmt.Errorf("key holds %q and %q, not times in microseconds", lastStr, untilStr))
	}
	n := now.UnixMicro()
	if n-last >= us(t.cfg.Forget) {
		return 0, nil // forgotten; the TTL removes it
	}
	if d := until - n; d > 0 {
		return time.Duration(d) * time.Microsecond, nil
	}
	return 0, nil
}

// Fail implements throttle.Throttle: one script run.
func (t *Throttle) Fail(ctx context.Context, key [32]byte, now time.Time) (bool, error) {
	n, err := throttleFail.Run(ctx, t.rdb, []string{t.key(key)},
		now.UnixMicro(), t.cfg.Threshold, us(t.cfg.Base), us(t.cfg.Max), us(t.cfg.Forget),
		max(t.cfg.Forget.Milliseconds(), 1)).Int()
	if err != nil {
		return false, fail("count a failure", err)
	}
	return n == 1, nil
}

// Reset implements throttle.Throttle: one DEL.
func (t *Throttle) Reset(ctx context.Context, key [32]byte) error {
	if err := t.rdb.Del(ctx, t.key(key)).Err(); err != nil {
		return fail("reset", err)
	}
	return nil
}
