package oauth

import (
	"strings"
	"testing"
)

func TestWebOrigin_CanonicalisesAsBrowsersSendIt(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":       "https://app.example.com",
		"HTTPS://App.Example.COM:443":   "https://app.example.com",
		"https://app.example.com:8443":  "https://app.example.com:8443",
		"http://127.0.0.1:5173":         "http://127.0.0.1:5173",
		"http://localhost:80":           "http://localhost",
		"http://[::1]:3000":             "http://[::1]:3000",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
		"https://10.0.0.1":              "https://10.0.0.1",
	} {
		got, err := WebOrigin(in)
		if err != nil || got != want {
			t.Errorf("WebOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestWebOrigin_RefusesWhatIsNotAnOrigin(t *testing.T) {
	for _, in := range []string{
		"", "app.example.com", "https://", "https://app.example.com/", "https://app.example.com/spa",
		"https://app.example.com?x=1", "https://app.example.com#x", "https://app.example.com?",
		"https://user@app.example.com", "http://app.example.com", "ftp://app.example.com",
		"com.example.app:/cb", "https://app.example.com:0", "https://app.example.com:65536",
		"https://app.example.com:", "https://app.example.com:08443", "https://bücher.example",
		"https://*.example.com", "https://app..example.com", "https://app_x.example.com",
		"https://[fe80::1%25eth0]", "null", "https://app.example.com " + strings.Repeat("a", 300),
		"https://a b.example", "javascript://x",
	} {
		if got, err := WebOrigin(in); err == nil {
			t.Errorf("WebOrigin(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzWebOrigin: whatever it accepts is its own canonical form (so an
// Origin header compares by equality), and never has a path.
func FuzzWebOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "HTTP://[::1]:80", "https://a.b:443/", "http://localhost:5173", "https://%41.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := WebOrigin(s)
		if err != nil {
			return
		}
		again, err := WebOrigin(got)
		if err != nil || again != got {
			t.Fatalf("WebOrigin(%q) = %q, but WebOrigin(%q) = %q, %v", s, got, got, again, err)
		}
		if strings.Count(got, "/") != 2 || strings.ContainsAny(got, "?#@ ") {
			t.Fatalf("WebOrigin(%q) = %q: not scheme://host[:port]", s, got)
		}
	})
}
