// Package latchtest builds the real parts that the tests of several
// packages need: a migrated SQLite store in a temporary directory and a key
// manager with a signing key, sealed under a random key-encryption key. It
// is test support: only _test.go files import it.
package latchtest

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/keys"
	"github.com/latch-auth/latch/sqlite"
)

// Store returns a migrated SQLite store in tb's temporary directory, closed
// at cleanup.
func Store(tb testing.TB) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "latch.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}

// Keys returns a key manager over store, on the clock now (nil: time.Now),
// with a key that signs at once.
func Keys(tb testing.TB, store latch.KeyStore, now func() time.Time) *keys.Manager {
	tb.Helper()
	return KeysConfig(tb, store, keys.Config{Now: now})
}

// KeysConfig is Keys with a configuration of the test's choosing.
func KeysConfig(tb testing.TB, store latch.KeyStore, cfg keys.Config) *keys.Manager {
	tb.Helper()
	kek := make([]byte, keys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		tb.Fatal(err)
	}
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		tb.Fatal(err)
	}
	km, err := keys.NewManager(store, sealer, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := km.EnsureKey(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return km
}

// SaveArtefact keeps b, a screenshot or another output worth looking at
// after the run, as name in the directory named by LATCH_TEST_ARTIFACTS
// (CI keeps it; LATCH_TEST_ARTEFACTS is read too), or else in the test's
// temporary directory.
func SaveArtefact(tb testing.TB, name string, b []byte) {
	tb.Helper()
	dir := os.Getenv("LATCH_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.Getenv("LATCH_TEST_ARTEFACTS")
	}
	if dir == "" {
		dir = tb.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("artefact: %s", p)
}
