package main

import (
	"time"

	"github.com/spf13/pflag"
)

// testClockFlag shifts the server's clock, so the fault suite can run a
// node whose clock is ahead of the others' (a host whose NTP failed)
// without changing the machine's clock. It is hidden from --help and named
// for what it is: no deployment has a use for it.
const testClockFlag = "insecure-test-clock-offset"

func addTestClockFlag(f *pflag.FlagSet, offset *time.Duration) {
	f.DurationVar(offset, testClockFlag, 0, "for tests only: run the server's clock this far ahead (or behind, if negative) of the host's")
	_ = f.MarkHidden(testClockFlag)
}

// testClock is the server's clock: nil (time.Now, the server's default)
// unless an offset is set.
func testClock(offset time.Duration) func() time.Time {
	if offset == 0 {
		return nil
	}
	return func() time.Time { return time.Now().Add(offset) }
}
