// Package throttletest is the contract every throttle.Throttle passes:
// the rules of throttle.Config, on a fixed clock, so that the in-memory
// throttle (run in package throttle) and the Redis one (package redis)
// answer exactly alike. What the login handler adds (a refused attempt is
// not counted, a success resets accounts only) is tested in package
// server, against both.
package throttletest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/latch-auth/latch/throttle"
)

// New returns an empty throttle of cfg, sharing no key with any other
// throttle the test makes.
type New func(t *testing.T, cfg throttle.Config) throttle.Throttle

// Run runs the contract against the throttles newThrottle makes.
func Run(t *testing.T, newThrottle New) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{t: t, th: newThrottle(t, tc.cfg), now: t0}
			tc.run(c)
		})
	}
}

// t0 is the fixed clock's start; steps are whole milliseconds, which every
// implementation keeps exactly.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var std = throttle.Config{Threshold: 3, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour, Entries: 1000}

var tests = []struct {
	name string
	cfg  throttle.Config
	run  func(*checker)
}{
	{"ThresholdFailuresAreFree_ThenBaseDoublesToMax", std, testDoubling},
	{"ThresholdOne_FirstFailureBacksOff", throttle.Config{Threshold: 1, Base: 2 * time.Second, Max: time.Minute, Forget: time.Hour, Entries: 1000}, testThresholdOne},
	{"Blocked_CountsNothing", std, testBlockedCountsNothing},
	{"Blocked_EndsExactlyAtTheBackOffsEnd", std, testBlockedEnd},
	{"Reset_ForgetsEveryFailure", std, testReset},
	{"Forget_AfterTheLastFailure", std, testForget},
	{"Forget_EndsABackOffAtTheCap", throttle.Config{Threshold: 1, Base: time.Second, Max: time.Minute, Forget: time.Minute, Entries: 1000}, testForgetAtCap},
	{"Keys_AreIndependent", std, testIndependent},
	{"Cap_HoldsWithoutOverflow", throttle.Config{Threshold: 2, Base: time.Millisecond, Max: 90 * time.Second, Forget: time.Hour, Entries: 1000}, testCap},
	{"Unknown_IsNotBlocked_AndResetIsHarmless", std, testUnknown},
}

type checker struct {
	t   *testing.T
	th  throttle.Throttle
	now time.Time
}

func key(s string) [32]byte { return sha256.Sum256([]byte("throttletest:" + s)) }

func (c *checker) advance(d time.Duration) { c.now = c.now.Add(d) }

// fail records a failure of k and checks whether it backed off.
func (c *checker) fail(k string, wantBackoff bool) {
	c.t.Helper()
	got, err := c.th.Fail(context.Background(), key(k), c.now)
	if err != nil {
		c.t.Fatalf("Fail(%s): %v", k, err)
	}
	if got != wantBackoff {
		c.t.Fatalf("Fail(%s) at +%v reported a back-off %v, want %v", k, c.now.Sub(t0), got, wantBackoff)
	}
}

func (c *checker) blocked(k string, want time.Duration) {
	c.t.Helper()
	got, err := c.th.Blocked(context.Background(), key(k), c.now)
	if err != nil {
		c.t.Fatalf("Blocked(%s): %v", k, err)
	}
	if got != want {
		c.t.Fatalf("Blocked(%s) at +%v = %v, want %v", k, c.now.Sub(t0), got, want)
	}
}

func (c *checker) reset(k string) {
	c.t.Helper()
	if err := c.th.Reset(context.Background(), key(k)); err != nil {
		c.t.Fatalf("Reset(%s): %v", k, err)
	}
}

func testDoubling(c *checker) {
	c.fail("a", false)
	c.blocked("a", 0)
	c.fail("a", false)
	c.blocked("a", 0)
	c.fail("a", true) // the Threshold-th
	c.blocked("a", time.Second)
	for _, want := range []time.Duration{2, 4, 8, 8, 8} {
		// At the end of the current back-off the next failure doubles it.
		c.advance(c.mustBlocked("a"))
		c.blocked("a", 0)
		c.fail("a", true)
		c.blocked("a", want*time.Second)
	}
}

