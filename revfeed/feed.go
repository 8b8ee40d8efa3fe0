package revfeed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
)

// The revocation feed (GET /oauth2/revocations) lets resource
// servers hold the (iss, jti) denylist in memory and drop cached
// introspection answers of revoked opaque tokens. See
// docs/revocation-feed.md for the protocol and its failure modes.
//
// One broadcaster goroutine per server (Feed.Run, started by the
// server's Run) reads the revocation log: every PollInterval, for revocations written by the CLI
// or another node, and at once when this server revokes something
// (Feed.Notify) or another node says it did (the server's Fanout).
// It keeps the most recent entries in memory, so followers at
// or near the head are answered without touching the store: 1,000 waiting
// followers cost one store query per tick, not 1,000. Only a follower whose
// cursor is older than the ring (a first sync, a reconnect after a long
// outage) reads the store itself, once per page.
const (
	// PollInterval is how often the broadcaster reads the log for
	// revocations written elsewhere.
	PollInterval = 100 * time.Millisecond
	// PageLimit bounds the entries of one answer and of one store read.
	PageLimit = 1000
	// ringSize is how many recent entries stay in memory.
	ringSize = 8192
	// MaxConnsPerClient bounds concurrent feed requests per client: a
	// resource server needs one; a leak or a loop should not hold
	// thousands of goroutines and sockets.
	MaxConnsPerClient = 8
)

var (
	ErrStopped     = errors.New("revfeed: revocation feed stopped")
	ErrUnavailable = latch.Errorf(latch.EUNAVAILABLE, "revfeed: revocation feed cannot read the revocation log")
)

// Feed is the broadcaster and the state followers read.
type Feed struct {
	issuer  string
	store   latch.RevocationStore
	now     func() time.Time
	log     *slog.Logger
	wake    chan struct{} // capacity 1: a pending wake-up is enough
	tokens  Follower      // kept in step with the log; nil when none
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

// New returns the feed of the revocations of issuer in store. follower,
// when not nil, is kept in step with every read of the log.
func New(issuer string, store latch.RevocationStore, now func() time.Time, log *slog.Logger, follower Follower) *Feed {
	return &Feed{
		issuer: issuer, store: store, now: now, log: log, tokens: follower,
		wake: make(chan struct{}, 1), changed: make(chan struct{}), polled: make(chan struct{}),
		conns: map[string]int{},
	}
}

// Notify wakes the broadcaster after a revocation made by this server, so
// followers learn of it in one store read rather than at the next tick.
func (f *Feed) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run reads the log until ctx ends. It is started once, by Server.Run.
func (f *Feed) Run(ctx context.Context) {
	if !f.running.CompareAndSwap(false, true) {
		return
	}
	t := time.NewTicker(PollInterval)
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
func (f *Feed) poll(ctx context.Context) {
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
		page, err = f.store.RevocationsSince(ctx, head, PageLimit)
		if err != nil {
			break
		}
		if f.tokens != nil {
			f.tokens.LogRead(page)
		}
		read = append(read, page...)
		if n := len(read) - ringSize; n > 0 {
			// A first read of a long log keeps only its tail in memory.
			dropped = read[n-1].Seq
			read = slices.Clone(read[n:])
		}
		if len(page) > 0 {
			head = page[len(page)-1].Seq
		}
		if len(page) < PageLimit {
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
		if n := len(f.ring) - ringSize; n > 0 {
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

// SyncPoint returns the number of the next read of the log to begin: once
// it has completed, every revocation acknowledged before syncPoint was
// called is in the ring.
func (f *Feed) SyncPoint() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started + 1
}

// Sync waits until the read of the log numbered point has completed,
// waking the broadcaster rather than waiting for its tick. A follower told
// "nothing after your cursor" must not be told so about a revocation that
// was answered 200 before it asked: the broadcaster lags the store by up to
// one read.
func (f *Feed) Sync(ctx context.Context, point uint64) error {
	timeout := time.NewTimer(2 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		done, stopped, err, polled := f.finished >= point, f.stopped, f.err, f.polled
		f.mu.Unlock()
		switch {
		case stopped:
			return ErrStopped
		case err != nil:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case done:
			return nil
		}
		f.Notify()
		select {
		case <-polled:
		case <-timeout.C:
			return ErrUnavailable
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Feed) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Page is one answer: the entries a follower may see after its cursor.
type Page struct {
	Entries []*latch.Revocation
	// next is the cursor to resume from. It moves past entries that are
	// not sent (other issuers, client-assertion jtis, expired entries), so
	// a follower does not read them again.
	Next int64
	// reset: the cursor is ahead of this log (the database was replaced
	// or restored). The follower restarts from 0 and, because it may have
	// missed entries, forgets what it cached (Introspector.Flush).
	Reset bool
	// notReady: the log has not been read yet.
	NotReady bool
}

// Read returns the page after cursor. When the page is empty, wake (when
// not nil) is closed once there may be more; a nil wake with an empty page
// means "read again at once" (the cursor moved past unsent entries).
func (f *Feed) Read(ctx context.Context, after int64) (Page, <-chan struct{}, error) {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return Page{Next: after}, nil, ErrStopped
	}
	if !f.ready {
		ch, err := f.changed, f.err
		f.mu.Unlock()
		if err != nil {
			return Page{Next: after}, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return Page{Next: after, NotReady: true}, ch, nil
	}
	if f.err != nil {
		f.mu.Unlock()
		return Page{Next: after}, nil, fmt.Errorf("%w: %w", ErrUnavailable, f.err)
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
		raw := f.ring[i:min(i+PageLimit, len(f.ring))]
		next := head
		if i+len(raw) < len(f.ring) {
			next = raw[len(raw)-1].Seq
		}
		ch := f.changed
		f.mu.Unlock()
		p := f.page(raw, next)
		if len(p.Entries) > 0 || next > after {
			return p, nil, nil
		}
		return p, ch, nil
	}
	f.mu.Unlock()

	// Behind the ring: one read of the store, clamped to head so that every
	// cursor handed out is one the ring can continue from.
	raw, err := f.store.RevocationsSince(ctx, after, PageLimit)
	if err != nil {
		return Page{Next: after}, nil, err
	}
	full := len(raw) == PageLimit
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
func (f *Feed) ahead(ctx context.Context, after int64) (Page, <-chan struct{}, error) {
	if err := f.Sync(ctx, f.SyncPoint()); err != nil {
		return Page{Next: after}, nil, err
	}
	f.mu.Lock()
	stillAhead := after > f.head
	f.mu.Unlock()
	if stillAhead {
		return Page{Next: 0, Reset: true}, nil, nil
	}
	return Page{Next: after}, nil, nil // read again: now in range
}

// page keeps the entries a follower may see: JWTs of this issuer and opaque
// tokens, not yet expired. The log also holds "client-assertion:<id>"
// pseudo-issuer jtis (private_key_jwt replay protection), which are no
// resource server's business.
func (f *Feed) page(raw []*latch.Revocation, next int64) Page {
	now := f.now()
	p := Page{Next: next}
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
		p.Entries = append(p.Entries, r)
	}
	return p
}

// Acquire counts a feed connection of client id against the cap.
func (f *Feed) Acquire(id string) (release func(), ok bool) {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	if f.conns[id] >= MaxConnsPerClient {
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

// Follower is kept in step with the revocation log by the feed's reads:
// the server's token cache (authority.TokenCache).
type Follower interface {
	// LogRead is called with every page read from the log.
	LogRead(page []*latch.Revocation)
	// LogReadComplete is called after a complete read of the log that
	// began at started.
	LogReadComplete(started time.Time)
}
