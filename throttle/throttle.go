package throttle

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"time"
)

// Config configures the login back-off of one scope: an account or a
// client address (OWASP Authentication Cheat Sheet, "Protect Against
// Automated Attacks"; ASVS 5.0 V6.3.1).
//
// The first Threshold failures cost nothing; the Threshold-th starts a
// back-off of Base, and every further failure doubles it, up to Max. While
// it lasts every attempt is refused before the password is checked, with
// the same answer whether the password is right or not, and a refused
// attempt does not count as a failure, so waiting always ends it: there is
// no lockout an attacker can make permanent. A success clears an
// account's failures (not an address's: an attacker with an account of
// their own must not be able to clear their address's count by logging in
// to it between guesses); failures are forgotten Forget after the last one.
//
// By default the state is in memory, per process: with several latch
// serve nodes an attacker spreading guesses over them gets each node's
// allowance. server.Config.SharedLoginThrottle (Redis) counts across nodes with
// these same rules. In memory, at most Entries keys are remembered per
// scope; when full, a key below the threshold (the one whose last failure
// is oldest) is forgotten before any key that has reached it, so that a
// flood of failures on other keys cannot end a back-off.
type Config struct {
	Threshold int
	Base, Max time.Duration
	Forget    time.Duration
	Entries   int
}

// WithDefaults sets each zero field of t to d's.
func (t *Config) WithDefaults(d Config) {
	if t.Threshold == 0 {
		t.Threshold = d.Threshold
	}
	if t.Base == 0 {
		t.Base = d.Base
	}
	if t.Max == 0 {
		t.Max = d.Max
	}
	if t.Forget == 0 {
		t.Forget = d.Forget
	}
	if t.Entries == 0 {
		t.Entries = d.Entries
	}
}

// Validate checks t; scope names it in the error.
func (t Config) Validate(scope string) error {
	switch {
	case t.Threshold < 1:
		return fmt.Errorf("%s login throttle: threshold %d must be at least 1", scope, t.Threshold)
	case t.Base <= 0 || t.Max < t.Base:
		return fmt.Errorf("%s login throttle: back-off base %v must be positive and at most the maximum %v", scope, t.Base, t.Max)
	case t.Forget < t.Max:
		// Otherwise the count would be forgotten before the back-off could
		// reach its cap, and the cap would mean nothing.
		return fmt.Errorf("%s login throttle: failures must be remembered (%v) at least as long as the maximum back-off %v", scope, t.Forget, t.Max)
	case t.Entries < 1:
		return fmt.Errorf("%s login throttle: entries %d must be at least 1", scope, t.Entries)
	}
	return nil
}

// Defaults: an account gets 5 free failures, an address (which many users
// behind one NAT may share) 20; both back off from 1s to 15 minutes.
// Forgetting an account's failures after a day without one keeps an
// attacker at the cap to about 100 guesses a day per account (NIST SP
// 800-63B-4 §3.2.2 allows at most 100 consecutive failures); an address's
// are forgotten after an hour so a shared address recovers from its users'
// typos.
const (
	DefaultAccountThreshold = 5
	DefaultAddressThreshold = 20
	DefaultMax              = 15 * time.Minute
)

var (
	DefaultAccount = Config{Threshold: DefaultAccountThreshold, Base: time.Second, Max: DefaultMax, Forget: 24 * time.Hour, Entries: 100_000}
	DefaultAddress = Config{Threshold: DefaultAddressThreshold, Base: time.Second, Max: DefaultMax, Forget: time.Hour, Entries: 100_000}
)

// Throttle is the state of one scope of the login back-off, with the
// rules of Config. Keys are SHA-256 hashes (Key) of the account or the
// address. Memory is the default; package redis has one that every node
// shares. Package throttletest is the contract every implementation passes.
type Throttle interface {
	// Blocked returns how long key must still wait at now; 0 when it may
	// try. It does not count as a failure.
	Blocked(ctx context.Context, key [32]byte, now time.Time) (time.Duration, error)
	// Fail records a failure of key at now and reports whether it started
	// or lengthened a back-off.
	Fail(ctx context.Context, key [32]byte, now time.Time) (backoff bool, err error)
	// Reset forgets key's failures.
	Reset(ctx context.Context, key [32]byte) error
}

