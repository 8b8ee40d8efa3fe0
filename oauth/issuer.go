package oauth

import (
	"fmt"
	"net/url"
	"strings"
)

// CheckIssuerURL checks the form of an issuer (RFC 8414 §2): an absolute
// http or https URL without query, fragment or trailing slash. Whether
// http is allowed is the caller's decision.
func CheckIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must be an absolute URL without query or fragment (RFC 8414 §2)", issuer)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("issuer %q must use https", issuer)
	}
	if strings.HasSuffix(issuer, "/") {
		return fmt.Errorf("issuer %q must not end with a slash", issuer)
	}
	return nil
}

// Quote quotes a value taken from a request or a registration for an error
// description or message: at most 64 characters, control characters and
// double quotes replaced, so that it cannot break the message around it.
func Quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
