package sqlite

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBFFSessionCache_ReadRacingAWrite_IsNotCached(t *testing.T) {
	var c bffSessionCache
	key := []byte("k")
	gen := c.generation() // a read starts, and reads the old record
	c.invalidate(key)     // a write of the same key ends meanwhile
	c.fill(key, []byte("old"), 100, gen)
	if got, _, ok := c.get(key, 0); ok {
		t.Fatalf("cache holds %q, read before a write that ended after it", got)
	}
	gen = c.generation()
	c.fill(key, []byte("new"), 100, gen)
	if got, _, ok := c.get(key, 0); !ok || string(got) != "new" {
		t.Fatalf("get = %q, %v; want the record read after the write", got, ok)
	}
	if _, _, ok := c.get(key, 100); ok {
		t.Fatal("a record is served at its expiry")
	}
}

func TestBFFStore_SecondOpen_IsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bff.db")
	s, err := OpenBFF(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !bffLocking {
		s.Close()
		t.Skip("no flock on this platform: the store runs without its cache")
	}
	s2, err := OpenBFF(ctx, path)
	if err == nil {
		s2.Close()
		t.Fatal("a second OpenBFF of an open store succeeded; its writes would not reach the first one's cache")
	}
	if !strings.Contains(err.Error(), "in use by another BFF process") {
		t.Fatalf("error %q does not say the store is in use", err)
	}
	s.Close()
	s2, err = OpenBFF(ctx, path)
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	s2.Close()
}

// Every write of the store reaches the next read, cached or not.
func TestBFFStore_CachedSession_FollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	s, err := OpenBFF(ctx, filepath.Join(t.TempDir(), "bff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	key := bytes.Repeat([]byte{7}, 32)
	read := func() ([]byte, time.Time, error) { return s.Session(ctx, key, now) }
	if err := s.CreateSession(ctx, key, []byte("v1"), now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is the cache's
		if got, _, err := read(); err != nil || string(got) != "v1" {
			t.Fatalf("Session = %q, %v; want v1", got, err)
		}
	}
	if err := s.UpdateSession(ctx, key, []byte("v2"), now); err != nil {
		t.Fatal(err)
	}
	if got, _, err := read(); err != nil || string(got) != "v2" {
		t.Fatalf("after UpdateSession: %q, %v; want v2", got, err)
	}
	exp := now.Add(2 * time.Hour).Truncate(time.Microsecond)
	if err := s.TouchSession(ctx, key, exp, now); err != nil {
		t.Fatal(err)
	}
	if _, got, err := read(); err != nil || !got.Equal(exp) {
		t.Fatalf("after TouchSession: expiry %v, %v; want %v", got, err, exp)
	}
	if _, _, err := s.Session(ctx, key, exp); err == nil {
		t.Fatal("the cached session is served at its expiry")
	}
	if err := s.DeleteSession(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, _, err := read(); err == nil {
		t.Fatalf("after DeleteSession: %q, want not found", got)
	}
}
