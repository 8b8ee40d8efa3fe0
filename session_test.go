package latch_test

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

// security invariant 6: idle and absolute timeouts both apply.
func TestSessionActive_IdleAndAbsoluteTimeoutsBothApply(t *testing.T) {
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		idle, abs  time.Time
		wantActive bool
	}{
		{"both ahead", now.Add(time.Minute), now.Add(time.Hour), true},
		{"idle passed", now.Add(-time.Second), now.Add(time.Hour), false},
		{"absolute passed", now.Add(time.Minute), now.Add(-time.Second), false},
		{"idle exactly now", now, now.Add(time.Hour), false},
		{"absolute exactly now", now.Add(time.Minute), now, false},
		{"idle beyond absolute", now.Add(2 * time.Hour), now.Add(time.Nanosecond), true},
		{"zero expiries", time.Time{}, time.Time{}, false},
		{"zero idle", time.Time{}, now.Add(time.Hour), false},
	} {
		s := &latch.Session{IdleExpiresAt: tc.idle, ExpiresAt: tc.abs}
		if got := s.Active(now); got != tc.wantActive {
			t.Errorf("%s: Active = %v, want %v", tc.name, got, tc.wantActive)
		}
	}
}
