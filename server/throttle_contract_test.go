package server_test

import (
	"testing"

	"github.com/latch-auth/latch/server"
	"github.com/latch-auth/latch/server/throttletest"
)

// TestThrottle_Contract_Memory runs the LoginThrottle contract against the
// in-memory throttle; redis.TestThrottle_Contract runs it against Redis.
func TestThrottle_Contract_Memory(t *testing.T) {
	throttletest.Run(t, func(_ *testing.T, cfg server.Throttle) server.LoginThrottle {
		return server.NewMemoryThrottle(cfg)
	})
}
