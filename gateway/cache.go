package gateway

import "github.com/latch-auth/latch/internal/tokencache"

// cache maps SHA-256 of an opaque token to the exchange answer for it
// (internal/tokencache, shared with verify). The key is exactly
// latch.Revocation.TokenHash, so the revocation feed can Drop it.
type cache = tokencache.Cache[answer]

func newCache(max int) *cache { return tokencache.New[answer](max) }
