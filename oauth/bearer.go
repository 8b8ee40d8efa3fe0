package oauth

import (
	"net/http"
	"strings"
)

// BearerError is a malformed bearer request (RFC 6750 §3.1
// invalid_request). Its text may be sent as an error_description, so it
// holds only qtext.
type BearerError string

func (e BearerError) Error() string { return string(e) }

// BearerToken returns the token of h's Authorization header (RFC 6750
// §2.1), "" when there is none or it uses another scheme (Basic, DPoP, ...).
// A second Authorization header (two parsers could read them differently)
// and a malformed Bearer value are BearerErrors. It is the one reader of the
// header for the authorization server and verify, so both classify every
// string the same way.
func BearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	if len(vals) > 1 {
		return "", BearerError("more than one Authorization header")
	}
	if len(vals) == 0 {
		return "", nil
	}
	raw, isBearer, err := ParseAuthorization(vals[0])
	if err != nil || !isBearer {
		return "", err
	}
	return raw, nil
}

// ParseAuthorization reads credentials = "Bearer" 1*SP b64token (RFC 6750
// §2.1; the scheme is case-insensitive, RFC 9110 §11.1). isBearer is false
// for another scheme.
func ParseAuthorization(v string) (raw string, isBearer bool, err error) {
	return ParseCredentials(v, "Bearer")
}

// ParseCredentials reads credentials = scheme 1*SP b64token: the syntax of
// Bearer (RFC 6750 §2.1) and of DPoP (RFC 9449 §7.1). The scheme is
// compared case-insensitively (RFC 9110 §11.1); matched is false for
// another scheme.
func ParseCredentials(v, scheme string) (raw string, matched bool, err error) {
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false, nil
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", true, BearerError("the " + scheme + " credentials are empty")
	}
	if rest[0] != ' ' {
		return "", false, nil // "Bearerx ...": another scheme
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" {
		return "", true, BearerError("the " + scheme + " credentials are empty")
	}
	if !IsB64Token(rest) {
		return "", true, BearerError("the " + scheme + " token is not a b64token")
	}
	return rest, true, nil
}

// IsB64Token reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=" (RFC 6750 §2.1).
func IsB64Token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
