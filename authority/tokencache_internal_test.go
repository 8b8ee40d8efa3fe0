package authority

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

func cacheToken(b byte, kind latch.TokenKind, exp time.Time) ([]byte, *latch.Token) {
	h := bytes.Repeat([]byte{b}, 32)
	return h, &latch.Token{Hash: h, Kind: kind, ID: string(rune('a' + b)), ExpiresAt: exp}
}

// testFeedPoll stands for the revocation feed's poll interval.
const testFeedPoll = 100 * time.Millisecond

// freshCache is a cache whose feed has just completed a read of the log.
func freshCache(max int, now func() time.Time) *TokenCache {
	c := NewTokenCache(max, testFeedPoll, now)
	c.LogReadComplete(now())
	return c
}

func TestTokenCache_ReadBeforeADrop_IsNotCached(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := freshCache(10, func() time.Time { return now })
	h, tok := cacheToken(1, latch.KindAccess, now.Add(time.Hour))

	// A store read begins (gen taken), the token is revoked meanwhile,
	// then the read's result arrives: it must not be cached.
	_, gen := c.get(h)
	c.drop(h)
	c.put(h, tok, gen)
	if got, _ := c.get(h); got != nil {
		t.Fatal("a token read before its revocation was cached after it")
	}
	_, gen = c.get(h)
	c.clear()
	c.put(h, tok, gen)
	if got, _ := c.get(h); got != nil {
		t.Fatal("a token read before a clear was cached after it")
	}

	// Without a drop in between it is cached, and a drop removes it.
	_, gen = c.get(h)
	c.put(h, tok, gen)
	if got, _ := c.get(h); got != tok {
		t.Fatalf("get after put = %v, want the token", got)
	}
	c.LogRead([]*latch.Revocation{{Kind: latch.RevokeJWT, Issuer: "x", JTI: "y"}, {Kind: latch.RevokeOpaque, TokenHash: h}})
	if got, _ := c.get(h); got != nil {
		t.Fatal("a token named by a RevokeOpaque entry of the log is still cached")
	}
}

func TestTokenCache_StaleFeed_Bypassed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	c := NewTokenCache(10, testFeedPoll, clock)
	h, tok := cacheToken(1, latch.KindAccess, now.Add(time.Hour))

	// Before the feed's first complete read nothing is cached.
	_, gen := c.get(h)
	c.put(h, tok, gen)
	if c.Len() != 0 {
		t.Fatal("cached before the feed read the log once")
	}
	c.LogReadComplete(now)
	_, gen = c.get(h)
	c.put(h, tok, gen)
	if got, _ := c.get(h); got != tok {
		t.Fatal("not cached after a fresh read of the log")
	}
	// The feed stops reading: once its last read is staleLimit old, the
	// entry is not used, whatever it holds.
	now = now.Add(TokenCacheStalePolls * testFeedPoll)
	if got, _ := c.get(h); got != nil {
		t.Fatal("cache used although the feed has not read the log for staleLimit")
	}
	c.LogReadComplete(now)
	if got, _ := c.get(h); got != tok {
		t.Fatal("cache not used again after the feed recovered")
	}
}

func TestTokenCache_EntryLifetime_MaxAgeAndExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	c := freshCache(10, clock)

	long, longTok := cacheToken(1, latch.KindAccess, now.Add(time.Hour))
	short, shortTok := cacheToken(2, latch.KindAccess, now.Add(2*time.Second))
	expired, expiredTok := cacheToken(3, latch.KindAccess, now)
	refresh, refreshTok := cacheToken(4, latch.KindRefresh, now.Add(time.Hour))
	for _, e := range []struct {
		h []byte
		t *latch.Token
	}{{long, longTok}, {short, shortTok}, {expired, expiredTok}, {refresh, refreshTok}} {
		_, gen := c.get(e.h)
		c.put(e.h, e.t, gen)
	}
	if c.Len() != 2 {
		t.Fatalf("cached %d tokens, want 2 (an expired token and a refresh token are never cached)", c.Len())
	}
	now = now.Add(2 * time.Second)
	c.LogReadComplete(now)
	if got, _ := c.get(short); got != nil {
		t.Error("a token is served from the cache at its expiry")
	}
	if got, _ := c.get(long); got != longTok {
		t.Error("a token within its lifetime and maxAge was dropped")
	}
	now = now.Add(tokenCacheMaxAge)
	c.LogReadComplete(now)
	if got, _ := c.get(long); got != nil {
		t.Error("an entry outlived tokenCacheMaxAge")
	}
}

func TestTokenCache_BoundedSize(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := freshCache(100, func() time.Time { return now })
	for i := range 1000 {
		h, tok := cacheToken(byte(i%250), latch.KindAccess, now.Add(time.Hour))
		h[31] = byte(i / 250)
		_, gen := c.get(h)
		c.put(h, tok, gen)
		if c.Len() > 100 {
			t.Fatalf("after %d puts the cache holds %d entries, over its bound of 100", i+1, c.Len())
		}
	}
	if c.Len() != 100 {
		t.Fatalf("cache holds %d entries, want it full (100)", c.Len())
	}
}

