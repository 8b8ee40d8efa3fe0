package server

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/authority"
)

// The revocation feed (GET /oauth2/revocations) lets resource
// servers hold the (iss, jti) denylist in memory and drop cached
// introspection answers of revoked opaque tokens. See
// docs/revocation-feed.md for the protocol and its failure modes.
//
// One broadcaster goroutine per server (feed.run, started by Run) reads the
// revocation log: every feedPollInterval, for revocations written by the CLI
// or another node, and at once when this server revokes something
// (feed.notify) or another node says it did (Config.Fanout, fanout.go).
// It keeps the most recent entries in memory, so followers at
// or near the head are answered without touching the store: 1,000 waiting
// followers cost one store query per tick, not 1,000. Only a follower whose
// cursor is older than the ring (a first sync, a reconnect after a long
// outage) reads the store itself, once per page.
const (
	feedPollInterval = 100 * time.Millisecond
	// feedPageLimit bounds the entries of one answer and of one store read.
	feedPageLimit = 1000
	// feedRingSize is how many recent entries stay in memory.
	feedRingSize = 8192
	// feedMaxWait caps a long-poll. It stays under the http.Server's
	// WriteTimeout of cmd/latch (30s) even before the deadline is extended,
	// and under common proxy idle timeouts.
	feedMaxWait = 25 * time.Second
	// feedReadyWait is how long a request made before the broadcaster's
	// first read of the log waits for it before answering 503.
	feedReadyWait = 5 * time.Second
	// feedHeartbeat is the interval of SSE comment lines, which keep
	// proxies from closing an idle stream and let the follower tell a
	// quiet feed from a dead one.
	feedHeartbeat = 15 * time.Second
	// feedMaxConnsPerClient bounds concurrent feed requests per client: a
	// resource server needs one; a leak or a loop should not hold
	// thousands of goroutines and sockets.
	feedMaxConnsPerClient = 8
)

var (
	errFeedStopped     = errors.New("server: revocation feed stopped")
	errFeedUnavailable = latch.Errorf(latch.EUNAVAILABLE, "server: revocation feed cannot read the revocation log")
)

// feed is the broadcaster and the state followers read.
type feed struct {
	issuer  string
	store   latch.RevocationStore
	now     func() time.Time
	log     *slog.Logger
	wake    chan struct{}         // capacity 1: a pending wake-up is enough
	tokens  *authority.TokenCache // kept in step with the log; nil when disabled
	running atomic.Bool

	mu       sync.Mutex
	ready    bool  // the log has been read once
	stopped  bool  // Run's context ended
	err      error // the last read of the log failed
	head     int64 // every entry with Seq <= head has been read
	ringFrom int64 // ring holds every entry with ringFrom < Seq <= head
	ring     []*latch.Revocation
	changed  chan struct{} // closed and replaced when any field above changes
	polled   chan struct{} // closed and replaced after every read of the log
	started  uint64        // reads of the log begun
	finished uint64        // reads of the log completed (they run one at a time)

	connsMu sync.Mutex
	conns   map[string]int
}

func newFeed(s *Server) *feed {
	return &feed{
		issuer: s.cfg.Issuer, store: s.store, now: s.now, log: s.log, tokens: s.tokens,
		wake: make(chan struct{}, 1), changed: make(chan struct{}), polled: make(chan struct{}),
		conns: map[string]int{},
	}
}

// notify wakes the broadcaster after a revocation made by this server, so
// followers learn of it in one store read rather than at the next tick.
func (f *feed) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run reads the log until ctx ends. It is started once, by Server.Run.
func (f *feed) run(ctx context.Context) {
	if !f.running.CompareAndSwap(false, true) {
		return
	}
	t := time.NewTicker(feedPollInterval)
	defer t.Stop()
	for {
		f.poll(ctx)
		select {
		case <-ctx.Done():
			f.mu.Lock()
			f.stopped = true
			f.broadcastLocked()
			close(f.polled) // sync waiters see stopped
			f.polled = make(chan struct{})
			f.mu.Unlock()
			return
		case <-t.C:
		case <-f.wake:
		}
	}
}

