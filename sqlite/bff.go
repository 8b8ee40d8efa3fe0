package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latch-auth/latch"
)

// bffSchemaVersion is PRAGMA user_version of a current bff database.
const bffSchemaVersion = 2

const bffSchema = `
CREATE TABLE IF NOT EXISTS bff_sessions (
	key        BLOB PRIMARY KEY,
	sealed     BLOB NOT NULL,
	expires_at INTEGER NOT NULL -- unix microseconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bff_sessions_expires ON bff_sessions (expires_at);
DROP TABLE IF EXISTS bff_logins; -- pending logins live in the pre-login cookie
CREATE TABLE IF NOT EXISTS bff_keys (
	name   TEXT PRIMARY KEY,
	sealed BLOB NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 2;
`

// BFFStore is the Backend-for-Frontend's default session store
// (bff.Store): one SQLite file of its own (not the
// authorization server's database), through the pure Go driver
// modernc.org/sqlite. Like package sqlite it runs one writer connection
// (writes queue in Go, not on SQLITE_BUSY) beside a pool of readers, with
// journal_mode=WAL and synchronous=FULL: a session acknowledged to the
// browser survives a power loss, and a refresh token rotated at the
// authorization server is on disk before any request uses its successor.
//
// One process at a time opens a store: it holds an exclusive lock on
// PATH.lock while open, so that it may keep what it reads and writes in
// memory (bffSessionCache) and serve session hits without a read of the
// file. Several BFF nodes share a Redis store instead.
type BFFStore struct {
	path   string
	lock   *os.File
	writer *sql.DB
	reader *sql.DB
	// session is the read of a session not in the cache, prepared once:
	// the driver would otherwise parse and plan it on each call.
	session *sql.Stmt
	cache   *bffSessionCache // nil without bffLocking
}

