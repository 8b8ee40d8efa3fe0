package dpop

import (
	"context"
	"errors"
	"testing"
)

// FuzzCheck drives the proof parser and checks with any string, against
// the request the seed corpus's valid proofs were made for (GET testURL
// with testToken, at epoch). It never panics; every refusal wraps one of
// the sentinels; an accepted proof's jkt is its key's thumbprint, and the
// same proof a second time is a replay.
func FuzzCheck(f *testing.F) {
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, proof string) {
		c := mustChecker(t, Config{Replay: NewMemoryReplayCache(4, fixedClock)})
		p, err := c.Check(context.Background(), proof, getRequest())
		if err != nil {
			for _, s := range []error{ErrMalformed, ErrType, ErrAlgorithm, ErrKey, ErrSignature, ErrMethod, ErrURL, ErrIssuedAt, ErrTokenHash} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if jkt, err := Thumbprint(p.Key); err != nil || jkt != p.JKT {
			t.Fatalf("jkt %s, Thumbprint %s, %v", p.JKT, jkt, err)
		}
		if _, err := c.Check(context.Background(), proof, getRequest()); !errors.Is(err, ErrReplay) {
			t.Fatalf("second use: %v", err)
		}
	})
}

// FuzzNormalizeHTU: normalizing never panics and is idempotent, so two
// URIs that normalize alike compare alike however often it is applied; and
// a URI the fast path of Check takes as plain is its own normal form.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{"https://h/a", "HTTP://H:80/%7e/./../b?q#f", "https://[::1]:443/", "https://h/%zz", "https://h/a/b/../../.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeHTU(s)
		if plainURI(s) && (err != nil || n != s) {
			t.Fatalf("plain %q normalizes to %q, %v", s, n, err)
		}
		if err != nil {
			return
		}
		n2, err := NormalizeHTU(n)
		if err != nil || n2 != n {
			t.Fatalf("%q -> %q -> %q, %v", s, n, n2, err)
		}
	})
}
