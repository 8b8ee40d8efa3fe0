// Package tokencache is the bounded, revocation-aware cache that verify
// (verified JWTs, introspection answers), gateway (exchanged JWTs) and
// server (opaque access tokens read from the store) keep,
// keyed by SHA-256 of a token. It owns eviction and the generation counter
// that stops an answer computed before a revocation from being stored after
// it; it knows nothing of tokens themselves.
package tokencache

import (
	"sync"
	"time"
)

// Cache is a bounded map from SHA-256 of a token to what was learnt about
// it, each entry with a deadline it is never served after. Eviction is
// simple: when full, drop the expired entries (at most once a second), and
// if that frees nothing, an arbitrary entry (Go randomises map iteration).
// A verified token is cheap to verify again, so precision buys little.
type Cache[V any] struct {
	mu        sync.RWMutex
	m         map[[32]byte]cacheEntry[V]
	max       int
	gen       uint64 // bumped by Flush and Drop; see put
	lastSweep time.Time
}

type cacheEntry[V any] struct {
	v     V
	until int64 // unix nanoseconds; served only while now < until
}

// New returns a cache of at most max entries; max <= 0 caches nothing.
func New[V any](max int) *Cache[V] {
	return &Cache[V]{m: make(map[[32]byte]cacheEntry[V]), max: max}
}

// Get returns the value stored under key, if its deadline is after now.
func (c *Cache[V]) Get(key *[32]byte, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[*key]
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.until {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Generation returns the value to pass to Put for work starting now.
func (c *Cache[V]) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// Put stores v until the deadline, unless Flush or Drop ran since gen was
// read: an answer computed before a revocation must not land after it.
func (c *Cache[V]) Put(key *[32]byte, v V, until, now time.Time, gen uint64) {
	if c.max <= 0 || !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[*key]; !ok && len(c.m) >= c.max {
		if now.Sub(c.lastSweep) >= time.Second {
			c.lastSweep = now
			n := now.UnixNano()
			for k, e := range c.m {
				if n >= e.until {
					delete(c.m, k)
				}
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[*key] = cacheEntry[V]{v: v, until: until.UnixNano()}
}

// Drop removes key (a revocation) and invalidates work in flight.
func (c *Cache[V]) Drop(key *[32]byte) {
	c.mu.Lock()
	c.gen++
	delete(c.m, *key)
	c.mu.Unlock()
}

// Flush removes everything and invalidates work in flight.
func (c *Cache[V]) Flush() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