// OpenBFF opens (creating it with mode 0600, and its directory with
// 0700) the database file at path and creates its tables.
func OpenBFF(ctx context.Context, path string) (*BFFStore, error) {
	if path == "" {
		return nil, errors.New("bff: sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	lock, err := os.OpenFile(abs+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	if ok, err := lockBFF(lock); !ok {
		lock.Close()
		if err != nil {
			return nil, fmt.Errorf("bff: sqlite: lock %s: %w", abs+".lock", err)
		}
		return nil, fmt.Errorf("bff: sqlite: %s is in use by another BFF process; give each its own --data-dir, or share sessions between nodes with --redis-url", abs)
	}
	s := &BFFStore{path: abs, lock: lock}
	if bffLocking {
		s.cache = &bffSessionCache{}
	}
	if s.writer, err = sql.Open("sqlite", bffDSN(abs, false)); err != nil {
		lock.Close()
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	keepConns(s.writer, 1)
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		lock.Close()
		return nil, err
	}
	if s.reader, err = sql.Open("sqlite", bffDSN(abs, true)); err != nil {
		s.writer.Close()
		lock.Close()
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	keepConns(s.reader, readerConns())
	if err := s.reader.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	if s.session, err = s.reader.PrepareContext(ctx, "SELECT sealed, expires_at FROM bff_sessions WHERE key = ? AND expires_at > ?"); err != nil {
		s.Close()
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	return s, nil
}

func (s *BFFStore) migrate(ctx context.Context) error {
	var v int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("bff: sqlite: open %s: %w", s.path, err)
	}
	switch {
	case v == bffSchemaVersion:
		return nil
	case v > bffSchemaVersion:
		return fmt.Errorf("bff: sqlite: %s has schema version %d, newer than this latch knows (%d); run a newer latch or use another --data-dir", s.path, v, bffSchemaVersion)
	}
	if _, err := s.writer.ExecContext(ctx, bffSchema); err != nil {
		return fmt.Errorf("bff: sqlite: create tables in %s: %w", s.path, err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *BFFStore) Path() string { return s.path }

// Close closes the database.
func (s *BFFStore) Close() error {
	var err error
	if s.session != nil {
		err = s.session.Close()
	}
	if s.reader != nil {
		err = errors.Join(err, s.reader.Close())
	}
	err = errors.Join(err, s.writer.Close())
	// The lock goes last: another process may open the file from then on.
	return errors.Join(err, s.lock.Close())
}

func bffMicros(t time.Time) int64 { return t.UnixMicro() }

func (s *BFFStore) fail(op string, err error) error {
	var se *sqlitedrv.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return latch.Errorf(latch.ECONFLICT, "bff: sqlite: %s: the record exists", op)
	}
	return fmt.Errorf("bff: sqlite: %s: %w", op, err)
}

// CreateSession implements Store.
func (s *BFFStore) CreateSession(ctx context.Context, key, sealed []byte, expires, _ time.Time) error {
	_, err := s.writer.ExecContext(ctx, "INSERT INTO bff_sessions (key, sealed, expires_at) VALUES (?, ?, ?)", key, sealed, bffMicros(expires))
	s.written(key)
	if err != nil {
		return s.fail("create session", err)
	}
	return nil
}

// Session implements Store.
func (s *BFFStore) Session(ctx context.Context, key []byte, now time.Time) ([]byte, time.Time, error) {
	var gen uint64
	if s.cache != nil {
		if sealed, exp, ok := s.cache.get(key, bffMicros(now)); ok {
			return sealed, time.UnixMicro(exp), nil
		}
		gen = s.cache.generation()
	}
	var sealed []byte
	var exp int64
	err := s.session.QueryRowContext(ctx, key, bffMicros(now)).Scan(&sealed, &exp)
	if err == nil && s.cache != nil {
		s.cache.fill(key, sealed, exp, gen)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	if err != nil {
		return nil, time.Time{}, s.fail("read session", err)
	}
	return sealed, time.UnixMicro(exp), nil
}

// written forgets what the cache holds of key (every session with key
// nil) once a write to it has ended.
func (s *BFFStore) written(key []byte) {
	if s.cache != nil {
		s.cache.invalidate(key)
	}
}

func (s *BFFStore) update(ctx context.Context, key []byte, op, query string, args ...any) error {
	res, err := s.writer.ExecContext(ctx, query, args...)
	s.written(key)
	if err != nil {
		return s.fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		return latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	return nil
}

// UpdateSession implements Store.
func (s *BFFStore) UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error {
	return s.update(ctx, key, "update session", "UPDATE bff_sessions SET sealed = ? WHERE key = ? AND expires_at > ?", sealed, key, bffMicros(now))
}

// TouchSession implements Store.
func (s *BFFStore) TouchSession(ctx context.Context, key []byte, expires, now time.Time) error {
	return s.update(ctx, key, "touch session", "UPDATE bff_sessions SET expires_at = ? WHERE key = ? AND expires_at > ?", bffMicros(expires), key, bffMicros(now))
}

// DeleteSession implements Store.
func (s *BFFStore) DeleteSession(ctx context.Context, key []byte) error {
	_, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE key = ?", key)
	s.written(key)
	if err != nil {
		return s.fail("delete session", err)
	}
	return nil
}

// Purge implements Store.
func (s *BFFStore) Purge(ctx context.Context, now time.Time) (int, error) {
	res, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE expires_at <= ?", bffMicros(now))
	// Nothing the purge deletes is served from the cache (get checks the
	// expiry), but a cache that kept them would grow without bound.
	s.written(nil)
	if err != nil {
		return 0, s.fail("purge", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// bffDSN is the connection string of the BFF's database: the pragmas every
// latch SQLite file runs with, without the server database's foreign keys,
// in-memory statement journals and manual checkpoints (it has no
// checkpointer: SQLite checkpoints it by itself).
func bffDSN(path string, readOnly bool) string {
	return fileDSN(path, basePragmas("FULL", readOnly))
}

// CreateKey implements bff.Store. The insert and the read run on the one
// writer connection, in one transaction.
func (s *BFFStore) CreateKey(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.fail("create key", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO bff_keys (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, sealed); err != nil {
		return nil, s.fail("create key", err)
	}
	var stored []byte
	if err := tx.QueryRowContext(ctx, "SELECT sealed FROM bff_keys WHERE name = ?", name).Scan(&stored); err != nil {
		return nil, s.fail("create key", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, s.fail("create key", err)
	}
	return stored, nil
}
