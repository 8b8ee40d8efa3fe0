package proxypath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestClean_RemovesDotSegments_RefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"/", "/"},
		{"/v1/things", "/v1/things"},
		{"/a/b/../c", "/a/c"},
		{"/a/./b/", "/a/b/"},
		{"/a/b/..", "/a/"},
		{"/a/.", "/a/"},
		{"/a/%2e%2E/b", "/b"},
		{"/a/.%2e/b", "/b"},
		{"/a/%2e/b", "/a/b"},
		{"/a%20b/c", "/a%20b/c"},
		{"/a//b", "/a//b"},
		{"/..", ""},
		{"/../secret", ""},
		{"/%2e%2e/admin", ""},
		{"/%2E%2E/admin", ""},
		{"/a/../../b", ""},
		{"/..%2fbff%2fuser", ""},
		{"/items/a%2Fb", "/items/a%2Fb"},
		{"/a%5cb", "/a%5cb"},
		{"/a%2f..", ""},
		{"/a%2f.%2fb", ""},
		{"/..%5C..%5Cadmin", ""},
		{"/..\\secret", ""},
		{"/..;/admin", ""},
		{"/a/.;x", ""},
		{"/a%00b", ""},
		{"/a%0a", ""},
		{"/a%zz", ""},
		{"a/b", ""},
		{"", ""},
		{"*", ""},
	} {
		got, dec, err := Clean(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrPath) {
				t.Errorf("Clean(%q) = %q, %v; want refused", tc.in, got, err)
			}
			continue
		}
		wantDec, _ := url.PathUnescape(tc.want)
		if err != nil || got != tc.want || dec != wantDec {
			t.Errorf("Clean(%q) = %q, %q, %v; want %q, %q", tc.in, got, dec, err, tc.want, wantDec)
		}
	}
}

func TestSet_EscapedPathRoundTrips(t *testing.T) {
	u, _ := url.Parse("http://x/base/a%2e%2e?q=1")
	esc, dec, err := Clean("/a%20b/%41")
	if err != nil {
		t.Fatal(err)
	}
	got := Set(u, esc, dec)
	if got.EscapedPath() != esc || got.Path != dec || got.RawQuery != "q=1" || u.Path != "/base/a.." {
		t.Fatalf("Set: %q %q %q; original %q", got.EscapedPath(), got.Path, got.RawQuery, u.Path)
	}
}

// FuzzClean: Clean never panics; what it accepts starts with "/", holds no
// dot segment however it is decoded and split, is a fixed point, and
// decodes to what it returns as decoded.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"/", "/a/b/../c", "/%2e%2e/admin", "/..%2fbff", "/a/.;x", "/a%5c", "/a//./b/..", "/%2E./x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		esc, dec, err := Clean(p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(esc, "/") {
			t.Fatalf("Clean(%q) = %q: not absolute", p, esc)
		}
		dec2, err := url.PathUnescape(esc)
		if err != nil {
			t.Fatalf("Clean(%q) = %q: undecodable", p, esc)
		}
		// However an upstream splits the decoded path, no part of it is a
		// dot segment.
		for _, part := range strings.FieldsFunc(dec2, func(r rune) bool { return r == '/' || r == '\\' || r == ';' }) {
			if part == "." || part == ".." {
				t.Fatalf("Clean(%q) = %q: decodes to %q, with a dot segment", p, esc, dec2)
			}
		}
		if again, _, err := Clean(esc); err != nil || again != esc {
			t.Fatalf("Clean(%q) = %q, but Clean of that = %q, %v", p, esc, again, err)
		}
		if d, _ := url.PathUnescape(esc); d != dec {
			t.Fatalf("Clean(%q): decoded %q, want %q", p, dec, d)
		}
	})
}
