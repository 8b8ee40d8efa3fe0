// Package proxypath owns how latch's reverse proxies (the gateway and the
// BFF) turn the path of an inbound request into the path they forward
// under the upstream's base path: dot segments removed as RFC 3986 §5.2.4
// says, percent-encoded ones included, and anything that could still
// climb out of the base path at the upstream refused. It does not own the
// joining with the base path (httputil.ProxyRequest.SetURL does) or the
// answer to a refused path (each proxy answers 400 in its own format).
package proxypath

import (
	"errors"
	"net/url"
	"strings"
)

// ErrPath is what Clean refuses; the text is fit for an error_description.
var ErrPath = errors.New("the request path is not accepted: it climbs above the root, or holds a control character or a dot segment hidden behind an encoded slash, a backslash or a parameter")

// Clean returns the escaped path p (as url.URL.EscapedPath gives it) with
// its dot segments removed (RFC 3986 §5.2.4), each other segment kept in
// its original encoding, and the decoded form of the result.
//
// A dot segment is "." or "..", in any mix of literal and percent-encoded
// dots: RFC 3986 §2.3 makes %2E equivalent to ".", and an upstream that
// decodes before it resolves would otherwise see ".." where the proxy saw
// none. Refused, because some upstreams would still read them as a way
// out of the base path: a path that does not start with "/", ".." above
// the root, a control character (NUL and others cut paths short in
// C-based servers), a malformed percent-encoding, and a segment that
// holds a dot segment once split at an encoded "/" (%2F), a "\" (raw or
// %5C: a separator on Windows and in some servlet containers) or a ";"
// (a path parameter: "..;/" is the servlet trick). A segment with an
// encoded slash and no dot segment ("a%2Fb", an identifier) is kept as it
// is: an upstream that decodes it into two segments still stays under its
// base path.
func Clean(p string) (escaped, decoded string, err error) {
	if !strings.HasPrefix(p, "/") {
		return "", "", ErrPath
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		dec, err := url.PathUnescape(seg)
		if err != nil || hasControl(dec) || hidesDotSegment(dec) {
			return "", "", ErrPath
		}
		switch dec {
		case ".":
			if last {
				out = append(out, "") // "/a/." is "/a/"
			}
		case "..":
			if len(out) == 0 {
				return "", "", ErrPath
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "") // "/a/b/.." is "/a/"
			}
		default:
			out = append(out, seg)
		}
	}
	escaped = "/" + strings.Join(out, "/")
	decoded, err = url.PathUnescape(escaped)
	if err != nil {
		return "", "", ErrPath
	}
	return escaped, decoded, nil
}

// hidesDotSegment reports whether the decoded segment dec, which is not
// itself "." or "..", holds one once split at "/", "\\" and ";".
func hidesDotSegment(dec string) bool {
	if dec == "." || dec == ".." {
		return false
	}
	for _, part := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' || r == ';' }) {
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// Set returns a copy of u whose path is the cleaned escaped path and its
// decoded form, so that EscapedPath gives back exactly escaped.
func Set(u *url.URL, escaped, decoded string) *url.URL {
	c := *u
	c.Path = decoded
	c.RawPath = ""
	if c.EscapedPath() != escaped {
		c.RawPath = escaped
	}
	return &c
}
