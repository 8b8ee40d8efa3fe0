package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultLogInterval is the least time between two log lines of one kind.
const DefaultLogInterval = 10 * time.Second

// tallies logs each kind of event (its message) at most once per interval,
// with how many there were since the last line: a flood of forged tokens
// or an outage of the issuer makes a few lines a minute, not one per
// request (OWASP Logging Cheat Sheet, "Attacks on Logs").
type tallies struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu sync.Mutex
	by map[string]*tally
}

type tally struct {
	n    int64     // events not yet logged
	last time.Time // of the last line
}

func newTallies(logger *slog.Logger, interval time.Duration, now func() time.Time) *tallies {
	return &tallies{logger: logger, interval: interval, now: now, by: map[string]*tally{}}
}

// add counts one event of kind msg and logs it, with the count and the
// attributes of this event, when the last line of that kind is older than
// the interval. The first event of a kind is logged at once; the count of
// a burst's tail appears in the line of the next event after the interval.
func (t *tallies) add(level slog.Level, msg string, args ...any) {
	now := t.now()
	t.mu.Lock()
	e, ok := t.by[msg]
	if !ok {
		e = &tally{}
		t.by[msg] = e
	}
	e.n++
	if ok && now.Sub(e.last) < t.interval {
		t.mu.Unlock()
		return
	}
	n := e.n
	e.n, e.last = 0, now
	t.mu.Unlock()
	t.logger.Log(context.Background(), level, msg, append(args, "count", n, "interval", t.interval)...)
}