// poll reads every entry after head, in pages, into the ring.
func (f *feed) poll(ctx context.Context) {
	f.mu.Lock()
	head := f.head
	f.started++
	n := f.started
	f.mu.Unlock()
	startedAt := f.now()
	var (
		read    []*latch.Revocation
		dropped int64 // > 0: entries up to this seq fell out of read
		err     error
	)
	for {
		var page []*latch.Revocation
		page, err = f.store.RevocationsSince(ctx, head, feedPageLimit)
		if err != nil {
			break
		}
		if f.tokens != nil {
			f.tokens.LogRead(page)
		}
		read = append(read, page...)
		if n := len(read) - feedRingSize; n > 0 {
			// A first read of a long log keeps only its tail in memory.
			dropped = read[n-1].Seq
			read = slices.Clone(read[n:])
		}
		if len(page) > 0 {
			head = page[len(page)-1].Seq
		}
		if len(page) < feedPageLimit {
			break
		}
	}
	if ctx.Err() != nil {
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	if len(read) > 0 && err == nil {
		if dropped > 0 {
			f.ring, f.ringFrom = read, dropped
		} else {
			f.ring = append(f.ring, read...)
		}
		if n := len(f.ring) - feedRingSize; n > 0 {
			f.ringFrom = f.ring[n-1].Seq
			f.ring = slices.Clone(f.ring[n:])
		}
		f.head = head
		changed = true
	}
	switch {
	case err != nil && f.err == nil:
		f.log.Error("revocation feed: reading the revocation log failed; followers get 503 until it recovers", "err", err)
		f.err, changed = err, true
	case err != nil:
		f.err = err
	case f.err != nil:
		f.log.Info("revocation feed: reading the revocation log works again")
		f.err, changed = nil, true
	}
	if err == nil && f.tokens != nil {
		f.tokens.LogReadComplete(startedAt)
	}
	if err == nil && !f.ready {
		f.ready, changed = true, true
	}
	if changed {
		f.broadcastLocked()
	}
	f.finished = n
	close(f.polled)
	f.polled = make(chan struct{})
}

// syncPoint returns the number of the next read of the log to begin: once
// it has completed, every revocation acknowledged before syncPoint was
// called is in the ring.
func (f *feed) syncPoint() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started + 1
}

// sync waits until the read of the log numbered point has completed,
// waking the broadcaster rather than waiting for its tick. A follower told
// "nothing after your cursor" must not be told so about a revocation that
// was answered 200 before it asked: the broadcaster lags the store by up to
// one read.
func (f *feed) sync(ctx context.Context, point uint64) error {
	timeout := time.NewTimer(2 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		done, stopped, err, polled := f.finished >= point, f.stopped, f.err, f.polled
		f.mu.Unlock()
		switch {
		case stopped:
			return errFeedStopped
		case err != nil:
			return fmt.Errorf("%w: %w", errFeedUnavailable, err)
		case done:
			return nil
		}
		f.notify()
		select {
		case <-polled:
		case <-timeout.C:
			return errFeedUnavailable
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *feed) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// feedPage is one answer: the entries a follower may see after its cursor.
type feedPage struct {
	entries []*latch.Revocation
	// next is the cursor to resume from. It moves past entries that are
	// not sent (other issuers, client-assertion jtis, expired entries), so
	// a follower does not read them again.
	next int64
	// reset: the cursor is ahead of this log (the database was replaced
	// or restored). The follower restarts from 0 and, because it may have
	// missed entries, forgets what it cached (Introspector.Flush).
	reset bool
	// notReady: the log has not been read yet.
	notReady bool
}

// read returns the page after cursor. When the page is empty, wake (when
// not nil) is closed once there may be more; a nil wake with an empty page
// means "read again at once" (the cursor moved past unsent entries).
func (f *feed) read(ctx context.Context, after int64) (feedPage, <-chan struct{}, error) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return feedPage{next: after}, nil, errFeedStopped
	}
	if !f.ready {
		ch, err := f.changed, f.err
		f.mu.Unlock()
		if err != nil {
			return feedPage{next: after}, nil, fmt.Errorf("%w: %w", errFeedUnavailable, err)
		}
		return feedPage{next: after, notReady: true}, ch, nil
	}
	if f.err != nil {
		f.mu.Unlock()
		return feedPage{next: after}, nil, fmt.Errorf("%w: %w", errFeedUnavailable, f.err)
	}
	head := f.head
	if after > head {
		f.mu.Unlock()
		return f.ahead(ctx, after)
	}
	if after >= f.ringFrom {
		i, _ := slices.BinarySearchFunc(f.ring, after+1, func(r *latch.Revocation, seq int64) int {
			return cmp.Compare(r.Seq, seq)
		})
		raw := f.ring[i:min(i+feedPageLimit, len(f.ring))]
		next := head
		if i+len(raw) < len(f.ring) {
			next = raw[len(raw)-1].Seq
		}
		ch := f.changed
		f.mu.Unlock()
		p := f.page(raw, next)
		if len(p.entries) > 0 || next > after {
			return p, nil, nil
		}
		return p, ch, nil
	}
	f.mu.Unlock()

	// Behind the ring: one read of the store, clamped to head so that every
	// cursor handed out is one the ring can continue from.
	raw, err := f.store.RevocationsSince(ctx, after, feedPageLimit)
	if err != nil {
		return feedPage{next: after}, nil, err
	}
	full := len(raw) == feedPageLimit
	if i := slices.IndexFunc(raw, func(r *latch.Revocation) bool { return r.Seq > head }); i >= 0 {
		raw, full = raw[:i], false
	}
	next := head
	if full {
		next = raw[len(raw)-1].Seq
	}
	return f.page(raw, next), nil, nil
}

