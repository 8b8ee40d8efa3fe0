package oauth

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// maxOriginLen bounds a web origin: a scheme, a DNS name of at most 253
// characters and a port.
const maxOriginLen = 300

// WebOrigin checks a client's registered web origin and returns it in
// the serialisation browsers send in the Origin header (RFC 6454 §6.1,
// the Fetch standard's "ASCII serialization of an origin"): lower-case
// scheme and host, the port only when it is not the scheme's default, no
// path. So "HTTPS://App.Example.com:443" is stored as
// "https://app.example.com", and an Origin header matches it by string
// equality. http is allowed only on a loopback host, as for redirect
// URIs: a token endpoint that answers a plain-http page's script hands
// its tokens to anyone on the network path. Hosts are ASCII: an
// internationalised name is registered in its xn-- form, which is what
// browsers send.
func WebOrigin(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("web origin %q %s", s, why)
	}
	if s == "" || len(s) > maxOriginLen {
		return bad("must be scheme://host[:port], at most 300 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return bad("must be printable ASCII (write an internationalised host in its xn-- form)")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return bad("must be scheme://host[:port]")
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return bad("must be only scheme://host[:port]: no user, path (not even a trailing /), query or fragment")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, "%*") {
		return bad("has no usable host")
	}
	ip := net.ParseIP(host)
	if strings.Contains(host, ":") && ip == nil {
		return bad("has an invalid IPv6 address")
	}
	if ip == nil {
		for _, label := range strings.Split(host, ".") {
			if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				return bad("has an invalid host name")
			}
		}
	}
	switch scheme {
	case "https":
	case "http":
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return bad("uses http on a host other than loopback (127.0.0.1, [::1], localhost); use https")
		}
	default:
		return bad("must use https (or http on a loopback host)")
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return bad("has an empty port")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("has an invalid port")
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	if ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	out := scheme + "://" + host
	if port != "" {
		out += ":" + port
	}
	return out, nil
}
