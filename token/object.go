package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// EachMember calls fn with the name and the raw JSON value of each member
// of the JSON object b, in order, for parsers of JOSE objects other than
// latch's tokens (DPoP proofs, RFC 9449 §4.2) on the same small scanner as
// Verify's claims. Invalid JSON, anything but an object, and a member name
// that appears twice (RFC 7515 §5.2 step 4: two parsers picking different
// duplicates would read two different objects) are ErrMalformed. raw is a
// substring of b's copy; an fn error stops the walk and is returned.
func EachMember(b []byte, fn func(name, raw string) error) error {
	if !json.Valid(b) {
		return fmt.Errorf("token: not valid JSON: %w", ErrMalformed)
	}
	return eachMember(string(b), fn)
}

// eachMember is EachMember on JSON already known to be valid.
func eachMember(s string, fn func(name, raw string) error) error {
	i := skipWS(s, 0)
	if s[i] != '{' {
		return fmt.Errorf("token: not a JSON object: %w", ErrMalformed)
	}
	i = skipWS(s, i+1)
	if s[i] == '}' {
		return nil
	}
	// A few members are compared in a slice; many, in a map, so a large
	// object costs linear time.
	var buf [16]string
	seen := buf[:0]
	var many map[string]bool
	for {
		end := skipString(s, i)
		name, err := unquote(s[i:end])
		if err != nil {
			return err
		}
		if slices.Contains(seen, name) || many[name] {
			return fmt.Errorf("token: member %q appears twice: %w", name, ErrMalformed)
		}
		if len(seen) < len(buf) {
			seen = append(seen, name)
		} else {
			if many == nil {
				many = make(map[string]bool)
			}
			many[name] = true
		}
		i = skipWS(s, end)
		i = skipWS(s, i+1) // ':'
		end = skipValue(s, i)
		if err := fn(name, s[i:end]); err != nil {
			return err
		}
		i = skipWS(s, end)
		if s[i] == '}' {
			return nil
		}
		i = skipWS(s, i+1) // ','
	}
}

// StringValue returns the string of a raw JSON value EachMember gave, or
// an error wrapping ErrMalformed when it is not a string.
func StringValue(raw string) (string, error) {
	if raw == "" || raw[0] != '"' {
		return "", fmt.Errorf("token: not a JSON string: %w", ErrMalformed)
	}
	return unquote(raw)
}

// errNotFlat stops extraValue's walk at a value that is not a string.
var errNotFlat = errors.New("not a string")

// extraValue decodes the raw JSON value of a claim without a field of
// Claims exactly as encoding/json decodes it into an any, from JSON already
// known to be valid. Strings and objects whose members are all strings
// (cnf, act) skip encoding/json's reflection: they are on the path of every
// DPoP-bound token.
func extraValue(raw string) (any, error) {
	switch raw[0] {
	case '"':
		return unquote(raw)
	case '{':
		m := make(map[string]any, 2)
		err := eachMember(raw, func(name, v string) error {
			if v[0] != '"' {
				return errNotFlat
			}
			s, err := unquote(v)
			m[name] = s
			return err
		})
		if err == nil {
			return m, nil
		}
		// Not flat, or a duplicate name (encoding/json keeps the last):
		// encoding/json decides.
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, err
	}
	return v, nil
}
