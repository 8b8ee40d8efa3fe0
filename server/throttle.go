package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latch-auth/latch/throttle"
)

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
	local     *throttle.Memory
	shared    throttle.Throttle // nil: memory only
	log       *slog.Logger
	fallbacks prometheus.Counter
	failing   atomic.Bool // the last shared call failed (for logging once)
	retry     time.Duration
	// downUntil (unix nanoseconds, the real clock: it is about the
	// backend, not about logins) is when to try the shared state again.
	downUntil atomic.Int64
}

func (s *Server) newLoginThrottle(scope string, cfg throttle.Config) *loginThrottle {
	t := &loginThrottle{scope: scope, local: throttle.NewMemory(cfg), log: s.log, retry: sharedThrottleRetry,
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
	wait, _ := t.local.Blocked(ctx, key, now) // memory cannot fail
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
	backoff, _ := t.local.Fail(ctx, key, now)
	return backoff
}

func (t *loginThrottle) reset(ctx context.Context, key [32]byte) {
	_ = t.local.Reset(ctx, key)
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
