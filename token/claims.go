package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Audience is the aud claim (RFC 7519 §4.1.3). It marshals as a string when it
// has one value and as an array otherwise, and unmarshals from either.
type Audience []string

// Contains reports whether aud is one of the audiences.
func (a Audience) Contains(aud string) bool { return slices.Contains(a, aud) }

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) { return appendAudience(nil, a), nil }

// UnmarshalJSON implements json.Unmarshaler: a string, an array of strings or
// null.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("token: aud is not JSON: %w", ErrMalformed)
	}
	s := string(b)
	v, err := parseAudience(s[skipWS(s, 0):])
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Claims are the claims of a latch access token (RFC 9068 §2.2) or ID token
// (OIDC Core §2). Times are NumericDate, seconds since the Unix epoch.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	// Extra holds other claims (custom claims, nonce, auth_time, sid, fgp
	// ...). On marshal they are merged into the object, in key order; a key
	// that collides with a registered claim above is an error. On unmarshal,
	// every unknown claim lands here, decoded as encoding/json decodes into
	// an any (numbers are float64).
	Extra map[string]any `json:"-"`
}

// Bits of the claims present in a parsed object, for duplicate detection and
// for Verify's required claims.
const (
	hasIss uint16 = 1 << iota
	hasSub
	hasAud
	hasExp
	hasIat
	hasNbf
	hasJti
	hasClientID
	hasScope
)

// registered reports whether name is one of the claims with a field in
// Claims, which Extra may not carry.
func registered(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope":
		return true
	}
	return false
}

// MarshalJSON implements json.Marshaler. The registered claims are written
// without reflection; only Extra values go through encoding/json.
func (c Claims) MarshalJSON() ([]byte, error) { return c.appendJSON(make([]byte, 0, 256)) }