func TestMayHaveRevoked(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{latch.ErrNotFound, false},
		{latch.Errorf(latch.EUNAUTHORIZED, "expired"), false},
		{latch.Errorf(latch.EINVALID, "bad"), false},
		{latch.Errorf(latch.ECONFLICT, "exists"), false},
		{latch.Reusedf("reused"), true},
		{latch.Errorf(latch.EINTERNAL, "commit failed"), true},
		{latch.Errorf(latch.EUNAVAILABLE, "down"), true},
	} {
		if got := mayHaveRevoked(tc.err); got != tc.want {
			t.Errorf("mayHaveRevoked(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// grantStoreStub answers the token-deleting methods of latch.Store with
// err, to drive tokenCacheStore through outcomes a real store gives only in
// races or failures (a reuse detected, a failed commit).
type grantStoreStub struct {
	latch.Store
	err error
}

func (s grantStoreStub) Revoke(context.Context, *latch.Revocation) error { return s.err }
func (s grantStoreStub) RevokeFamily(context.Context, string, time.Time) error {
	return s.err
}
func (s grantStoreStub) RevokeFamilies(context.Context, latch.FamilyFilter, time.Time) (int, error) {
	return 0, s.err
}
func (s grantStoreStub) DeleteClient(context.Context, string) error { return s.err }
func (s grantStoreStub) DeleteUser(context.Context, string) error   { return s.err }
func (s grantStoreStub) RedeemCode(context.Context, []byte, time.Time, *latch.Family, latch.Issue) error {
	return s.err
}
func (s grantStoreStub) RotateRefresh(context.Context, []byte, time.Time, time.Duration, latch.Issue) (*latch.Token, *latch.Family, error) {
	return nil, nil, s.err
}

func TestTokenCacheStore_DropsWhatEachCallMayHaveDeleted(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	calls := map[string]func(latch.Store) error{
		"Revoke": func(s latch.Store) error {
			h, _ := cacheToken(1, latch.KindAccess, now)
			return s.Revoke(ctx, &latch.Revocation{Kind: latch.RevokeOpaque, TokenHash: h})
		},
		"RevokeFamily": func(s latch.Store) error { return s.RevokeFamily(ctx, "f", now) },
		"RevokeFamilies": func(s latch.Store) error {
			_, err := s.RevokeFamilies(ctx, latch.FamilyFilter{UserID: "u"}, now)
			return err
		},
		"DeleteClient": func(s latch.Store) error { return s.DeleteClient(ctx, "c") },
		"DeleteUser":   func(s latch.Store) error { return s.DeleteUser(ctx, "u") },
		"RedeemCode": func(s latch.Store) error {
			return s.RedeemCode(ctx, nil, now, &latch.Family{}, latch.Issue{})
		},
		"RotateRefresh": func(s latch.Store) error {
			_, _, err := s.RotateRefresh(ctx, nil, now, 0, latch.Issue{})
			return err
		},
	}
	for _, tc := range []struct {
		call string
		err  error
		// dropped: token 1 (named by the Revoke call) must be gone;
		// cleared: token 2 (named by nothing) too.
		dropped, cleared bool
	}{
		{"Revoke", nil, true, false},
		{"Revoke", latch.Errorf(latch.EINTERNAL, "commit failed"), true, false},
		{"RevokeFamily", nil, true, true},
		{"RevokeFamily", latch.ErrNotFound, true, true},
		{"RevokeFamilies", nil, true, true},
		{"DeleteClient", nil, true, true},
		{"DeleteUser", nil, true, true},
		{"RedeemCode", nil, false, false},
		{"RedeemCode", latch.Reusedf("code reused"), true, true},
		{"RedeemCode", latch.Errorf(latch.EUNAUTHORIZED, "expired"), false, false},
		{"RotateRefresh", nil, false, false},
		{"RotateRefresh", latch.Reusedf("refresh token reused"), true, true},
		{"RotateRefresh", latch.Errorf(latch.EINTERNAL, "commit failed"), true, true},
		{"RotateRefresh", latch.ErrNotFound, false, false},
	} {
		c := freshCache(10, func() time.Time { return now })
		h1, t1 := cacheToken(1, latch.KindAccess, now.Add(time.Hour))
		h2, t2 := cacheToken(2, latch.KindAccess, now.Add(time.Hour))
		c.put(h1, t1, 0)
		c.put(h2, t2, 0)
		err := calls[tc.call](tokenCacheStore{Store: grantStoreStub{err: tc.err}, cache: c})
		if err != tc.err {
			t.Errorf("%s: returned %v, want the store's %v", tc.call, err, tc.err)
		}
		got1, _ := c.get(h1)
		got2, _ := c.get(h2)
		if (got1 == nil) != tc.dropped || (got2 == nil) != tc.cleared {
			t.Errorf("%s returning %v: token named gone=%v, other token gone=%v; want %v, %v",
				tc.call, tc.err, got1 == nil, got2 == nil, tc.dropped, tc.cleared)
		}
	}
}
