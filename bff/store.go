package bff

import (
	"context"
	"time"
)

// Store keeps the BFF's server-side records: sessions, one per logged-in
// browser (a pending login is not one: it travels sealed in the pre-login
// cookie until the callback). It sees only opaque, sealed bytes under a
// 32-byte key, the SHA-256 of the session's cookie value; the value is
// AES-256-GCM ciphertext (package doc, "Storage"). A copy of the store
// therefore yields neither a cookie that opens a session nor a token.
//
// Two implementations, beside the server's backends, pass the same
// conformance tests: SQLite (sqlite.OpenBFF, the default, one file) and
// Redis (redis.OpenBFF, for several BFF nodes).
//
// Time is passed in, never read from the wall clock, so that expiry follows
// Config.Now. A record is gone, for every method, from its expiry on.
//
// Errors: latch.ErrNotFound (errors.Is) for a missing or expired record;
// anything else is the store failing.
type Store interface {
	// CreateSession stores a new session record that expires at expires.
	CreateSession(ctx context.Context, key, sealed []byte, expires, now time.Time) error
	// Session returns the sealed session and its current expiry.
	Session(ctx context.Context, key []byte, now time.Time) (sealed []byte, expires time.Time, err error)
	// UpdateSession replaces the sealed bytes of a live session and keeps
	// its expiry. It never brings back a session deleted or expired
	// meanwhile (ErrNotFound), so a refresh finishing after a logout cannot
	// resurrect the session.
	UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error
	// TouchSession moves the expiry of a live session (the idle timeout).
	TouchSession(ctx context.Context, key []byte, expires, now time.Time) error
	// DeleteSession removes a session; deleting a missing one is not an
	// error.
	DeleteSession(ctx context.Context, key []byte) error

	// Purge deletes the records expired at now and returns how many; a
	// store that expires records by itself returns 0.
	Purge(ctx context.Context, now time.Time) (int, error)
	// Close releases the store.
	Close() error
}
