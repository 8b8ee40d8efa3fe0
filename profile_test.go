package latch

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Alice.Smith+tag@Example.COM", "alice.smith+tag@example.com"},
		{"élodie@exemple.fr", "élodie@exemple.fr"},
		{"root@localhost", "root@localhost"},
	} {
		got, err := NormalizeEmail(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "alice", "@example.com", "alice@", "alice@example", "Alice <alice@example.com>", "<alice@example.com>",
		"alice@example.com, bob@example.com", "alice @example.com", "alice@example.com\n", "al\u200bice@example.com",
		"\xff@example.com", strings.Repeat("a", 250) + "@x.io", "alice@example.com (work)",
	} {
		if got, err := NormalizeEmail(in); ErrorCode(err) != EINVALID {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want EINVALID", in, got, err)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	ok := Profile{Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace", Nickname: "ada",
		Picture: "https://example.com/a.png", Website: "http://example.org", Locale: "en-GB", Zoneinfo: "Europe/London"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v): %v", ok, err)
	}
	for _, loc := range []string{"en", "en_US", "zh-Hant-TW", "de-CH-1901"} {
		if err := (&Profile{Locale: loc}).Validate(); err != nil {
			t.Errorf("locale %q: %v", loc, err)
		}
	}
	for name, p := range map[string]Profile{
		"name too long":     {Name: strings.Repeat("x", MaxProfileNameLen+1)},
		"name control":      {Name: "a\x00b"},
		"name bidi":         {GivenName: "a\u202eb"},
		"name padded":       {FamilyName: " Lovelace"},
		"name not utf-8":    {Nickname: "\xff"},
		"picture relative":  {Picture: "/a.png"},
		"picture js":        {Picture: "javascript:alert(1)"},
		"website data":      {Website: "data:text/html,hi"},
		"locale digit":      {Locale: "1en"},
		"locale long":       {Locale: "englishxx-GB"},
		"locale hyphens":    {Locale: "en--GB"},
		"zoneinfo unknown":  {Zoneinfo: "Mars/Olympus"},
		"zoneinfo path":     {Zoneinfo: "../../etc/passwd"},
		"zoneinfo absolute": {Zoneinfo: "/etc/localtime"},
	} {
		if err := p.Validate(); ErrorCode(err) != EINVALID {
			t.Errorf("%s: Validate = %v, want EINVALID", name, err)
		}
	}
}

// FuzzNormalizeEmail checks the login form's email path: never a panic,
// and what it accepts is a lower-case printable address of bounded length
// that normalises to itself.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"alice@example.com", "A@B.C", "\"quoted local\"@example.com", "a@[127.0.0.1]",
		"Alice <a@b.c>", "é@ü.de", "a@b", "", "@", "a@b.c\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeEmail(in)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("NormalizeEmail(%q): %v, want EINVALID", in, err)
			}
			return
		}
		if len(got) > MaxEmailLen || !utf8.ValidString(got) || strings.ContainsAny(got, " \t\r\n<>") || strings.Count(got, "@") < 1 {
			t.Fatalf("NormalizeEmail(%q) accepted %q", in, got)
		}
		if again, err := NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("NormalizeEmail(%q) = %q, %v: not idempotent", got, again, err)
		}
	})
}