// ahead handles a cursor beyond head. Another node sharing the store may be
// a read ahead of this one, so the log is read again first; only a cursor
// still ahead after that is answered with a reset.
func (f *feed) ahead(ctx context.Context, after int64) (feedPage, <-chan struct{}, error) {
	if err := f.sync(ctx, f.syncPoint()); err != nil {
		return feedPage{next: after}, nil, err
	}
	f.mu.Lock()
	stillAhead := after > f.head
	f.mu.Unlock()
	if stillAhead {
		return feedPage{next: 0, reset: true}, nil, nil
	}
	return feedPage{next: after}, nil, nil // read again: now in range
}

// page keeps the entries a follower may see: JWTs of this issuer and opaque
// tokens, not yet expired. The log also holds "client-assertion:<id>"
// pseudo-issuer jtis (private_key_jwt replay protection), which are no
// resource server's business.
func (f *feed) page(raw []*latch.Revocation, next int64) feedPage {
	now := f.now()
	p := feedPage{next: next}
	for _, r := range raw {
		if !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(now) {
			continue
		}
		switch {
		case r.Kind == latch.RevokeJWT && r.Issuer == f.issuer:
		case r.Kind == latch.RevokeOpaque && len(r.TokenHash) > 0:
		default:
			continue
		}
		p.entries = append(p.entries, r)
	}
	return p
}

// acquire counts a feed connection of client id against the cap.
func (f *feed) acquire(id string) (release func(), ok bool) {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	if f.conns[id] >= feedMaxConnsPerClient {
		return nil, false
	}
	f.conns[id]++
	return func() {
		f.connsMu.Lock()
		defer f.connsMu.Unlock()
		if f.conns[id]--; f.conns[id] <= 0 {
			delete(f.conns, id)
		}
	}, true
}

// feedEntry is one entry on the wire. Kinds are open-ended: a follower
// ignores a kind it does not know, so session and family revocations
// can be added without breaking it.
type feedEntry struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	Issuer    string `json:"iss,omitempty"`
	JTI       string `json:"jti,omitempty"`
	TokenHash string `json:"token_hash,omitempty"` // base64url (no padding) of SHA-256 of the token
	Exp       int64  `json:"exp,omitempty"`
	RevokedAt int64  `json:"revoked_at,omitempty"`
}

func wireEntry(r *latch.Revocation) feedEntry {
	e := feedEntry{Seq: r.Seq, Kind: string(r.Kind)}
	switch r.Kind {
	case latch.RevokeJWT:
		e.Issuer, e.JTI = r.Issuer, r.JTI
	case latch.RevokeOpaque:
		e.TokenHash = base64.RawURLEncoding.EncodeToString(r.TokenHash)
	}
	if !r.ExpiresAt.IsZero() {
		e.Exp = r.ExpiresAt.Unix()
	}
	if !r.RevokedAt.IsZero() {
		e.RevokedAt = r.RevokedAt.Unix()
	}
	return e
}

// feedResponse is the long-poll answer.
type feedResponse struct {
	Entries []feedEntry `json:"entries"`
	Next    int64       `json:"next"`
	Reset   bool        `json:"reset,omitempty"`
}
