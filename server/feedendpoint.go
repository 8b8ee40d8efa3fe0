package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
	"github.com/latch-auth/latch/revfeed"
)

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
	release, ok := s.feed.Acquire(c.ID)
	if !ok {
		return &oauth.Error{Code: oauth.ErrRateLimited, Status: http.StatusTooManyRequests,
			Description: fmt.Sprintf("this client already has %d revocation feed connections open; close one", revfeed.MaxConnsPerClient),
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

	point := s.feed.SyncPoint()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	expired, synced := wait == 0, false
	var notReady <-chan time.Time
	cursor := after
	for {
		p, wake, err := s.feed.Read(ctx, cursor)
		switch {
		case ctx.Err() != nil:
			return nil // the follower is gone
		case errors.Is(err, revfeed.ErrStopped):
			// Shutting down: an honest "nothing new yet" lets graceful
			// shutdown finish; the follower reconnects elsewhere.
			return writeFeedPage(w, revfeed.Page{Next: cursor})
		case err != nil:
			return err
		}
		if p.Reset || len(p.Entries) > 0 {
			return writeFeedPage(w, p)
		}
		cursor = p.Next
		if wake == nil {
			continue
		}
		if p.NotReady {
			if notReady == nil {
				t := time.NewTimer(max(wait, feedReadyWait))
				defer t.Stop()
				notReady = t.C
			}
			select {
			case <-wake:
				continue
			case <-notReady:
				return revfeed.ErrUnavailable
			case <-ctx.Done():
				return nil
			}
		}
		if expired {
			if synced {
				return writeFeedPage(w, revfeed.Page{Next: cursor})
			}
			// Before answering "nothing new", make sure of it: a
			// revocation acknowledged before this request must be in the
			// answer, or a follower's first sync could miss it.
			synced = true
			if err := s.feed.Sync(ctx, point); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil
				case errors.Is(err, revfeed.ErrStopped):
					return writeFeedPage(w, revfeed.Page{Next: cursor})
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

func writeFeedPage(w http.ResponseWriter, p revfeed.Page) error {
	resp := feedResponse{Entries: make([]feedEntry, 0, len(p.Entries)), Next: p.Next, Reset: p.Reset}
	for _, r := range p.Entries {
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
	p, wake, err := s.feed.Read(ctx, cursor)
	if p.NotReady && err == nil {
		t := time.NewTimer(feedReadyWait)
		defer t.Stop()
		for p.NotReady && err == nil {
			select {
			case <-wake:
			case <-t.C:
				return revfeed.ErrUnavailable
			case <-ctx.Done():
				return nil
			}
			p, wake, err = s.feed.Read(ctx, cursor)
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, revfeed.ErrStopped):
		return revfeed.ErrUnavailable
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
		case p.Reset:
			buf.WriteString("event: reset\ndata: {\"next\":0}\n\n")
			cursor = 0
		case len(p.Entries) > 0:
			for _, e := range p.Entries {
				b, _ := json.Marshal(wireEntry(e))
				fmt.Fprintf(&buf, "id: %d\ndata: %s\n\n", e.Seq, b)
			}
			if last := p.Entries[len(p.Entries)-1].Seq; p.Next > last {
				fmt.Fprintf(&buf, "id: %d\n\n", p.Next)
			}
			cursor = p.Next
		case p.Next > cursor:
			fmt.Fprintf(&buf, "id: %d\n\n", p.Next)
			cursor = p.Next
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
		p, wake, err = s.feed.Read(ctx, cursor)
		if err != nil {
			// Stopped, or the log cannot be read: end the stream; the
			// follower reconnects and gets 503 until it recovers.
			return nil
		}
	}
}

// Limits of the endpoint's long-poll and stream.
const (
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
)

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
