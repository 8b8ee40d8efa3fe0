package sqlite

import (
	"database/sql"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestList_RoundTrip(t *testing.T) {
	for _, l := range [][]string{
		nil,
		{""},
		{"read"},
		{"read", "write", "ünïcødé"},
		{`quote"inside`, `back\\slash`, "<html>&", "tab\there", "\x00nul"},
		{"a,b", `","`, "[", "]"},
	} {
		got, err := listOf(listArg(l))
		if err != nil {
			t.Fatalf("listOf(listArg(%q)): %v", l, err)
		}
		if !slices.Equal(got, l) {
			t.Errorf("listOf(listArg(%q)) = %q", l, got)
		}
	}
}

// FuzzListOf checks that the fast path agrees with encoding/json on every
// input encoding/json accepts, and that listArg/listOf round-trip.
func FuzzListOf(f *testing.F) {
	for _, s := range []string{`[]`, `["a"]`, `["a","b"]`, `["a\"b"]`, `[ "a" ]`, `["a",]`, `["\u003c"]`, `null`} {
		f.Add(s, "x", "y")
	}
	f.Fuzz(func(t *testing.T, s, a, b string) {
		var want []string
		if err := json.Unmarshal([]byte(s), &want); err == nil {
			got, err := listOf(s)
			if err != nil {
				t.Fatalf("listOf(%q): %v, encoding/json accepts it", s, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listOf(%q) = %q, encoding/json says %q", s, got, want)
			}
		}
		in := []string{a, b}
		got, err := listOf(listArg(in))
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json replaces invalid UTF-8; compare with what it keeps.
		var norm []string
		json.Unmarshal([]byte(listArg(in)), &norm)
		if !slices.Equal(got, norm) {
			t.Fatalf("listOf(listArg(%q)) = %q, want %q", in, got, norm)
		}
	})
}

func TestTime_RoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2031, 3, 14, 15, 9, 26, 535897000, time.FixedZone("x", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		arg := timeArg(tm)
		var got time.Time
		if arg == nil {
			got = timeOf(nullInt(0, false))
		} else {
			got = timeOf(nullInt(arg.(int64), true))
		}
		if !got.Equal(tm) || got.IsZero() != tm.IsZero() || got.Location() != time.UTC {
			t.Errorf("timeOf(timeArg(%v)) = %v", tm, got)
		}
	}
}

func nullInt(v int64, ok bool) (n sql.NullInt64) { return sql.NullInt64{Int64: v, Valid: ok} }
