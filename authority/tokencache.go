package authority

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/tokencache"
)

// TokenCache keeps opaque access tokens read from the store, so that the
// introspection or token exchange of a token seen recently costs a map
// lookup instead of a database read. That read was about half of an opaque
// introspection's CPU (BENCHMARKS.md, "Profile"), and resource servers
// introspect the same tokens again and again (one hashed point lookup, in
// memory).
//
// It must never answer for a token that is gone. It relies on the rule that
// every deletion of an opaque token appends an entry to the revocation log
// in the same transaction (RFC 7009 revocation, family revocation, client
// deletion: see latch.RevocationStore and latch.GrantStore):
//   - deletions made through this server drop the entries concerned before
//     the store call returns to the handler (see Wrap);
//   - deletions made by another process (the CLI, another node on the same
//     PostgreSQL) are read from the log by the revocation feed's
//     broadcaster, every revocationFeedPoll, which drops their entries;
//   - the cache is used only while the feed's last complete read of the
//     log began less than staleLimit ago, so a stopped or failing feed
//     cannot leave a revoked token active: the cache is then bypassed.
//
// A revocation made by another process therefore takes effect here within
// one poll of the log (100 ms) plus that read; one made through this server,
// at once. Entries also live at most maxAge, as a bound on the damage of a
// deletion path that forgot the log, and never past the token's expiry.
//
// Only access tokens are cached: a refresh token's state changes at every
// rotation without a revocation entry. Unknown tokens are not cached, so the
// cache holds only tokens that exist, and at most max of them.
type TokenCache struct {
	maxAge     time.Duration
	staleLimit time.Duration
	now        func() time.Time

	// fresh is when the feed's last complete read of the revocation log
	// began (UnixNano); 0 until the first.
	fresh atomic.Int64

	// entries owns the bound, the eviction and the generation counter
	// that keeps a store read begun before a drop from being cached after
	// it (the token may have been deleted in between).
	entries *tokencache.Cache[*latch.Token]

	// hits and misses count the lookups of get, for /metrics.
	hits, misses atomic.Uint64
}

const (
	// tokenCacheMaxAge bounds an entry's life whatever the log says.
	tokenCacheMaxAge = 10 * time.Second
	// TokenCacheStalePolls is how many polls of the revocation feed old
	// the feed's last complete read may be for the cache to be used.
	TokenCacheStalePolls = 10
)

// NewTokenCache returns a cache of at most max tokens, kept in step by a
// revocation feed that reads the log every poll (see LogRead).
func NewTokenCache(max int, poll time.Duration, now func() time.Time) *TokenCache {
	return &TokenCache{
		maxAge: tokenCacheMaxAge, staleLimit: TokenCacheStalePolls * poll, now: now,
		entries: tokencache.New[*latch.Token](max),
	}
}

// tokenCacheKey returns the map key of a token hash; false for a hash that
// is not a SHA-256 (never cached).
func tokenCacheKey(hash []byte) (*[32]byte, bool) {
	if len(hash) != 32 {
		return nil, false
	}
	return (*[32]byte)(hash), true
}

// usable reports whether the feed has read the log recently enough at now
// for cached entries to be trusted.
func (c *TokenCache) usable(now time.Time) bool {
	f := c.fresh.Load()
	return f != 0 && now.Sub(time.Unix(0, f)) < c.staleLimit
}

// get returns the cached token with hash, if any and usable, and the
// generation to pass to put after a store read.
func (c *TokenCache) get(hash []byte) (*latch.Token, uint64) {
	gen := c.entries.Generation()
	k, ok := tokenCacheKey(hash)
	if !ok {
		return nil, gen
	}
	now := c.now()
	t, hit := c.entries.Get(k, now)
	if !hit || !c.usable(now) {
		c.misses.Add(1)
		return nil, gen
	}
	c.hits.Add(1)
	return t, gen
}

// put caches t, read from the store after get returned gen, unless
// something was dropped since.
func (c *TokenCache) put(hash []byte, t *latch.Token, gen uint64) {
	k, ok := tokenCacheKey(hash)
	if !ok || t.Kind != latch.KindAccess {
		return
	}
	now := c.now()
	if !c.usable(now) {
		return
	}
	until := now.Add(c.maxAge)
	if t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	c.entries.Put(k, t, until, now, gen)
}

