package server

import (
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/sqlite"
	"github.com/latch-auth/latch/throttle"
)

func TestConfig_Validate_Login(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"negative idle timeout", func(c *Config) { c.SessionIdleTimeout = -time.Second }, "must be positive"},
		{"negative max age", func(c *Config) { c.SessionMaxAge = -time.Second }, "must be positive"},
		{"idle above max age", func(c *Config) { c.SessionIdleTimeout, c.SessionMaxAge = 2*time.Hour, time.Hour }, "exceeds SessionMaxAge"},
		{"negative threshold", func(c *Config) { c.LoginAccountThrottle.Threshold = -1 }, "account login throttle: threshold"},
		{"max below base", func(c *Config) { c.LoginIPThrottle.Base, c.LoginIPThrottle.Max = time.Minute, time.Second }, "address login throttle: back-off base"},
		{"forget below max", func(c *Config) { c.LoginAccountThrottle.Forget = time.Minute }, "remembered"},
		{"negative entries", func(c *Config) { c.LoginIPThrottle.Entries = -1 }, "entries"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrentLogins = -1 }, "MaxConcurrentLogins"},
		{"negative queue timeout", func(c *Config) { c.LoginQueueTimeout = -time.Second }, "LoginQueueTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Issuer: "https://auth.example.com", Store: &sqlite.DB{}, Keys: &keys.Manager{}}
			tt.mutate(&c)
			c.withDefaults()
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if c.SessionIdleTimeout != 30*time.Minute || c.SessionMaxAge != 12*time.Hour ||
					c.LoginAccountThrottle != throttle.DefaultAccount || c.LoginIPThrottle != throttle.DefaultAddress ||
					c.MaxConcurrentLogins < 2 || c.LoginQueueTimeout != time.Second {
					t.Fatalf("defaults: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", nil, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.1"}, "192.0.2.1"}, // untrusted peer: header ignored
		{"[::ffff:192.0.2.1]:1", nil, "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1", nil, "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1", nil, "fe80::/64"},
		{"10.0.0.1:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"203.0.113.9, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"10.0.0.1:1", []string{"garbage, 198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"198.51.100.1, garbage"}, "10.0.0.1"},
		{"10.0.0.1:1", []string{""}, "10.0.0.1"},
		{"[fd00::1]:1", []string{"2001:db8::1"}, "2001:db8::/64"},
		{"not an address", nil, "unknown"},
		{"@", nil, "unknown"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		r.Header["X-Forwarded-For"] = tc.xff
		if got := clientAddr(r, trusted); got != tc.want {
			t.Errorf("clientAddr(%q, %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://Auth.Example.com":      "https://auth.example.com",
		"https://auth.example.com:443":  "https://auth.example.com",
		"https://auth.example.com:8443": "https://auth.example.com:8443",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://[::1]:8080/base":        "http://[::1]:8080",
		"http://localhost:80":           "http://localhost",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeReturnTo checks that whatever return_to a login is given, it
// redirects within the issuer's origin, as a browser would resolve the
// Location (WHATWG URL: tabs and newlines removed, leading and trailing
// C0 controls and spaces stripped, "\" read as "/").
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/oauth2/authorize?client_id=a&state=b", "//evil.example", "/\\evil.example",
		"/\t/evil.example", "https://evil.example/", "/%2F%2Fevil.example", "/..//evil.example", "\x00/", "/a?b=//c#//d"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://auth.test/login")
	f.Fuzz(func(t *testing.T, in string) {
		out := safeReturnTo(in)
		if out != "/" && out != in {
			t.Fatalf("safeReturnTo(%q) = %q: neither the input nor /", in, out)
		}
		browser := strings.Map(func(r rune) rune {
			switch r {
			case '\t', '\n', '\r':
				return -1
			case '\\':
				return '/'
			}
			return r
		}, strings.Trim(out, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "))
		if strings.HasPrefix(browser, "//") || !strings.HasPrefix(browser, "/") {
			t.Fatalf("safeReturnTo(%q) = %q, which a browser reads as %q: off-origin", in, out, browser)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("safeReturnTo(%q) = %q, which does not parse: %v", in, out, err)
		}
		if got := base.ResolveReference(u); got.Scheme != "https" || got.Host != "auth.test" {
			t.Fatalf("safeReturnTo(%q) = %q resolves to %s", in, out, got)
		}
	})
}

// FuzzClientAddr checks that no RemoteAddr or X-Forwarded-For makes the
// throttle key empty or panics, and that an untrusted peer's header is
// ignored.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:1", "198.51.100.1, 10.0.0.2")
	f.Add("192.0.2.1:1", "198.51.100.1")
	f.Add("[fd00::1%25x]:1", "::ffff:1.2.3.4,,")
	f.Add("", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := clientAddr(r, trusted)
		if got == "" {
			t.Fatalf("clientAddr(%q, %q) is empty", remote, xff)
		}
		if a, ok := parseAddr(remote); ok && !isTrusted(a, trusted) {
			r.Header.Del("X-Forwarded-For")
			if again := clientAddr(r, trusted); again != got {
				t.Fatalf("untrusted peer %q: X-Forwarded-For %q changed the key from %q to %q", remote, xff, again, got)
			}
		}
	})
}
