package sqlite

import (
	"bytes"
	"sync"
)

// bffSessionCache keeps, in memory, what the SQLite store last read or wrote
// for each session, so that a session hit (every /api/* request) costs a
// map lookup instead of a read transaction: the read was half of what the
// BFF added over a plain proxy. It is sound only because the store's
// process is the only writer of the file (BFFStore holds an exclusive
// lock on it, see lockBFF) and every write of the store goes through
// invalidate after it reaches the database.
//
// A read that misses races with writes: it records the generation before
// reading the database and fills the cache only if no write finished
// meanwhile, so a value read before a write can never be cached after it.
type bffSessionCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]bffCachedSession
}

type bffCachedSession struct {
	sealed []byte
	exp    int64 // unix microseconds, as the table holds it
}

// bffSessionCacheMax bounds the memory: a session's sealed record is under a
// few KiB.
const bffSessionCacheMax = 4096

// get returns the cached record of key if it is live at now (µs). The
// bytes are shared: callers must not modify them.
func (c *bffSessionCache) get(key []byte, now int64) ([]byte, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(key)]
	if !ok || e.exp <= now {
		return nil, 0, false
	}
	return e.sealed, e.exp, true
}

// generation returns the count of writes finished so far, to pass to
// fill after reading the database.
func (c *bffSessionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill remembers what a read of key returned, unless a write finished
// since gen was taken.
func (c *bffSessionCache) fill(key, sealed []byte, exp int64, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil {
		c.m = make(map[string]bffCachedSession)
	}
	if _, ok := c.m[string(key)]; !ok && len(c.m) >= bffSessionCacheMax {
		for k := range c.m { // any one: map order is random enough here
			delete(c.m, k)
			break
		}
	}
	c.m[string(key)] = bffCachedSession{sealed: bytes.Clone(sealed), exp: exp}
}

// invalidate forgets key after a write to it ended, whether it succeeded
// or not; with key nil it forgets every session (a purge).
func (c *bffSessionCache) invalidate(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if key == nil {
		clear(c.m)
		return
	}
	delete(c.m, string(key))
}