// Memory is the in-memory state of one scope: failures per key, in a map
// bounded by two lists ordered by last failure (front: most recent), one
// of the keys that have reached the threshold and one of those that have
// not. A full map forgets a key below the threshold first, so that
// failures spread over many other keys cannot flush a key's back-off:
// evicting one that has reached it takes Entries keys each pushed to the
// threshold, Threshold×Entries failures that the address throttle also
// counts.
type Memory struct {
	cfg     Config
	mu      sync.Mutex
	entries map[[32]byte]*list.Element
	quiet   *list.List // below the threshold
	backing *list.List // at or above it: in a back-off, or one failure from the next
}

type throttleEntry struct {
	key      [32]byte
	failures int
	last     time.Time // last failure
	until    time.Time // end of the back-off; zero or past when none
	backing  bool      // on the backing list
}

// NewMemory returns an empty in-memory throttle of cfg (taken as valid:
// Config.Validate).
func NewMemory(cfg Config) *Memory {
	return &Memory{cfg: cfg, entries: make(map[[32]byte]*list.Element), quiet: list.New(), backing: list.New()}
}

// Key hashes an account or address so that a long or hostile string costs
// a fixed 32 bytes of memory.
func Key(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// blocked returns how long key must still wait at now; 0 when it may try.
func (t *Memory) blocked(key [32]byte, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.entries[key]
	if !ok {
		return 0
	}
	e := el.Value.(*throttleEntry)
	if now.Sub(e.last) >= t.cfg.Forget {
		t.remove(el)
		return 0
	}
	if d := e.until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail records a failure of key at now and reports whether it started or
// lengthened a back-off.
func (t *Memory) fail(key [32]byte, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e *throttleEntry
	if el, ok := t.entries[key]; ok {
		e = el.Value.(*throttleEntry)
		if now.Sub(e.last) >= t.cfg.Forget {
			e.failures = 0
		}
		t.remove(el)
	} else {
		for len(t.entries) >= t.cfg.Entries {
			t.evict(now)
		}
		e = &throttleEntry{key: key}
	}
	e.failures++
	e.last = now
	backoff := e.failures >= t.cfg.Threshold
	if backoff {
		e.until = now.Add(t.backoff(e.failures))
	}
	e.backing = backoff
	l := t.quiet
	if backoff {
		l = t.backing
	}
	t.entries[key] = l.PushFront(e)
	return backoff
}

// evict forgets one key to make room: one whose failures are already
// forgotten, else the quiet key whose last failure is oldest, and only
// when every key has reached the threshold the oldest of those.
func (t *Memory) evict(now time.Time) {
	if el := t.backing.Back(); el != nil && now.Sub(el.Value.(*throttleEntry).last) >= t.cfg.Forget {
		t.remove(el)
		return
	}
	if el := t.quiet.Back(); el != nil {
		t.remove(el)
		return
	}
	t.remove(t.backing.Back())
}

// backoff is Base doubled once per failure beyond the threshold, capped.
func (t *Memory) backoff(failures int) time.Duration {
	n := failures - t.cfg.Threshold
	if n >= 62 {
		return t.cfg.Max
	}
	d := float64(t.cfg.Base) * math.Pow(2, float64(n))
	if d >= float64(t.cfg.Max) {
		return t.cfg.Max
	}
	return time.Duration(d)
}

// reset forgets key's failures (an account's, after a success).
func (t *Memory) reset(key [32]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		t.remove(el)
	}
}

// Blocked, Fail and Reset make Memory a Throttle; they cannot fail.
func (t *Memory) Blocked(_ context.Context, key [32]byte, now time.Time) (time.Duration, error) {
	return t.blocked(key, now), nil
}

func (t *Memory) Fail(_ context.Context, key [32]byte, now time.Time) (bool, error) {
	return t.fail(key, now), nil
}

func (t *Memory) Reset(_ context.Context, key [32]byte) error {
	t.reset(key)
	return nil
}

// BackingOff counts the keys in a back-off at now, for the metrics gauge.
func (t *Memory) BackingOff(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for el := t.backing.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*throttleEntry); now.Before(e.until) {
			n++
		}
	}
	return n
}

func (t *Memory) remove(el *list.Element) {
	e := el.Value.(*throttleEntry)
	delete(t.entries, e.key)
	if e.backing {
		t.backing.Remove(el)
	} else {
		t.quiet.Remove(el)
	}
}
