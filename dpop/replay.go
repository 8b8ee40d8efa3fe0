package dpop

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ReplayCache remembers the proofs already used (RFC 9449 §11.1). Seen
// records key until the given time and reports whether it was recorded
// already and not yet past its time. It is consulted once per proof, after
// every other check passed, so forged proofs never fill it. An error means
// the cache cannot answer: the proof is then refused (ErrReplayUnavailable),
// never accepted unchecked.
//
// A cache shared by every node of a deployment (Redis) refuses a proof
// replayed to another node; a per-process one (MemoryReplayCache) only to
// the same process.
type ReplayCache interface {
	Seen(ctx context.Context, key string, until time.Time) (bool, error)
}

// ErrReplayCacheFull: the MemoryReplayCache holds its maximum of live
// entries. It wraps ErrReplayUnavailable.
var ErrReplayCacheFull = fmt.Errorf("dpop: replay cache is full of live proofs: %w", ErrReplayUnavailable)

// MemoryReplayCache is a bounded in-memory ReplayCache with O(1) lookups
// and amortised O(1) expiry. Entries are kept in a ring in insertion order;
// the Checker gives every entry the same lifetime, so the oldest entry is
// the first to expire, and expiring is popping the ring's head. When it
// holds max live entries it refuses new ones (ErrReplayCacheFull) rather
// than forget a live one, which would let that proof be replayed: a
// deployment that sees more than max proofs per proof lifetime needs a
// larger max (each entry is about 150 bytes) or a shared cache.
type MemoryReplayCache struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[string]int64 // key -> expiry, Unix nanoseconds
	ring []ringEntry
	head int // index of the oldest entry
	n    int // entries in the ring
}

type ringEntry struct {
	key   string
	until int64
}

// NewMemoryReplayCache returns a MemoryReplayCache of at most max live
// entries (DefaultReplayEntries when max <= 0) on the clock now (time.Now
// when nil).
func NewMemoryReplayCache(max int, now func() time.Time) *MemoryReplayCache {
	if max <= 0 {
		max = DefaultReplayEntries
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, seen: make(map[string]int64), ring: make([]ringEntry, max)}
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 {
		e := &c.ring[c.head]
		if e.until > now {
			break
		}
		if c.seen[e.key] == e.until {
			delete(c.seen, e.key)
		}
		*e = ringEntry{}
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	if exp, ok := c.seen[key]; ok && exp > now {
		return true, nil
	}
	if c.n == len(c.ring) {
		return false, ErrReplayCacheFull
	}
	u := until.UnixNano()
	c.seen[key] = u
	c.ring[(c.head+c.n)%len(c.ring)] = ringEntry{key: key, until: u}
	c.n++
	return false, nil
}

// Len returns the number of entries held, live or waiting to be expired.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