func (c *Claims) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"iss":`...)
	b = appendString(b, c.Issuer)
	b = append(b, `,"sub":`...)
	b = appendString(b, c.Subject)
	b = append(b, `,"aud":`...)
	b = appendAudience(b, c.Audience)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	if c.NotBefore != 0 {
		b = append(b, `,"nbf":`...)
		b = strconv.AppendInt(b, c.NotBefore, 10)
	}
	b = append(b, `,"jti":`...)
	b = appendString(b, c.ID)
	if c.ClientID != "" {
		b = append(b, `,"client_id":`...)
		b = appendString(b, c.ClientID)
	}
	if c.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendString(b, c.Scope)
	}
	if len(c.Extra) > 0 {
		keys := make([]string, 0, len(c.Extra))
		for k := range c.Extra {
			if registered(k) {
				return nil, fmt.Errorf("token: extra claim %q collides with a registered claim", k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v, err := json.Marshal(c.Extra[k])
			if err != nil {
				return nil, fmt.Errorf("token: marshal claim %q: %w", k, err)
			}
			b = append(b, ',')
			b = appendString(b, k)
			b = append(b, ':')
			b = append(b, v...)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON implements json.Unmarshaler. It replaces all of *c. The input
// must be a JSON object without duplicate member names (RFC 7519 §4 allows a
// parser to refuse them, and we do: two parsers that pick different
// duplicates read two different tokens). Registered claims must have their
// JSON type (strings, NumericDate numbers, aud as string or array of
// strings); null counts as absent, as in encoding/json. Errors wrap
// ErrMalformed. A JSON null leaves *c alone, as encoding/json asks of
// Unmarshalers; Verify, which does not go through here, refuses it.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	_, err := c.parse(b)
	return err
}

// parse is UnmarshalJSON that also reports which registered claims were
// present (not null).
func (c *Claims) parse(b []byte) (uint16, error) {
	*c = Claims{}
	// Validate the whole object first with the standard library, so the
	// scanner below only walks well-formed JSON (bounded depth, valid
	// strings and numbers) and can stay small.
	if !json.Valid(b) {
		return 0, fmt.Errorf("token: claims are not valid JSON: %w", ErrMalformed)
	}
	// One string for the whole object: unescaped string claims are
	// substrings of it, so they cost no further allocation.
	s := string(b)
	i := skipWS(s, 0)
	if s[i] != '{' {
		return 0, fmt.Errorf("token: claims are not a JSON object: %w", ErrMalformed)
	}
	i = skipWS(s, i+1)
	var seen, present uint16
	if s[i] == '}' {
		return 0, nil
	}
	for {
		end := skipString(s, i)
		name, err := unquote(s[i:end])
		if err != nil {
			return 0, err
		}
		i = skipWS(s, end)
		i = skipWS(s, i+1) // ':'
		end = skipValue(s, i)
		raw := s[i:end]
		var bit uint16
		switch name {
		case "iss":
			bit = hasIss
			c.Issuer, err = stringClaim(name, raw)
		case "sub":
			bit = hasSub
			c.Subject, err = stringClaim(name, raw)
		case "aud":
			bit = hasAud
			c.Audience, err = parseAudience(raw)
		case "exp":
			bit = hasExp
			c.ExpiresAt, err = numericDate(name, raw)
		case "iat":
			bit = hasIat
			c.IssuedAt, err = numericDate(name, raw)
		case "nbf":
			bit = hasNbf
			c.NotBefore, err = numericDate(name, raw)
		case "jti":
			bit = hasJti
			c.ID, err = stringClaim(name, raw)
		case "client_id":
			bit = hasClientID
			c.ClientID, err = stringClaim(name, raw)
		case "scope":
			bit = hasScope
			c.Scope, err = stringClaim(name, raw)
		default:
			if _, dup := c.Extra[name]; dup {
				return 0, fmt.Errorf("token: duplicate claim %q: %w", name, ErrMalformed)
			}
			v, err := extraValue(raw)
			if err != nil {
				return 0, fmt.Errorf("token: claim %q: %w", name, ErrMalformed)
			}
			if c.Extra == nil {
				c.Extra = make(map[string]any)
			}
			c.Extra[name] = v
		}
		if err != nil {
			return 0, err
		}
		if seen&bit != 0 {
			return 0, fmt.Errorf("token: duplicate claim %q: %w", name, ErrMalformed)
		}
		seen |= bit
		if raw != "null" {
			present |= bit
		}
		i = skipWS(s, end)
		if s[i] == '}' {
			return present, nil
		}
		i = skipWS(s, i+1) // ','
	}
}

func stringClaim(name, raw string) (string, error) {
	switch raw[0] {
	case '"':
		return unquote(raw)
	case 'n':
		return "", nil
	}
	return "", fmt.Errorf("token: claim %q is not a string: %w", name, ErrMalformed)
}

// numericDate reads a NumericDate (RFC 7519 §2): seconds, possibly with a
// fraction, which is dropped (floor: exp then errs early, nbf and iat by less
// than a second, well inside any leeway).
func numericDate(name, raw string) (int64, error) {
	if raw == "null" {
		return 0, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("token: claim %q is not a number: %w", name, ErrMalformed)
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	f = math.Floor(f)
	if err != nil || !(f >= math.MinInt64 && f < math.MaxInt64) {
		return 0, fmt.Errorf("token: claim %q is out of range: %w", name, ErrMalformed)
	}
	return int64(f), nil
}

// parseAudience reads aud from a valid JSON value: a string, an array of
// strings or null.
func parseAudience(raw string) (Audience, error) {
	switch raw[0] {
	case 'n':
		return nil, nil
	case '"':
		s, err := unquote(raw)
		if err != nil {
			return nil, err
		}
		return Audience{s}, nil
	case '[':
	default:
		return nil, fmt.Errorf("token: claim \"aud\" is neither a string nor an array: %w", ErrMalformed)
	}
	a := Audience{}
	i := skipWS(raw, 1)
	if raw[i] == ']' {
		return a, nil
	}
	for {
		if raw[i] != '"' {
			return nil, fmt.Errorf("token: claim \"aud\" holds a non-string: %w", ErrMalformed)
		}
		end := skipString(raw, i)
		s, err := unquote(raw[i:end])
		if err != nil {
			return nil, err
		}
		a = append(a, s)
		i = skipWS(raw, end)
		if raw[i] == ']' {
			return a, nil
		}
		i = skipWS(raw, i+1)
	}
}

func appendAudience(b []byte, a Audience) []byte {
	if len(a) == 1 {
		return appendString(b, a[0])
	}
	b = append(b, '[')
	for i, s := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string. Printable ASCII without quotes
// or backslashes, the common case, is copied as is; anything else goes
// through encoding/json, so escaping (and replacement of invalid UTF-8) is
// exactly the standard library's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// The scanner below walks JSON that json.Valid has accepted; it does not
// validate, it only finds boundaries. It works on strings and on byte
// slices, so the header is parsed without copying.

func skipWS[T string | []byte](s T, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at s[i]=='"'.
func skipString[T string | []byte](s T, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at s[i]. It
// loops rather than recurses, so depth costs no stack.
func skipValue[T string | []byte](s T, i int) int {
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(s) {
		switch s[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote returns the value of the valid JSON string literal q. Strings
// without escapes and with valid UTF-8 are substrings of q; others go
// through encoding/json so the result is exactly the standard library's.
func unquote(q string) (string, error) {
	if q[0] != '"' {
		return "", fmt.Errorf("token: expected a JSON string: %w", ErrMalformed)
	}
	body := q[1 : len(q)-1]
	simple := true
	for i := 0; i < len(body); i++ {
		if c := body[i]; c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return body, nil
	}
	var s string
	if err := json.Unmarshal([]byte(q), &s); err != nil {
		return "", fmt.Errorf("token: bad JSON string: %w", ErrMalformed)
	}
	return s, nil
}
