package main

import "testing"

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr, url string
		want      bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"localhost:0", "http://localhost:8080", true},
		{"[::1]:8080", "http://[::1]:8080", true},
		{"0.0.0.0:8080", "http://0.0.0.0:8080", false},
		{"10.0.0.1:8080", "https://auth.example.com", false},
		{":8080", "http://auth.example.com:8080/x", false},
	} {
		if got := isLoopbackAddr(tc.addr); got != tc.want {
			t.Errorf("isLoopbackAddr(%q) = %v", tc.addr, got)
		}
		if got := isLoopbackURL(tc.url); got != tc.want {
			t.Errorf("isLoopbackURL(%q) = %v", tc.url, got)
		}
	}
}
