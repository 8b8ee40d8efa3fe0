package sqlite

import (
	"database/sql"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// timeArg encodes t as unix microseconds, NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeOf decodes what timeArg stored, in UTC.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// listArg encodes a string list as a JSON array, [] when empty.
func listArg(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(b)
}

// listOf decodes what listArg stored; [] becomes nil.
func listOf(s string) ([]string, error) {
	if s == "[]" || s == "" {
		return nil, nil
	}
	if l, ok := plainList(s); ok {
		return l, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// bytesArg stores an empty slice as NULL.
func bytesArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// bytesOf reads NULL or an empty BLOB back as nil.
func bytesOf(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// plainList decodes, without encoding/json, the array listArg writes when
// no element needed escaping (scopes, audiences, URIs: nearly always). The
// elements share s's memory, so a list costs one allocation, not one per
// element plus the decoder's; this is on introspection's hot path. It
// reports false for anything else (an escape, whitespace, bytes that JSON
// does not allow raw), and listOf falls back to encoding/json.
func plainList(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	l := make([]string, 0, strings.Count(body, `","`)+1)
	for {
		if body == "" || body[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(body[1:], '"')
		if end < 0 {
			return nil, false
		}
		e := body[1 : 1+end]
		if !plain(e) {
			return nil, false
		}
		l = append(l, e)
		body = body[2+end:]
		if body == "" {
			return l, true
		}
		if body[0] != ',' {
			return nil, false
		}
		body = body[1:]
	}
}

// plain reports whether e is valid UTF-8 without backslashes or control
// characters, i.e. what encoding/json would decode to itself.
func plain(e string) bool {
	for i := 0; i < len(e); i++ {
		if c := e[i]; c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(e)
}
