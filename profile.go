package latch

import (
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Profile is the part of OIDC Core §5.1's standard claims that latch keeps
// about a user and releases under the profile scope (§5.4), with the
// user's preferred_username (the Username) and updated_at. Empty fields
// are not released.
//
// Left out on purpose: middle_name, gender and birthdate (personal data no
// single sign-on needs, which an operator would then have to protect),
// and profile (a page about the user: latch has none to point to).
// Address and phone are not kept either; their scopes are accepted and
// release nothing.
type Profile struct {
	Name       string `json:"name,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Nickname   string `json:"nickname,omitempty"`
	// Picture and Website are absolute http or https URLs.
	Picture string `json:"picture,omitempty"`
	Website string `json:"website,omitempty"`
	// Locale is a BCP 47 language tag such as "en-GB" (§5.1 allows the
	// underscore form too; latch keeps what the operator gave).
	Locale string `json:"locale,omitempty"`
	// Zoneinfo is an IANA time zone name such as "Europe/Paris".
	Zoneinfo string `json:"zoneinfo,omitempty"`
}

// Limits of profile values: they become claims of ID tokens.
const (
	MaxEmailLen       = 254 // RFC 5321 §4.5.3.1.3: a path holds at most 256 octets, <> included
	MaxProfileNameLen = 256
	MaxProfileURLLen  = 2048
)

// NormalizeEmail returns the form in which email addresses are unique
// and looked up: the address lower-cased as a whole. RFC 5321 §2.4 lets a
// mail server treat the local part as case-sensitive, but no provider in
// use does, and two accounts for "Bob@x" and "bob@x" are a mistake, not a
// feature.
//
// It refuses, with EINVALID, what is not a bare addr-spec (RFC 5322
// §3.4.1) as net/mail parses it: display names, angle brackets, comments,
// several addresses, more than MaxEmailLen bytes, or characters outside
// printable ASCII and printable Unicode (RFC 6532).
func NormalizeEmail(email string) (string, error) {
	bad := func(why string, args ...any) (string, error) {
		return "", Errorf(EINVALID, "latch: email %.80q "+why, append([]any{email}, args...)...)
	}
	switch {
	case email == "":
		return bad("is empty")
	case len(email) > MaxEmailLen:
		return bad("is longer than %d bytes", MaxEmailLen)
	case !utf8.ValidString(email):
		return bad("is not valid UTF-8")
	}
	for _, r := range email {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return bad("holds a space or an unprintable character")
		}
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return bad("is not a plain address such as alice@example.com")
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || !strings.Contains(email[at+1:], ".") && email[at+1:] != "localhost" {
		return bad("has no domain with a dot")
	}
	return strings.ToLower(email), nil
}

// Validate checks every field of p, with EINVALID naming the first that
// is wrong.
func (p *Profile) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"name", p.Name}, {"given_name", p.GivenName}, {"family_name", p.FamilyName}, {"nickname", p.Nickname},
	} {
		if err := checkText(f.name, f.v, MaxProfileNameLen); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"picture", p.Picture}, {"website", p.Website}} {
		if f.v == "" {
			continue
		}
		if err := checkText(f.name, f.v, MaxProfileURLLen); err != nil {
			return err
		}
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Errorf(EINVALID, "latch: %s %.80q must be an absolute http or https URL", f.name, f.v)
		}
	}
	if p.Locale != "" && !validLocale(p.Locale) {
		return Errorf(EINVALID, "latch: locale %.40q must be a BCP 47 language tag such as en-GB", p.Locale)
	}
	if p.Zoneinfo != "" {
		if len(p.Zoneinfo) > 64 || strings.ContainsAny(p.Zoneinfo, "\\ ") || strings.Contains(p.Zoneinfo, "..") {
			return Errorf(EINVALID, "latch: zoneinfo %.40q must be an IANA time zone such as Europe/Paris", p.Zoneinfo)
		}
		if _, err := time.LoadLocation(p.Zoneinfo); err != nil {
			return Errorf(EINVALID, "latch: zoneinfo %.40q is not a time zone this system knows (IANA names such as Europe/Paris)", p.Zoneinfo)
		}
	}
	return nil
}

// checkText refuses what would look different on a screen than in a
// claim: invalid UTF-8 and control or format characters.
func checkText(name, v string, maxLen int) error {
	if len(v) > maxLen {
		return Errorf(EINVALID, "latch: %s is longer than %d bytes", name, maxLen)
	}
	if !utf8.ValidString(v) {
		return Errorf(EINVALID, "latch: %s is not valid UTF-8", name)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) && r != ' ' {
			return Errorf(EINVALID, "latch: %s holds the character %U: only printable characters are allowed", name, r)
		}
	}
	if strings.TrimSpace(v) != v {
		return Errorf(EINVALID, "latch: %s starts or ends with a space", name)
	}
	return nil
}

// validLocale accepts the shape of a BCP 47 tag (RFC 5646 §2.1): subtags
// of 1 to 8 letters or digits separated by hyphens (or the underscore
// OIDC Core §5.1 mentions), the first of 2 to 8 letters.
func validLocale(s string) bool {
	if len(s) > 35 {
		return false
	}
	for i, sub := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' }) {
		if len(sub) < 1 || len(sub) > 8 || (i == 0 && len(sub) < 2) {
			return false
		}
		for _, c := range []byte(sub) {
			letter := c|0x20 >= 'a' && c|0x20 <= 'z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return !strings.HasPrefix(s, "-") && !strings.HasSuffix(s, "-") && !strings.Contains(s, "--") &&
		!strings.HasPrefix(s, "_") && !strings.HasSuffix(s, "_")
}
