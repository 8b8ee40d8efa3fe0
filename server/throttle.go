package server

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
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
// The state is in memory, per process: with several latch serve nodes an
// attacker spreading guesses over them gets each node's allowance. At most
// Entries keys are remembered per scope; when full, the key whose last
// failure is oldest is forgotten first.
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
	defaultAccountThrottle = Throttle{Threshold: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour, Entries: 100_000}
	defaultIPThrottle      = Throttle{Threshold: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, Entries: 100_000}
)

// throttle is the state of one scope: failures per key, in a map bounded
// by an LRU list ordered by last failure (front: most recent).
type throttle struct {
	cfg     Throttle
	mu      sync.Mutex
	entries map[[32]byte]*list.Element
	lru     *list.List
}

type throttleEntry struct {
	key      [32]byte
	failures int
	last     time.Time // last failure
	until    time.Time // end of the back-off; zero or past when none
}

func newThrottle(cfg Throttle) *throttle {
	return &throttle{cfg: cfg, entries: make(map[[32]byte]*list.Element), lru: list.New()}
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
		t.lru.MoveToFront(el)
	} else {
		for t.lru.Len() >= t.cfg.Entries {
			t.remove(t.lru.Back())
		}
		e = &throttleEntry{key: key}
		t.entries[key] = t.lru.PushFront(e)
	}
	e.failures++
	e.last = now
	if e.failures < t.cfg.Threshold {
		return false
	}
	e.until = now.Add(t.backoff(e.failures))
	return true
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

// backingOff counts the keys in a back-off at now, for the metrics gauge.
func (t *throttle) backingOff(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for el := t.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*throttleEntry); now.Before(e.until) {
			n++
		}
	}
	return n
}

func (t *throttle) remove(el *list.Element) {
	delete(t.entries, el.Value.(*throttleEntry).key)
	t.lru.Remove(el)
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
