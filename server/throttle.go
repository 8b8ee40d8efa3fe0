package server

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Throttle configures the login back-off of one scope: an account or a
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
// allowance. Config.SharedLoginThrottle (Redis) counts across nodes with
// these same rules. In memory, at most Entries keys are remembered per
// scope; when full, a key below the threshold (the one whose last failure
// is oldest) is forgotten before any key that has reached it, so that a
// flood of failures on other keys cannot end a back-off.
type Throttle struct {
	Threshold int
	Base, Max time.Duration
	Forget    time.Duration
	Entries   int
}

func (t *Throttle) withDefaults(d Throttle) {
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
func (t Throttle) Validate(scope string) error {
	switch {
	case t.Threshold < 1:
		return fmt.Errorf("server: %s login throttle: threshold %d must be at least 1", scope, t.Threshold)
	case t.Base <= 0 || t.Max < t.Base:
		return fmt.Errorf("server: %s login throttle: back-off base %v must be positive and at most the maximum %v", scope, t.Base, t.Max)
	case t.Forget < t.Max:
		// Otherwise the count would be forgotten before the back-off could
		// reach its cap, and the cap would mean nothing.
		return fmt.Errorf("server: %s login throttle: failures must be remembered (%v) at least as long as the maximum back-off %v", scope, t.Forget, t.Max)
	case t.Entries < 1:
		return fmt.Errorf("server: %s login throttle: entries %d must be at least 1", scope, t.Entries)
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
var (
	defaultAccountThrottle = Throttle{Threshold: DefaultLoginAccountThreshold, Base: time.Second, Max: DefaultLoginBackoffMax, Forget: 24 * time.Hour, Entries: 100_000}
	defaultIPThrottle      = Throttle{Threshold: DefaultLoginIPThreshold, Base: time.Second, Max: DefaultLoginBackoffMax, Forget: time.Hour, Entries: 100_000}
)

// LoginThrottle is the state of one scope of the login back-off, with the
// rules of Throttle. Keys are SHA-256 hashes (throttleKey) of the account
// or the address. The in-memory one is the default; package redis has one
// that every node shares.
type LoginThrottle interface {
	// Blocked returns how long key must still wait at now; 0 when it may
	// try. It does not count as a failure.
	Blocked(ctx context.Context, key [32]byte, now time.Time) (time.Duration, error)
	// Fail records a failure of key at now and reports whether it started
	// or lengthened a back-off.
	Fail(ctx context.Context, key [32]byte, now time.Time) (backoff bool, err error)
	// Reset forgets key's failures.
	Reset(ctx context.Context, key [32]byte) error
}

// sharedThrottleTimeout bounds one call to a shared throttle. Redis
// answers in well under a millisecond; one that does not answer in this
// long is treated as down for that call, so that an outage costs a login
// at most a few of these, never a hang.
const sharedThrottleTimeout = 500 * time.Millisecond

// sharedThrottleRetry is how long the shared throttle is left alone after
// a call to it failed: meanwhile this node's memory answers at once, so a
// Redis that hangs costs one login a timeout per interval rather than
// every login several.
const sharedThrottleRetry = time.Second

// loginThrottle is one scope of the login back-off as checkCredentials
// uses it: the shared state when there is one, and this node's memory
// when there is none or for a call the shared one fails. The memory is
// always consulted too, so failures counted there during an outage keep
// their back-off after it. Its methods cannot fail.
type loginThrottle struct {
	scope     string
	local     *throttle
	shared    LoginThrottle // nil: memory only
	log       *slog.Logger
	fallbacks prometheus.Counter
	failing   atomic.Bool // the last shared call failed (for logging once)
	retry     time.Duration
	// downUntil (unix nanoseconds, the real clock: it is about the
	// backend, not about logins) is when to try the shared state again.
	downUntil atomic.Int64
}

func (s *Server) newLoginThrottle(scope string, cfg Throttle) *loginThrottle {
	t := &loginThrottle{scope: scope, local: newThrottle(cfg), log: s.log, retry: sharedThrottleRetry,
		fallbacks: s.metrics.throttleFallbacks.WithLabelValues(scope)}
	if s.cfg.SharedLoginThrottle != nil {
		t.shared = s.cfg.SharedLoginThrottle(scope, cfg)
	}
	return t
}

// sharedCtx is the context of one shared call: a client that hangs up
// must not keep its failure from being counted, and a slow backend must
// not hold the login.
func sharedCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sharedThrottleTimeout)
}

// useShared reports whether to call the shared throttle: there is one,
// and it has not failed within the last retry interval (a call it skips
// counts as a fallback).
func (t *loginThrottle) useShared() bool {
	if t.shared == nil {
		return false
	}
	if time.Now().UnixNano() < t.downUntil.Load() {
		t.fallbacks.Inc()
		return false
	}
	return true
}

func (t *loginThrottle) blocked(ctx context.Context, key [32]byte, now time.Time) time.Duration {
	wait := t.local.blocked(key, now)
	if !t.useShared() {
		return wait
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	d, err := t.shared.Blocked(ctx, key, now)
	if t.ok("read", err) {
		wait = max(wait, d)
	}
	return wait
}

func (t *loginThrottle) fail(ctx context.Context, key [32]byte, now time.Time) bool {
	if t.useShared() {
		ctx, cancel := sharedCtx(ctx)
		defer cancel()
		backoff, err := t.shared.Fail(ctx, key, now)
		if t.ok("count a failure", err) {
			return backoff
		}
	}
	return t.local.fail(key, now)
}

func (t *loginThrottle) reset(ctx context.Context, key [32]byte) {
	t.local.reset(key)
	if t.useShared() {
		ctx, cancel := sharedCtx(ctx)
		defer cancel()
		t.ok("reset", t.shared.Reset(ctx, key))
	}
}

// ok reports whether a shared call succeeded; a failure is counted, sets
// the shared state aside for the retry interval, and is logged when it
// begins an outage (and its end when it ends one), not per call: an
// attack during an outage would otherwise flood the log.
func (t *loginThrottle) ok(op string, err error) bool {
	if err == nil {
		if t.failing.CompareAndSwap(true, false) {
			t.log.Info("login throttle: the shared state works again", "scope", t.scope)
		}
		return true
	}
	t.fallbacks.Inc()
	t.downUntil.Store(time.Now().Add(t.retry).UnixNano())
	if t.failing.CompareAndSwap(false, true) {
		t.log.Error("login throttle: the shared state failed; this node counts in its own memory until it works again", "scope", t.scope, "op", op, "err", err)
	}
	return false
}

// throttle is the in-memory state of one scope: failures per key, in a map
// bounded by two lists ordered by last failure (front: most recent), one
// of the keys that have reached the threshold and one of those that have
// not. A full map forgets a key below the threshold first, so that
// failures spread over many other keys cannot flush a key's back-off:
// evicting one that has reached it takes Entries keys each pushed to the
// threshold, Threshold×Entries failures that the address throttle also
// counts.
type throttle struct {
	cfg     Throttle
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

func newThrottle(cfg Throttle) *throttle {
	return &throttle{cfg: cfg, entries: make(map[[32]byte]*list.Element), quiet: list.New(), backing: list.New()}
}

// throttleKey hashes a key so that a long or hostile string costs a fixed
// 32 bytes of memory.
func throttleKey(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// blocked returns how long key must still wait at now; 0 when it may try.
func (t *throttle) blocked(key [32]byte, now time.Time) time.Duration {
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
func (t *throttle) fail(key [32]byte, now time.Time) bool {
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
func (t *throttle) evict(now time.Time) {
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
func (t *throttle) backoff(failures int) time.Duration {
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
func (t *throttle) reset(key [32]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		t.remove(el)
	}
}

// Blocked, Fail and Reset make throttle a LoginThrottle (for the
// contract tests that every implementation passes).
func (t *throttle) Blocked(_ context.Context, key [32]byte, now time.Time) (time.Duration, error) {
	return t.blocked(key, now), nil
}

func (t *throttle) Fail(_ context.Context, key [32]byte, now time.Time) (bool, error) {
	return t.fail(key, now), nil
}

func (t *throttle) Reset(_ context.Context, key [32]byte) error {
	t.reset(key)
	return nil
}

// backingOff counts the keys in a back-off at now, for the metrics gauge.
func (t *throttle) backingOff(now time.Time) int {
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

func (t *throttle) remove(el *list.Element) {
	e := el.Value.(*throttleEntry)
	delete(t.entries, e.key)
	if e.backing {
		t.backing.Remove(el)
	} else {
		t.quiet.Remove(el)
	}
}

// clientAddr returns the address a request came from, as the key of the
// per-address throttle: RemoteAddr, or, when RemoteAddr is one of the
// trusted proxies, the right-most X-Forwarded-For entry that is not a
// trusted proxy (entries left of it were written by the client and may be
// forged). IPv6 addresses are keyed by their /64, which one attacker
// usually holds whole.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	addr, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return "unknown"
	}
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				// A hop we cannot read: the trusted proxy before it is the
				// last address we know.
				break
			}
			addr = a.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func parseAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
