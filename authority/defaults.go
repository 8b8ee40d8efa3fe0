package authority

import "time"

// Defaults of the Tokens fields: what a zero field means. The server's
// Config takes the same defaults from here.
const (
	DefaultAccessTokenTTL    = 10 * time.Minute
	DefaultMaxAccessTokenTTL = 24 * time.Hour
	DefaultLeeway            = 30 * time.Second
	DefaultRefreshTokenTTL   = 14 * 24 * time.Hour
)
