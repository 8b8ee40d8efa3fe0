package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
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
	wake    chan struct{} // capacity 1: a pending wake-up is enough
	tokens  *tokenCache   // kept in step with the log; nil when disabled
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
			f.tokens.logRead(page)
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
		f.tokens.logReadComplete(startedAt)
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

// revocations serves GET /oauth2/revocations?after=SEQ[&wait=DURATION]:
// the revocation log after the cursor SEQ, as one long-poll JSON answer or,
// with Accept: text/event-stream, as server-sent events. The caller
// authenticates as a confidential client with client_secret_basic (a GET
// has no form body for the other methods).
func (s *Server) revocations(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.authenticateClient(ctx, r, url.Values{}, true)
	if err != nil {
		return err
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "malformed query string")
	}
	for k, v := range q {
		if len(v) > 1 {
			return oauth.BadRequest(oauth.ErrInvalidRequest, "parameter "+k+" is repeated")
		}
	}
	after, err := parseCursor(q.Get("after"))
	if err != nil {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "after must be a sequence number (a non-negative integer)")
	}
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if id := r.Header.Get("Last-Event-ID"); sse && id != "" {
		// An EventSource reconnecting sends the id of the last event it
		// saw; it supersedes the after of the URL it reconnects to.
		if after, err = parseCursor(id); err != nil {
			return oauth.BadRequest(oauth.ErrInvalidRequest, "Last-Event-ID must be a sequence number")
		}
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		return oauth.BadRequest(oauth.ErrInvalidRequest, "wait must be a duration (25s, 500ms) or whole seconds, not negative")
	}
	release, ok := s.feed.acquire(c.ID)
	if !ok {
		return &oauth.Error{Code: oauth.ErrRateLimited, Status: http.StatusTooManyRequests,
			Description: fmt.Sprintf("this client already has %d revocation feed connections open; close one", feedMaxConnsPerClient),
			Header:      http.Header{"Retry-After": {"1"}}}
	}
	defer release()
	if sse {
		return s.streamRevocations(w, r, after)
	}
	return s.pollRevocations(w, r, after, wait)
}

func parseCursor(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("bad cursor")
	}
	return n, nil
}

// parseWait reads a long-poll wait: a Go duration or whole seconds, capped
// at feedMaxWait. Absent means 0: answer at once.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil {
			return 0, err
		}
		d = time.Duration(min(n, int64(feedMaxWait/time.Second)+1)) * time.Second
	}
	if d < 0 {
		return 0, errors.New("negative wait")
	}
	return min(d, feedMaxWait), nil
}

// pollRevocations answers at once when there are entries after the
// cursor, otherwise when one arrives or wait has passed.
func (s *Server) pollRevocations(w http.ResponseWriter, r *http.Request, after int64, wait time.Duration) error {
	ctx := r.Context()
	// The http.Server's ReadTimeout would cancel this request's context
	// while it waits (the server's background read of the connection hits
	// the deadline), and its WriteTimeout would cut the answer.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(max(wait, feedReadyWait) + 10*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	point := s.feed.syncPoint()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	expired, synced := wait == 0, false
	var notReady <-chan time.Time
	cursor := after
	for {
		p, wake, err := s.feed.read(ctx, cursor)
		switch {
		case ctx.Err() != nil:
			return nil // the follower is gone
		case errors.Is(err, errFeedStopped):
			// Shutting down: an honest "nothing new yet" lets graceful
			// shutdown finish; the follower reconnects elsewhere.
			return writeFeedPage(w, feedPage{next: cursor})
		case err != nil:
			return err
		}
		if p.reset || len(p.entries) > 0 {
			return writeFeedPage(w, p)
		}
		cursor = p.next
		if wake == nil {
			continue
		}
		if p.notReady {
			if notReady == nil {
				t := time.NewTimer(max(wait, feedReadyWait))
				defer t.Stop()
				notReady = t.C
			}
			select {
			case <-wake:
				continue
			case <-notReady:
				return errFeedUnavailable
			case <-ctx.Done():
				return nil
			}
		}
		if expired {
			if synced {
				return writeFeedPage(w, feedPage{next: cursor})
			}
			// Before answering "nothing new", make sure of it: a
			// revocation acknowledged before this request must be in the
			// answer, or a follower's first sync could miss it.
			synced = true
			if err := s.feed.sync(ctx, point); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, errFeedStopped):
					return writeFeedPage(w, feedPage{next: cursor})
				}
				return err
			}
			continue
		}
		select {
		case <-wake:
		case <-timer.C:
			expired = true
		case <-ctx.Done():
			return nil
		}
	}
}

func writeFeedPage(w http.ResponseWriter, p feedPage) error {
	resp := feedResponse{Entries: make([]feedEntry, 0, len(p.entries)), Next: p.next, Reset: p.reset}
	for _, r := range p.entries {
		resp.Entries = append(resp.Entries, wireEntry(r))
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// streamRevocations sends the log after the cursor as server-sent events
// (HTML Living Standard §9.2): one event per entry, id = seq, so an
// EventSource resumes with Last-Event-ID; a comment every feedHeartbeat.
// An "id: N" line without data moves the follower's Last-Event-ID past
// entries it is not sent, without dispatching an event. A cursor ahead of
// the log gets an "event: reset" and the stream continues from 0.
func (s *Server) streamRevocations(w http.ResponseWriter, r *http.Request, after int64) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	cursor := after
	p, wake, err := s.feed.read(ctx, cursor)
	if p.notReady && err == nil {
		t := time.NewTimer(feedReadyWait)
		defer t.Stop()
		for p.notReady && err == nil {
			select {
			case <-wake:
			case <-t.C:
				return errFeedUnavailable
			case <-ctx.Done():
				return nil
			}
			p, wake, err = s.feed.read(ctx, cursor)
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, errFeedStopped):
		return errFeedUnavailable
	case err != nil:
		return err
	}

	// No read deadline: the stream has no end. A vanished follower is
	// noticed by a failed write (each one gets a fresh write deadline,
	// which the http.Server's WriteTimeout would otherwise fix at 30s
	// after the request) or by TCP keep-alive.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 1000\n\n")
	flush := func() bool {
		if buf.Len() == 0 {
			return true
		}
		_ = rc.SetWriteDeadline(time.Now().Add(2 * feedHeartbeat))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	hb := time.NewTicker(feedHeartbeat)
	defer hb.Stop()
	for {
		switch {
		case p.reset:
			buf.WriteString("event: reset\ndata: {\"next\":0}\n\n")
			cursor = 0
		case len(p.entries) > 0:
			for _, e := range p.entries {
				b, _ := json.Marshal(wireEntry(e))
				fmt.Fprintf(&buf, "id: %d\ndata: %s\n\n", e.Seq, b)
			}
			if last := p.entries[len(p.entries)-1].Seq; p.next > last {
				fmt.Fprintf(&buf, "id: %d\n\n", p.next)
			}
			cursor = p.next
		case p.next > cursor:
			fmt.Fprintf(&buf, "id: %d\n\n", p.next)
			cursor = p.next
		}
		if !flush() {
			return nil
		}
		for wake != nil {
			select {
			case <-wake:
				wake = nil
			case <-hb.C:
				buf.WriteString(": ping\n\n")
				if !flush() {
					return nil
				}
			case <-ctx.Done():
				return nil
			}
		}
		p, wake, err = s.feed.read(ctx, cursor)
		if err != nil {
			// Stopped, or the log cannot be read: end the stream; the
			// follower reconnects and gets 503 until it recovers.
			return nil
		}
	}
}
