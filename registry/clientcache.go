package registry

import (
	"context"
	"sync"
	"time"

	"github.com/latch-auth/latch"
)

// ClientCache keeps clients read from the store for a short time. Every
// OAuth request authenticates its client, and the store read was half the
// cost of an opaque introspection (BENCHMARKS.md), while clients change
// rarely. Changes made through this server (admin API) drop the entry at
// once; changes by another process (the CLI, another node) take effect
// within the TTL. Unknown clients are not cached, so the cache holds at
// most the registered clients, whatever ids callers invent.
type ClientCache struct {
	store latch.ClientStore
	ttl   time.Duration
	now   func() time.Time

	mu      sync.RWMutex
	entries map[string]clientEntry
	// gen counts forget calls. A read that started before a forget must
	// not put what it read back into the cache afterwards: the store may
	// have changed in between (rotate-secret, delete).
	gen uint64
}

type clientEntry struct {
	c       *latch.Client
	expires time.Time
}

func NewClientCache(store latch.ClientStore, ttl time.Duration, now func() time.Time) *ClientCache {
	return &ClientCache{store: store, ttl: ttl, now: now, entries: make(map[string]clientEntry)}
}

// Client returns the client id, from the cache when fresh. The result is
// shared: callers must not modify it.
func (cc *ClientCache) Client(ctx context.Context, id string) (*latch.Client, error) {
	if cc.ttl <= 0 {
		return cc.store.Client(ctx, id)
	}
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.entries[id]
	gen := cc.gen
	cc.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.c, nil
	}
	c, err := cc.store.Client(ctx, id)
	if err != nil {
		if ok {
			cc.Forget(id)
		}
		return nil, err
	}
	cc.mu.Lock()
	if cc.gen == gen {
		cc.entries[id] = clientEntry{c: c, expires: now.Add(cc.ttl)}
	}
	cc.mu.Unlock()
	return c, nil
}

// Forget drops id, after this server changed or deleted it.
func (cc *ClientCache) Forget(id string) {
	cc.mu.Lock()
	delete(cc.entries, id)
	cc.gen++
	cc.mu.Unlock()
}
