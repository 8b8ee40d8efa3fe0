package main

import (
	"testing"
	"time"
)

func TestShortDuration_WritesHelpTextDurations(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Minute, "10m"},
		{14 * 24 * time.Hour, "14 days"},
		{time.Hour, "1h"},
		{150 * time.Minute, "2h30m"},
		{90 * time.Second, "1m30s"},
		{30 * time.Second, "30s"},
		{36 * time.Hour, "36h"},
	} {
		if got := shortDuration(c.d); got != c.want {
			t.Errorf("shortDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
