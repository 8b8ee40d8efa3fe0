package main

import (
	"net/netip"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/throttle"
)

// loginFlags configure the login sessions and the /login throttling of
// latch serve (docs/login.md).
type loginFlags struct {
	idleTimeout      time.Duration
	maxAge           time.Duration
	accountThreshold int
	ipThreshold      int
	backoffMax       time.Duration
	maxConcurrent    int
	trustedProxies   []string
	proxies          []netip.Prefix // parsed by check
}

func addLoginFlags(cmd *cobra.Command, l *loginFlags) {
	f := cmd.Flags()
	f.DurationVar(&l.idleTimeout, "session-idle-timeout", server.DefaultSessionIdleTimeout, "a login session ends after this long without a request")
	f.DurationVar(&l.maxAge, "session-max-age", server.DefaultSessionMaxAge, "a login session ends this long after login, however active")
	f.IntVar(&l.accountThreshold, "login-account-threshold", server.DefaultLoginAccountThreshold, "failed logins of one account before its exponential back-off starts (1s, doubling)")
	f.IntVar(&l.ipThreshold, "login-ip-threshold", server.DefaultLoginIPThreshold, "failed logins from one client address (IPv6: one /64) before its back-off starts")
	f.DurationVar(&l.backoffMax, "login-backoff-max", server.DefaultLoginBackoffMax, "longest login back-off, per account and per address; it always ends by itself")
	f.IntVar(&l.maxConcurrent, "max-concurrent-logins", 0, "password verifications (argon2) running at once; more wait up to 1s, then get 503 (default 2 x GOMAXPROCS)")
	f.StringSliceVar(&l.trustedProxies, "trusted-proxies", nil, "reverse proxies (IP addresses or CIDR prefixes) whose X-Forwarded-For gives the client address for login throttling")
}

// check validates the flags before serve changes anything.
func (l *loginFlags) check() error {
	switch {
	case l.idleTimeout <= 0 || l.maxAge <= 0:
		return usagef("--session-idle-timeout %v and --session-max-age %v must be positive", l.idleTimeout, l.maxAge)
	case l.accountThreshold < 1 || l.ipThreshold < 1:
		return usagef("--login-account-threshold %d and --login-ip-threshold %d must be at least 1", l.accountThreshold, l.ipThreshold)
	case l.backoffMax < time.Second:
		return usagef("--login-backoff-max %v must be at least 1s, the first back-off", l.backoffMax)
	case l.maxConcurrent < 0:
		return usagef("--max-concurrent-logins %d must be positive (0: 2 x GOMAXPROCS = %d)", l.maxConcurrent, 2*runtime.GOMAXPROCS(0))
	}
	proxies, err := parseProxies(l.trustedProxies)
	l.proxies = proxies
	return err
}

// parseProxies parses --trusted-proxies: addresses or CIDR prefixes.
func parseProxies(list []string) ([]netip.Prefix, error) {
	proxies := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, usagef("--trusted-proxies %q: want an IP address or a CIDR prefix such as 10.0.0.0/8", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	return proxies, nil
}

// apply sets the checked flags in cfg.
func (l *loginFlags) apply(cfg *server.Config) {
	cfg.SessionIdleTimeout, cfg.SessionMaxAge = l.idleTimeout, l.maxAge
	cfg.LoginAccountThrottle = throttle.Config{Threshold: l.accountThreshold, Max: l.backoffMax}
	cfg.LoginIPThrottle = throttle.Config{Threshold: l.ipThreshold, Max: l.backoffMax}
	// The account's failures are remembered a day, the address's an hour
	// (server defaults), but never less than the cap, so that it holds.
	cfg.LoginAccountThrottle.Forget = max(24*time.Hour, l.backoffMax)
	cfg.LoginIPThrottle.Forget = max(time.Hour, l.backoffMax)
	cfg.MaxConcurrentLogins = l.maxConcurrent
	cfg.TrustedProxies = l.proxies
}
