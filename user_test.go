package latch_test

import (
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

func TestNormalizeUsername(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"ALICE@Example.COM", "alice@example.com"},
		{"\u212Aelvin", "kelvin"}, // KELVIN SIGN lower-cases to k: it cannot impersonate "kelvin"
		{"ÉLODIE", "élodie"},
		{"Σίσυφος", "σίσυφος"},
		{"o'brien+tag_1.x-y", "o'brien+tag_1.x-y"},
		{strings.Repeat("a", latch.MaxUsernameLen), strings.Repeat("a", latch.MaxUsernameLen)},
	} {
		got, err := latch.NormalizeUsername(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeUsername_Refused(t *testing.T) {
	for _, in := range []string{
		"",
		strings.Repeat("a", latch.MaxUsernameLen+1),
		strings.Repeat("é", latch.MaxUsernameLen/2+1), // 33 runes, 66 bytes
		"alice bob",
		" alice",
		"alice\t",
		"alice\u00a0", // no-break space
		"ali\u200bce", // zero-width space
		"ali\u202ece", // right-to-left override
		"alice\x00",
		"alice\n",
		"\xff\xfe",
	} {
		got, err := latch.NormalizeUsername(in)
		if latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want EINVALID", in, got, err)
		}
	}
}
