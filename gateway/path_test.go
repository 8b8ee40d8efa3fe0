package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latch-auth/latch/gateway"
)

// rawGet sends target exactly as given on the request line, as an attacker
// would, past any client-side cleaning.
func rawGet(t *testing.T, addr, target string, header http.Header) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n", target)
	header.Write(&b)
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestGateway_Path_NeverLeavesUpstreamBase_DotSegmentsCleanedOrRefused(t *testing.T) {
	s := newSetup(t, func(c *gateway.Config) {
		u, _ := url.Parse(c.Upstream.String() + "/base")
		c.Upstream = u
	})
	front := httptest.NewServer(s.gw)
	t.Cleanup(front.Close)
	addr := strings.TrimPrefix(front.URL, "http://")
	auth := http.Header{"Authorization": {"Bearer " + s.is.token(s.owner, nil)}}
	for _, tc := range []struct {
		target string
		code   int
		uri    string // what the upstream receives
	}{
		{"/v1/things?x=1", 200, "/base/v1/things?x=1"},
		{"/a/../b", 200, "/base/b"},
		{"/a/%2e%2E/b", 200, "/base/b"},
		{"/a/./b/", 200, "/base/a/b/"},
		{"/a%20b", 200, "/base/a%20b"},
		{"/../secret", 400, ""},
		{"/%2e%2e/admin", 400, ""},
		{"/.%2E/admin", 400, ""},
		{"/a/../../secret", 400, ""},
		{"/..%2fadmin", 400, ""},
		{"/a%2f..%2f..%2fadmin", 400, ""},
		{"/..%5cadmin", 400, ""},
		{"/..\\admin", 400, ""},
		{"/..;/admin", 400, ""},
	} {
		before := s.up.count()
		code := rawGet(t, addr, tc.target, auth)
		if code != tc.code {
			t.Errorf("GET %s: %d, want %d", tc.target, code, tc.code)
			continue
		}
		if tc.uri == "" {
			if s.up.count() != before {
				t.Errorf("GET %s reached the upstream as %s", tc.target, s.up.last(t).URI)
			}
			continue
		}
		if got := s.up.last(t).URI; got != tc.uri {
			t.Errorf("GET %s: upstream got %s, want %s", tc.target, got, tc.uri)
		}
	}
}

func TestGateway_StripsClientCookieAndAddressHeaders(t *testing.T) {
	s := newSetup(t)
	front := httptest.NewServer(s.gw)
	t.Cleanup(front.Close)
	h := http.Header{"Authorization": {"Bearer " + s.is.token(s.owner, nil)}}
	for _, name := range []string{"Cookie", "X-Real-IP", "True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "Fastly-Client-IP"} {
		h.Set(name, "6.6.6.6")
	}
	if code := rawGet(t, strings.TrimPrefix(front.URL, "http://"), "/x", h); code != 200 {
		t.Fatalf("through the gateway: %d", code)
	}
	got := s.up.last(t).Header
	for _, name := range []string{"Cookie", "X-Real-IP", "True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "Fastly-Client-IP"} {
		if v := got.Values(name); len(v) != 0 {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
	if xff := got.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the peer's address", xff)
	}
}
