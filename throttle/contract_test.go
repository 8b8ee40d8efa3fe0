package throttle_test

import (
	"testing"

	"github.com/latch-auth/latch/throttle"
	"github.com/latch-auth/latch/throttle/throttletest"
)

// TestThrottle_Contract_Memory runs the Throttle contract against the
// in-memory throttle; redis.TestThrottle_Contract runs it against Redis.
func TestThrottle_Contract_Memory(t *testing.T) {
	throttletest.Run(t, func(_ *testing.T, cfg throttle.Config) throttle.Throttle {
		return throttle.NewMemory(cfg)
	})
}
