package server

import (
	"time"

	"github.com/latch-auth/latch/authority"
	"github.com/latch-auth/latch/throttle"
)

// Defaults of Config: what a zero field means. cmd/latch's flags use them,
// so the help text and the server cannot disagree.
const (
	DefaultAccessTokenTTL      = authority.DefaultAccessTokenTTL
	DefaultMaxAccessTokenTTL   = authority.DefaultMaxAccessTokenTTL
	DefaultLeeway              = authority.DefaultLeeway
	DefaultRefreshTokenTTL     = authority.DefaultRefreshTokenTTL
	DefaultRefreshFamilyMaxAge = 30 * 24 * time.Hour
	// DefaultRefreshGrace is how long a just-rotated refresh token still
	// answers with its successor (a client's retry after a lost response).
	DefaultRefreshGrace = 10 * time.Second
	// DefaultAuthCodeTTL is well under the 10 minutes RFC 6749 §4.1.2 allows.
	DefaultAuthCodeTTL = time.Minute
	DefaultIDTokenTTL  = 10 * time.Minute
	// DefaultIntrospectionRate is per client and second; the burst is
	// twice that.
	DefaultIntrospectionRate  = 2000
	DefaultIntrospectionBurst = 2 * DefaultIntrospectionRate
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultSessionMaxAge      = 12 * time.Hour
	DefaultLoginQueueTimeout  = time.Second
	DefaultClientCacheTTL     = time.Second
	// DefaultTokenCacheSize bounds the memory of the token cache to about
	// 40 MiB (BENCHMARKS.md measures an entry).
	DefaultTokenCacheSize = 100_000
	DefaultPurgeInterval  = time.Minute
	// DefaultKeyReloadInterval bounds how long another node's key rotation
	// takes to reach this one.
	DefaultKeyReloadInterval = 10 * time.Second

	// The login throttle: failures of one account (or one client address,
	// IPv6 by /64) before its back-off starts, and the longest back-off.
	DefaultLoginAccountThreshold = throttle.DefaultAccountThreshold
	DefaultLoginIPThreshold      = throttle.DefaultAddressThreshold
	DefaultLoginBackoffMax       = throttle.DefaultMax
)