func (c *checker) mustBlocked(k string) time.Duration {
	c.t.Helper()
	d, err := c.th.Blocked(context.Background(), key(k), c.now)
	if err != nil || d <= 0 {
		c.t.Fatalf("Blocked(%s) = %v, %v; want a back-off", k, d, err)
	}
	return d
}

func testThresholdOne(c *checker) {
	c.fail("a", true)
	c.blocked("a", 2*time.Second)
	c.advance(2 * time.Second)
	c.fail("a", true)
	c.blocked("a", 4*time.Second)
}

// A refused attempt is never counted: asking, however often, during a
// back-off changes nothing.
func testBlockedCountsNothing(c *checker) {
	c.fail("a", false)
	c.fail("a", false)
	c.fail("a", true)
	for range 50 {
		c.blocked("a", time.Second-c.now.Sub(t0))
		c.advance(10 * time.Millisecond)
	}
	c.advance(time.Second - c.now.Sub(t0))
	c.fail("a", true)
	c.blocked("a", 2*time.Second) // doubled once, for one counted failure
}

func testBlockedEnd(c *checker) {
	c.fail("a", false)
	c.fail("a", false)
	c.advance(5 * time.Millisecond)
	c.fail("a", true)
	c.advance(time.Second - time.Millisecond)
	c.blocked("a", time.Millisecond)
	c.advance(time.Millisecond)
	c.blocked("a", 0)
	c.advance(time.Hour - time.Second - time.Millisecond) // still remembered
	c.fail("a", true)
	c.blocked("a", 2*time.Second)
}

func testReset(c *checker) {
	c.fail("a", false)
	c.fail("a", false)
	c.fail("a", true)
	c.reset("a")
	c.blocked("a", 0)
	c.fail("a", false)
	c.fail("a", false)
	c.fail("a", true)
	c.blocked("a", time.Second) // from the threshold again, not doubled
}

func testForget(c *checker) {
	// Two failures, then one just before Forget: the count is kept and
	// reaches the threshold.
	c.fail("kept", false)
	c.fail("kept", false)
	c.advance(time.Hour - time.Millisecond)
	c.fail("kept", true)
	c.blocked("kept", time.Second)

	// Forget after the last failure, not the first: a failure renews it.
	c.fail("renewed", false)
	c.advance(30 * time.Minute)
	c.fail("renewed", false)
	c.advance(59 * time.Minute)
	c.fail("renewed", true)

	// At exactly Forget after the last one, the count starts again.
	c.fail("forgotten", false)
	c.fail("forgotten", false)
	c.advance(time.Hour)
	c.fail("forgotten", false)
	c.fail("forgotten", false)
	c.blocked("forgotten", 0)
	c.fail("forgotten", true)
	c.blocked("forgotten", time.Second)
}

// Forget is at least Max (Throttle.Validate), so forgetting a key at the
// cap ends its back-off, and the next failure starts from Base.
func testForgetAtCap(c *checker) {
	for range 6 { // 1s, 2s, ... 32s
		c.fail("a", true)
		c.advance(c.mustBlocked("a"))
	}
	c.fail("a", true)
	c.blocked("a", time.Minute) // 64s, capped
	c.advance(time.Minute)
	c.blocked("a", 0)
	c.fail("a", true)
	c.blocked("a", time.Second)
}

func testIndependent(c *checker) {
	c.fail("a", false)
	c.fail("a", false)
	c.fail("a", true)
	c.fail("b", false)
	c.blocked("b", 0)
	c.reset("b")
	c.blocked("a", time.Second)
	c.fail("b", false)
	c.fail("b", false)
	c.fail("a", true)
	c.blocked("a", 2*time.Second)
	c.fail("b", true)
	c.blocked("b", time.Second)
}

func testCap(c *checker) {
	c.fail("a", false)
	for range 200 {
		c.fail("a", true)
	}
	c.blocked("a", 90*time.Second)
	c.advance(90 * time.Second)
	c.fail("a", true)
	c.blocked("a", 90*time.Second)
}

func testUnknown(c *checker) {
	c.blocked("never", 0)
	c.reset("never")
	c.blocked("never", 0)
	c.fail("never", false)
}
