package verify

import "github.com/latch-auth/latch/internal/tokencache"

// cache is the token cache shared with the gateway (internal/tokencache).
type cache[V any] = tokencache.Cache[V]

func newCache[V any](max int) *cache[V] { return tokencache.New[V](max) }
