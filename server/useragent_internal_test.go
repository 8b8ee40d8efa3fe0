package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latch-auth/latch"
)

func TestDescribeDevice_CommonBrowsers(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                                      "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86":          "Edge on Windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0":                                                           "Firefox on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15":                      "Safari on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1":    "Safari on iPhone",
		"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1":      "Chrome on iPad",
		"Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36": "Samsung Internet on Android",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                             "Chrome on ChromeOS",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36":                              "Chrome (headless) on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0":              "Opera on Windows",
		"curl/8.11.0":                     "curl",
		"Mozilla/5.0 (X11; Linux x86_64)": "Unknown browser on Linux",
		"":                                "Unknown browser",
		"<script>alert(1)</script>":       "Unknown browser",
	} {
		if got := describeDevice(ua); got != want {
			t.Errorf("describeDevice(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestSessionUserAgent_BoundedValidUTF8(t *testing.T) {
	long := strings.Repeat("é", latch.MaxSessionUserAgent) // 2 bytes each
	got := sessionUserAgent(long)
	if len(got) > latch.MaxSessionUserAgent || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("sessionUserAgent(long) = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := sessionUserAgent("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("sessionUserAgent(invalid) = %q", got)
	}
}

// FuzzDescribeDevice: any header gives a short answer built from the
// parser's own words, never from the header, and sessionUserAgent keeps
// a bounded, valid prefix.
func FuzzDescribeDevice(f *testing.F) {
	for _, s := range []string{"", "curl/8.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Version/18.1 Safari/604.1",
		"Edg/Firefox/Chrome/Linux Windows", "\xff\xfe", strings.Repeat("Chrome/", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		d := describeDevice(ua)
		if len(d) > 64 || strings.ContainsAny(d, "<>&/\"'") && d != "Chrome (headless)" && !strings.HasPrefix(d, "Chrome (headless) on ") {
			t.Fatalf("describeDevice(%q) = %q", ua, d)
		}
		k := sessionUserAgent(ua)
		if len(k) > latch.MaxSessionUserAgent || !utf8.ValidString(k) {
			t.Fatalf("sessionUserAgent(%q) = %q", ua, k)
		}
	})
}
