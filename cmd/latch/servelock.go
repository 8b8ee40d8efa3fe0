package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// serveRecord is DATA_DIR/serve.lock: the issuer of the latch serve that
// runs, or last ran, on a SQLite data directory. Every running serve holds
// a shared lock on the file; the first one takes it exclusively to write
// its record. Tokens carry the issuer, and a server refuses tokens of
// another (RFC 9068 §4): so a second serve on the same store with another
// issuer (another --listen under --dev) is refused, and the token commands
// check their --issuer against this record.
type serveRecord struct {
	Issuer    string    `json:"issuer"`
	Addr      string    `json:"addr"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

func serveLockPath(dir string) string { return filepath.Join(dir, "serve.lock") }

// lockDataDir records rec in dir's serve.lock and holds the file's shared
// lock until release. It refuses when a running serve holds it with
// another issuer.
func lockDataDir(dir string, rec serveRecord) (release func(), err error) {
	path := serveLockPath(dir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if tryLock(f, true) {
		// No serve runs here: this one's record replaces the last one's.
		b, _ := json.Marshal(rec)
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("data directory lock: %w", err)
		}
		if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
			return nil, fmt.Errorf("data directory lock: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("data directory lock: %w", err)
		}
		if !lockShared(f) {
			return nil, fmt.Errorf("data directory lock %s: cannot hold it", path)
		}
		return func() { f.Close() }, nil
	}
	other, err := readRecord(f)
	if err != nil {
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	if other.Issuer != rec.Issuer {
		return nil, fmt.Errorf("another latch serve (pid %d, since %s) runs on data directory %s with issuer %s; this one would have issuer %s, and each would refuse the other's tokens: stop it first, run this one with its issuer (--listen %s under --dev), or give it another --data-dir",
			other.PID, stamp(other.StartedAt), dir, other.Issuer, rec.Issuer, other.Addr)
	}
	if !tryLock(f, false) {
		return nil, fmt.Errorf("data directory lock %s is held by a serve that is starting; try again", path)
	}
	return func() { f.Close() }, nil
}

func readRecord(r io.Reader) (*serveRecord, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, err
	}
	var rec serveRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Issuer == "" {
		return nil, fmt.Errorf("no issuer recorded (%d bytes): remove it when no latch serve runs", len(b))
	}
	return &rec, nil
}

// servedIssuer returns the issuer recorded in dir by the latch serve that
// runs or last ran there; nil when none ever did.
func servedIssuer(dir string) (*serveRecord, error) {
	f, err := os.Open(serveLockPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, err := readRecord(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", serveLockPath(dir), err)
	}
	return rec, nil
}
