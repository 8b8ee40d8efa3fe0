//go:build !linux

package verify

import "time"

// threadCPU is not measured outside Linux; the benchmark's cpu metrics
// are then 0.
func threadCPU() time.Duration { return 0 }
