package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/latch-auth/latch"
)

// Defaults of Config.
const (
	DefaultAlgorithm   = latch.ES256
	DefaultPrePublish  = time.Hour
	DefaultMaxTokenTTL = 24 * time.Hour
	DefaultLeeway      = time.Minute
	DefaultRSABits     = 2048
)

// maxCacheAge caps the JWKS max-age; see cacheControl.
const maxCacheAge = 15 * time.Minute

// Config configures a Manager. The zero value is valid: every zero field
// takes its default. Every process that shares a store (the server nodes and
// the CLI) should use the same PrePublish, MaxTokenTTL and Leeway, since
// they decide when keys sign and leave the JWKS.
type Config struct {
	// Algorithm is the algorithm of new keys (Rotate with alg "" and
	// EnsureKey). Default ES256.
	Algorithm latch.Algorithm
	// IDTokenAlgorithm, when set and different from Algorithm, keeps a
	// second line of keys of that algorithm (latch.PurposeIDToken) that
	// sign ID tokens only: EnsureKey creates its first key, Rotate rotates
	// it with the default line, SigningFor hands it out. Empty: none.
	// latch serve sets RS256, the one algorithm every OIDC relying party
	// must verify (OIDC Core §15.1, Discovery §3).
	IDTokenAlgorithm latch.Algorithm
	// PrePublish is how long a key made by Rotate sits in the JWKS before it
	// signs, so that every verifier has fetched it before the first token
	// signed with it arrives. It must comfortably exceed the server's Reload
	// interval plus twice the JWKS max-age (a shared cache, then the
	// verifier's own). Default 1h. EnsureKey ignores it: the first key of an
	// empty store signs at once, as no verifier can be waiting for it.
	PrePublish time.Duration
	// MaxTokenTTL is the longest lifetime of any token a key signs. A key
	// that stopped signing stays published this long, plus Leeway, so every
	// token it signed verifies until it expires. Default 24h.
	MaxTokenTTL time.Duration
	// Leeway is the clock skew allowed between latch and verifiers. Default 1m.
	Leeway time.Duration
	// RSABits is the modulus size of new RS256 and PS256 keys: 2048 (the
	// default), 3072 or 4096.
	RSABits int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand is passed to key generation. Default crypto/rand.Reader. Since Go
	// 1.26 the standard library ignores it and always uses a secure source
	// (tests that need determinism use testing/cryptotest.SetGlobalRandom).
	// Nonces for sealing always come from crypto/rand.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if c.PrePublish == 0 {
		c.PrePublish = DefaultPrePublish
	}
	if c.MaxTokenTTL == 0 {
		c.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RSABits == 0 {
		c.RSABits = DefaultRSABits
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Validate checks c with its defaults applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := checkAlgorithm(c.Algorithm); err != nil {
		errs = append(errs, err)
	}
	if c.IDTokenAlgorithm != "" {
		if err := checkAlgorithm(c.IDTokenAlgorithm); err != nil {
			errs = append(errs, err)
		}
	}
	if c.PrePublish < 0 {
		errs = append(errs, fmt.Errorf("keys: pre-publication period %v is negative", c.PrePublish))
	}
	if c.MaxTokenTTL < 0 {
		errs = append(errs, fmt.Errorf("keys: maximum token lifetime %v is negative", c.MaxTokenTTL))
	}
	if c.Leeway < 0 {
		errs = append(errs, fmt.Errorf("keys: leeway %v is negative", c.Leeway))
	}
	switch c.RSABits {
	case 2048, 3072, 4096:
	default:
		errs = append(errs, fmt.Errorf("keys: RSA key size %d is not supported; use 2048, 3072 or 4096", c.RSABits))
	}
	return errors.Join(errs...)
}

func checkAlgorithm(alg latch.Algorithm) error {
	if !slices.Contains(latch.Algorithms, alg) {
		return latch.Errorf(latch.EINVALID, "keys: algorithm %.20q is not supported; use one of %v", alg, latch.Algorithms)
	}
	return nil
}

// cacheControl returns the Cache-Control of the JWKS (RFC 9111 §5.2.2.1).
//
// A new key must reach every verifier before it signs. A verifier's copy can
// be as old as two max-ages (one in a shared cache, then one in the
// verifier), so max-age is a quarter of the pre-publication period: that
// leaves half of it for the server's Reload interval and clock skew. It is
// capped at 15 minutes because max-age is also how long a key removed with
// `latch keys retire --now` (a compromise) can linger in caches. There is no
// floor: with a very short pre-publication period, correctness wins over
// fewer fetches. Verifiers also refetch, rate-limited, on an unknown kid
// (security invariant 1), which covers a cache that is late anyway.
func cacheControl(prePublish time.Duration) string {
	age := min(prePublish/4, maxCacheAge)
	if age < time.Second {
		return "no-cache"
	}
	return fmt.Sprintf("public, max-age=%d", int64(age/time.Second))
}
