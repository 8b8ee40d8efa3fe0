package bff

import (
	"bytes"
	"sync"
)

// openedSessions remembers, per session key, the sealed bytes last read
// from the store and the session they opened to. On a session hit the
// BFF still reads the store on every request (so a logout or a refresh by
// another node is seen at once), but when the store hands back the very
// bytes it handed back before, AES-GCM and the JSON decoding would give
// the very same session: that work, about half of what /api/* adds over a
// plain proxy, is skipped. Nothing is trusted that the store did not just
// confirm byte for byte.
type openedSessions struct {
	mu sync.Mutex
	m  map[[32]byte]openedSession
}

type openedSession struct {
	sealed []byte
	s      session
}

// openedMax bounds the memory: a few KiB per entry.
const openedMax = 1024

// get returns the session sealed opened to, if it was opened before under
// key. The session's User map is shared: callers must not modify it.
func (o *openedSessions) get(key [32]byte, sealed []byte) (session, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[key]
	if !ok || !bytes.Equal(e.sealed, sealed) {
		return session{}, false
	}
	return e.s, true
}

// put remembers that sealed, read under key, opened to s.
func (o *openedSessions) put(key [32]byte, sealed []byte, s session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[[32]byte]openedSession)
	}
	if _, ok := o.m[key]; !ok && len(o.m) >= openedMax {
		for k := range o.m { // any one: map order is random enough here
			delete(o.m, k)
			break
		}
	}
	o.m[key] = openedSession{sealed: bytes.Clone(sealed), s: s}
}

// drop forgets key's session.
func (o *openedSessions) drop(key [32]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, key)
}
