package gateway

import (
	"net"
	"net/http"
	"sync"

	"golang.org/x/time/rate"
)

// maxSources bounds the per-address limiters of untaggedBudget: past it
// they are all forgotten at once. An attacker with that many addresses
// refills the per-address budgets, but never the overall one.
const maxSources = 10_000

// untaggedBudget admits exchanges of tokens the gateway cannot judge
// itself (Config.UntaggedRate): an overall token bucket, and one per
// client address so that one address cannot spend it all.
type untaggedBudget struct {
	all       *rate.Limiter
	perSource rate.Limit
	burst     int

	mu      sync.Mutex
	sources map[string]*rate.Limiter
}

func newUntaggedBudget(all, perSource float64) *untaggedBudget {
	return &untaggedBudget{
		all:       rate.NewLimiter(rate.Limit(all), max(1, int(2*all))),
		perSource: rate.Limit(perSource), burst: max(1, int(2*perSource)),
		sources: map[string]*rate.Limiter{},
	}
}

// allow reports whether r may cost an exchange now. The address is the
// TCP peer's: behind a proxy every client shares the proxy's allowance,
// and no header a client can write decides it.
func (b *untaggedBudget) allow(r *http.Request) bool {
	src, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		src = r.RemoteAddr
	}
	b.mu.Lock()
	lim, ok := b.sources[src]
	if !ok {
		if len(b.sources) >= maxSources {
			clear(b.sources)
		}
		lim = rate.NewLimiter(b.perSource, b.burst)
		b.sources[src] = lim
	}
	b.mu.Unlock()
	// The address's token is spent first: a refused address does not
	// drain the overall budget the others share.
	return lim.Allow() && b.all.Allow()
}
