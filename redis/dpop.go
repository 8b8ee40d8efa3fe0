package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DPoPReplayCache is a dpop.ReplayCache in Redis: every resource server
// (or gateway) of a deployment that uses the same Redis, prefix and scope
// refuses a DPoP proof already used at any of them (RFC 9449 §11.1). One
// SET NX with a TTL per proof: a key is created only if absent, and Redis
// forgets it when the proof could no longer be accepted anyway, so Redis
// holds one key per proof of the last proof lifetime and needs no bound of
// its own. A key's name is PREFIX + "dpop:" + scope + ":" + the hex of
// SHA-256 of the proof's key thumbprint and jti. When Redis does not
// answer, Seen returns the error and the proof is refused (the checker
// answers it as unavailable): a replay is never let through unchecked.
type DPoPReplayCache struct {
	rdb    *goredis.Client
	prefix string
	now    func() time.Time
}

// DPoPReplayCache returns the replay cache of scope (e.g. the API's
// audience: services that share a scope share their proofs' jti). now is
// the dpop.Checker's clock (time.Now when nil): the TTL of each key is
// counted from it.
func (c *Client) DPoPReplayCache(scope string, now func() time.Time) *DPoPReplayCache {
	if now == nil {
		now = time.Now
	}
	return &DPoPReplayCache{rdb: c.rdb, prefix: c.prefix + "dpop:" + scope + ":", now: now}
}

// Seen implements dpop.ReplayCache.
func (r *DPoPReplayCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	ttl := until.Sub(r.now())
	if ttl <= 0 {
		// Past its time: a proof this old is refused by its iat.
		return false, nil
	}
	h := sha256.Sum256([]byte(key))
	err := r.rdb.SetArgs(ctx, r.prefix+hex.EncodeToString(h[:]), 1, goredis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, goredis.Nil): // NX: the key exists
		return true, nil
	}
	return false, fmt.Errorf("redis: DPoP replay cache: %w", err)
}
