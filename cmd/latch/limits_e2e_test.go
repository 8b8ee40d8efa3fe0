package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/latch-auth/latch/server"
)

// The documented 16 KiB of request line and headers is the real limit of
// latch serve: a little under it is served, a little over it is 431.
// (With MaxHeaderBytes set to 16 KiB, net/http's 4096 bytes of slack made
// it about 20 KiB.)
func TestServe_HeaderLimit_16KiB_Answered431(t *testing.T) {
	p := startLatch(t, t.TempDir())
	for _, tc := range []struct {
		size int
		want string
	}{
		{server.MaxHeaderBytes - 256, "200"},
		{server.MaxHeaderBytes, "200"},
		{server.MaxHeaderBytes + 1, "431"},
		{server.MaxHeaderBytes + 256, "431"},
		{server.MaxHeaderBytes + 4096, "431"},
	} {
		if got := headStatus(t, p.Addr, tc.size); got != tc.want {
			t.Errorf("request head of %d bytes: status %s, want %s", tc.size, got, tc.want)
		}
	}
}

// headStatus sends GET /healthz with a request line and headers of
// exactly size bytes (the final blank line included) and returns the
// status code of the answer.
func headStatus(t *testing.T, addr string, size int) string {
	t.Helper()
	const start, end = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: ", "\r\n\r\n"
	req := start + strings.Repeat("a", size-len(start)-len(end)) + end
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write %d bytes: %v", size, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read the answer to %d bytes: %v", size, err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("status line %q", line)
	}
	return f[1]
}
