package verify

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// keySnapshot is one fetched JWKS, immutable once stored.
type keySnapshot struct {
	keys map[string]publicKey
	// next is when the keys are stale: the next request refetches them in
	// the background and goes on with these.
	next time.Time
}

// remoteKeys is the token.KeySet of a Verifier: the issuer's JWKS, cached.
// Reads are lock-free; fetches are single-flight: one at a time, and
// callers that arrive during it share its result.
type remoteKeys struct {
	uri      string
	fetch    *fetcher
	allowed  []latch.Algorithm
	floor    time.Duration
	ceiling  time.Duration
	interval time.Duration // least time between fetches for unknown kids
	now      func() time.Time
	log      *slog.Logger
	// changed is called when a fetch removes or replaces a key, so the
	// Verifier drops the tokens it verified with it.
	changed func()

	snap atomic.Pointer[keySnapshot]

	mu          sync.Mutex
	inflight    *keyFetch
	lastAttempt time.Time
}

type keyFetch struct {
	done chan struct{}
	err  error
}

// errRateLimited: an unknown kid arrived within interval of the last fetch.
var errRateLimited = errors.New("verify: JWKS fetched recently; not refetching for an unknown kid")

// Key implements token.KeySet.
func (k *remoteKeys) Key(ctx context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	s := k.snap.Load()
	if pk, ok := s.keys[kid]; ok {
		if k.now().After(s.next) {
			k.refreshInBackground()
		}
		return pk.pub, pk.alg, nil
	}
	// An unknown kid may be a key published after our last fetch: look
	// once, rate-limited for everyone together, so a flood of forged kids
	// costs the issuer at most one request per interval (security
	// invariant 1).
	if err := k.refresh(ctx, false); err != nil && !errors.Is(err, errRateLimited) {
		k.log.Warn("verify: JWKS refresh for an unknown kid failed; keeping the keys we have", "kid", kid, "err", err)
	}
	if pk, ok := k.snap.Load().keys[kid]; ok {
		return pk.pub, pk.alg, nil
	}
	return nil, "", fmt.Errorf("verify: kid %q is not in the issuer's JWKS: %w", kid, token.ErrUnknownKey)
}

// refreshInBackground starts a fetch of stale keys unless one is running.
func (k *remoteKeys) refreshInBackground() {
	k.mu.Lock()
	if k.inflight != nil || !k.now().After(k.snap.Load().next) {
		k.mu.Unlock()
		return
	}
	f := k.startLocked()
	k.mu.Unlock()
	go k.run(f)
}

// refresh fetches the JWKS and waits for the result. Unless force, it does
// not fetch within interval of the last attempt; a fetch already running
// is joined, whatever force says.
func (k *remoteKeys) refresh(ctx context.Context, force bool) error {
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		if !force && !k.lastAttempt.IsZero() && k.now().Sub(k.lastAttempt) < k.interval {
			k.mu.Unlock()
			return errRateLimited
		}
		f = k.startLocked()
		k.mu.Unlock()
		// Detached from ctx: the fetch serves every waiter, and one
		// caller giving up must not fail it for the others.
		go k.run(f)
	} else {
		k.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *remoteKeys) startLocked() *keyFetch {
	f := &keyFetch{done: make(chan struct{})}
	k.inflight = f
	k.lastAttempt = k.now()
	return f
}

func (k *remoteKeys) run(f *keyFetch) {
	snap, err := k.load(context.Background())
	k.mu.Lock()
	old := k.snap.Load()
	if err != nil {
		if old != nil {
			// The issuer is down or serves garbage: keep serving with the
			// keys we have, and try again after interval.
			k.snap.Store(&keySnapshot{keys: old.keys, next: k.now().Add(k.interval)})
			k.log.Warn("verify: JWKS refresh failed; keeping the keys we have", "jwks_uri", k.uri, "err", err)
		}
	} else {
		k.snap.Store(snap)
	}
	k.inflight = nil
	k.mu.Unlock()
	// Flush what the old keys vouched for before waking the waiters: a
	// waiter that saw the new keys must not then find a token of a
	// removed key in the cache.
	if err == nil && old != nil && k.changed != nil && keysChanged(old.keys, snap.keys) {
		k.changed()
	}
	f.err = err
	close(f.done)
}

// load fetches and parses the JWKS.
func (k *remoteKeys) load(ctx context.Context) (*keySnapshot, error) {
	hdr, body, err := k.fetch.get(ctx, k.uri)
	if err != nil {
		return nil, err
	}
	keys, skipped, err := parseJWKS(body, k.allowed)
	for _, s := range skipped {
		k.log.Warn("verify: JWK refused", "jwks_uri", k.uri, "err", s)
	}
	if err != nil {
		return nil, err
	}
	ttl := k.floor
	if age, ok := maxAge(hdr); ok {
		ttl = min(max(age, k.floor), k.ceiling)
	}
	return &keySnapshot{keys: keys, next: k.now().Add(ttl)}, nil
}

// maxAge reads max-age from Cache-Control (RFC 9111 §5.2.2.1). no-store and
// no-cache mean "refetch as soon as allowed", i.e. the floor.
func maxAge(h http.Header) (time.Duration, bool) {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, val, _ := strings.Cut(d, "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					return 0, false
				}
				return time.Duration(min(n, 1<<31)) * time.Second, true
			}
		}
	}
	return 0, false
}

// keysChanged reports whether a key of old is gone from new or differs.
func keysChanged(old, new map[string]publicKey) bool {
	for kid, o := range old {
		n, ok := new[kid]
		if !ok || n.alg != o.alg {
			return true
		}
		if eq, ok := o.pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(n.pub) {
			return true
		}
	}
	return false
}

// staticKeys is the token.KeySet of NewWithJWKS: a fixed set, never
// refetched.
type staticKeys map[string]publicKey

// Key implements token.KeySet.
func (k staticKeys) Key(_ context.Context, kid string) (crypto.PublicKey, latch.Algorithm, error) {
	if pk, ok := k[kid]; ok {
		return pk.pub, pk.alg, nil
	}
	return nil, "", fmt.Errorf("verify: kid %q is not in the configured JWKS: %w", kid, token.ErrUnknownKey)
}
