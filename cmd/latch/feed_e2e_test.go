package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/latch-auth/latch/verify"
)

// followFeed wires the real server's revocation feed into a Verifier, the
// way a resource server does.
func followFeed(t *testing.T, p *latchProc, dev testClient) (*verify.Verifier, *verify.Denylist) {
	t.Helper()
	ctx := context.Background()
	d, err := verify.FollowRevocations(ctx, verify.FeedConfig{
		Issuer: p.Issuer, ClientID: dev.ID, ClientSecret: dev.Secret, InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("FollowRevocations against latch serve: %v", err)
	}
	t.Cleanup(d.Close)
	v, err := verify.New(ctx, verify.Config{
		Issuer: p.Issuer, Audience: "dev-api", InsecureAllowHTTP: true, IsRevoked: d.IsRevoked,
	})
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	return v, d
}

// waitRevoked polls v until it refuses tok as revoked, and returns how long
// that took; it fails the test after limit.
func waitRevoked(t *testing.T, v *verify.Verifier, tok string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := v.Verify(context.Background(), tok)
		if errors.Is(err, verify.ErrRevoked) {
			return time.Since(start)
		}
		if err != nil {
			t.Fatalf("Verify: %v, want nil or ErrRevoked", err)
		}
		if time.Since(start) > limit {
			t.Fatalf("token still accepted %v after its revocation answered 200", limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFeed_E2E_RevocationReachesVerifier measures the time from POST
// /oauth2/revoke answering 200 to the first Verify that refuses the token
// (target p99 <= 250 ms), through the real binary's feed and package
// verify's Denylist.
// Only "within 5s" is asserted; the percentiles are logged for
// BENCHMARKS.md (go test ./cmd/latch -run TestFeed_E2E_RevocationReachesVerifier -v).
func TestFeed_E2E_RevocationReachesVerifier(t *testing.T) {
	const n = 200
	p := startLatch(t, t.TempDir())
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	v, d := followFeed(t, p, dev)

	toks := make([]string, n)
	for i := range toks {
		toks[i] = issueToken(t, p, dev, nil)
		if _, err := v.Verify(context.Background(), toks[i]); err != nil {
			t.Fatalf("fresh token refused: %v", err)
		}
	}
	hc := &http.Client{}
	lat := make([]time.Duration, 0, n)
	for _, tok := range toks {
		if code, body := postForm(t, hc, p.URL("/oauth2/revoke"), dev, url.Values{"token": {tok}}); code != 200 {
			t.Fatalf("revoke: %d %s", code, body)
		}
		lat = append(lat, waitRevoked(t, v, tok, 5*time.Second))
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	t.Logf("revoke 200 -> verify rejects, n=%d: p50 %v  p90 %v  p99 %v  max %v  (loopback, 1ms polling)",
		n, pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1])
	if !d.Healthy() || d.Len() != n {
		t.Errorf("denylist: healthy %v, %d entries, want %d", d.Healthy(), d.Len(), n)
	}
}

// TestFeed_E2E_ServerRestart_ResumesFromCursor: while latch is down the
// denylist keeps its state (within MaxStale); after the restart it resumes
// from its cursor and sees new revocations. A long-poll in flight does not
// hold up the graceful shutdown.
func TestFeed_E2E_ServerRestart_ResumesFromCursor(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String() // the same issuer across restarts
	ln.Close()
	p := startLatch(t, dir, "--listen", addr)
	dev := testClient{ID: "dev", Secret: p.DevSecret(t)}
	v, d := followFeed(t, p, dev)
	before, after := issueToken(t, p, dev, nil), issueToken(t, p, dev, nil)
	if code, _ := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), dev, url.Values{"token": {before}}); code != 200 {
		t.Fatal("revoke")
	}
	waitRevoked(t, v, before, 5*time.Second)
	cursor := d.Cursor()

	stopped := time.Now()
	p.Stop(t)
	if el := time.Since(stopped); el > 5*time.Second {
		t.Errorf("graceful shutdown took %v with a feed follower connected", el)
	}
	if _, err := v.Verify(context.Background(), after); err != nil {
		t.Errorf("within MaxStale of the outage, an unrevoked token is refused: %v", err)
	}

	p = startLatch(t, dir, "--listen", addr)
	if code, body := postForm(t, http.DefaultClient, p.URL("/oauth2/revoke"), dev, url.Values{"token": {after}}); code != 200 {
		t.Fatalf("revoke after restart: %d %s", code, body)
	}
	waitRevoked(t, v, after, 10*time.Second)
	if d.Cursor() <= cursor || !d.Healthy() {
		t.Errorf("cursor %d -> %d, healthy %v: want resumed from the cursor", cursor, d.Cursor(), d.Healthy())
	}
	if _, err := v.Verify(context.Background(), before); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("a revocation from before the restart was forgotten: %v", err)
	}
}