// drop forgets the tokens with these hashes.
func (c *TokenCache) drop(hashes ...[]byte) {
	for _, h := range hashes {
		if k, ok := tokenCacheKey(h); ok {
			c.entries.Drop(k)
		}
	}
}

// clear forgets every token: after a deletion whose tokens are not known
// here (a family, a client, a user).
func (c *TokenCache) clear() { c.entries.Flush() }

// LogRead is called by the feed for every page it reads from the
// revocation log: the opaque tokens named there are gone.
func (c *TokenCache) LogRead(page []*latch.Revocation) {
	for _, r := range page {
		if r.Kind == latch.RevokeOpaque {
			c.drop(r.TokenHash)
		}
	}
}

// LogReadComplete is called by the feed after a complete read of the log
// that began at started: every deletion committed before started has been
// passed to LogRead.
func (c *TokenCache) LogReadComplete(started time.Time) {
	c.fresh.Store(started.UnixNano())
}

// Len is the number of cached entries, for the metrics gauge.
func (c *TokenCache) Len() int { return c.entries.Len() }

// Lookups returns the counts of lookups that found a usable entry and of
// those that did not, for the metrics.
func (c *TokenCache) Lookups() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Wrap returns store with the cache kept in step with it: every method
// that may delete opaque tokens drops what it may have deleted from the
// cache before returning. A server hands the wrapped store to everything
// that writes, so that its own deletions take effect here at once.
func (c *TokenCache) Wrap(store latch.Store) latch.Store {
	return tokenCacheStore{Store: store, cache: c}
}

// tokenCacheStore is the server's store with the token cache kept in step:
// every method that may delete opaque tokens drops what it may have
// deleted from the cache before returning, whether it failed or not (a
// failed commit may still have committed).
type tokenCacheStore struct {
	latch.Store
	cache *TokenCache
}

func (s tokenCacheStore) Revoke(ctx context.Context, r *latch.Revocation) error {
	err := s.Store.Revoke(ctx, r)
	if r.Kind == latch.RevokeOpaque {
		s.cache.drop(r.TokenHash)
	}
	return err
}

func (s tokenCacheStore) RevokeFamily(ctx context.Context, id string, now time.Time) error {
	defer s.cache.clear()
	return s.Store.RevokeFamily(ctx, id, now)
}

func (s tokenCacheStore) RevokeFamilies(ctx context.Context, f latch.FamilyFilter, now time.Time) (int, error) {
	defer s.cache.clear()
	return s.Store.RevokeFamilies(ctx, f, now)
}

func (s tokenCacheStore) DeleteClient(ctx context.Context, id string) error {
	defer s.cache.clear()
	return s.Store.DeleteClient(ctx, id)
}

func (s tokenCacheStore) DeleteUser(ctx context.Context, id string) error {
	defer s.cache.clear()
	return s.Store.DeleteUser(ctx, id)
}

// RedeemCode revokes the code's family when the code is reused.
func (s tokenCacheStore) RedeemCode(ctx context.Context, hash []byte, now time.Time, f *latch.Family, issue latch.Issue) error {
	err := s.Store.RedeemCode(ctx, hash, now, f, issue)
	if mayHaveRevoked(err) {
		s.cache.clear()
	}
	return err
}

// RotateRefresh revokes the token's family when it is reused.
func (s tokenCacheStore) RotateRefresh(ctx context.Context, hash []byte, now time.Time, grace time.Duration, issue latch.Issue) (*latch.Token, *latch.Family, error) {
	t, f, err := s.Store.RotateRefresh(ctx, hash, now, grace, issue)
	if mayHaveRevoked(err) {
		s.cache.clear()
	}
	return t, f, err
}

// mayHaveRevoked reports whether a grant store call that returned err may
// have revoked a family: a detected reuse, or a failure that leaves the
// outcome unknown. The refusals that write nothing (not found, expired,
// invalid) do not clear the cache, so that clients presenting stale
// credentials cannot empty it.
func mayHaveRevoked(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, latch.ErrReused) {
		return true
	}
	switch latch.ErrorCode(err) {
	case latch.ENOTFOUND, latch.EUNAUTHORIZED, latch.EINVALID, latch.ECONFLICT:
		return false
	}
	return true
}
