package bff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latch-auth/latch"
)

// sqliteSchemaVersion is PRAGMA user_version of a current bff database.
const sqliteSchemaVersion = 2

const sqliteSchema = `
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

// SQLiteStore is the default Store: one SQLite file of its own (not the
// authorization server's database), through the pure Go driver
// modernc.org/sqlite. Like package sqlite it runs one writer connection
// (writes queue in Go, not on SQLITE_BUSY) beside a pool of readers, with
// journal_mode=WAL and synchronous=FULL: a session acknowledged to the
// browser survives a power loss, and a refresh token rotated at the
// authorization server is on disk before any request uses its successor.
type SQLiteStore struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	// session is the read of every proxied request, prepared once: the
	// driver would otherwise parse and plan it on each call.
	session *sql.Stmt
}

var _ Store = (*SQLiteStore)(nil)

// OpenSQLite opens (creating it with mode 0600, and its directory with
// 0700) the database file at path and creates its tables.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if path == "" {
		return nil, errors.New("bff: sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("bff: sqlite: create directory: %w", err)
	}
	// SQLite would create the file 0644; it holds sealed tokens, and the
	// -wal and -shm files take the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("bff: sqlite: %w", err)
	}
	s := &SQLiteStore{path: abs}
	if s.writer, err = sql.Open("sqlite", sqliteDSN(abs, false)); err != nil {
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		return nil, err
	}
	if s.reader, err = sql.Open("sqlite", sqliteDSN(abs, true)); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
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

func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") { // Windows: file:///C:/...
		p = "/" + p
	}
	return (&url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}).String()
}

func (s *SQLiteStore) migrate(ctx context.Context) error {
	var v int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("bff: sqlite: open %s: %w", s.path, err)
	}
	switch {
	case v == sqliteSchemaVersion:
		return nil
	case v > sqliteSchemaVersion:
		return fmt.Errorf("bff: sqlite: %s has schema version %d, newer than this latch knows (%d); run a newer latch or use another --data-dir", s.path, v, sqliteSchemaVersion)
	}
	if _, err := s.writer.ExecContext(ctx, sqliteSchema); err != nil {
		return fmt.Errorf("bff: sqlite: create tables in %s: %w", s.path, err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *SQLiteStore) Path() string { return s.path }

// Close closes the database.
func (s *SQLiteStore) Close() error {
	var err error
	if s.session != nil {
		err = s.session.Close()
	}
	if s.reader != nil {
		err = errors.Join(err, s.reader.Close())
	}
	return errors.Join(err, s.writer.Close())
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func (s *SQLiteStore) fail(op string, err error) error {
	var se *sqlitedrv.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return latch.Errorf(latch.ECONFLICT, "bff: sqlite: %s: the record exists", op)
	}
	return fmt.Errorf("bff: sqlite: %s: %w", op, err)
}

// CreateSession implements Store.
func (s *SQLiteStore) CreateSession(ctx context.Context, key, sealed []byte, expires, _ time.Time) error {
	_, err := s.writer.ExecContext(ctx, "INSERT INTO bff_sessions (key, sealed, expires_at) VALUES (?, ?, ?)", key, sealed, micros(expires))
	if err != nil {
		return s.fail("create session", err)
	}
	return nil
}

// Session implements Store.
func (s *SQLiteStore) Session(ctx context.Context, key []byte, now time.Time) ([]byte, time.Time, error) {
	var sealed []byte
	var exp int64
	err := s.session.QueryRowContext(ctx, key, micros(now)).Scan(&sealed, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	if err != nil {
		return nil, time.Time{}, s.fail("read session", err)
	}
	return sealed, time.UnixMicro(exp), nil
}

func (s *SQLiteStore) update(ctx context.Context, op, query string, args ...any) error {
	res, err := s.writer.ExecContext(ctx, query, args...)
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
func (s *SQLiteStore) UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error {
	return s.update(ctx, "update session", "UPDATE bff_sessions SET sealed = ? WHERE key = ? AND expires_at > ?", sealed, key, micros(now))
}

// TouchSession implements Store.
func (s *SQLiteStore) TouchSession(ctx context.Context, key []byte, expires, now time.Time) error {
	return s.update(ctx, "touch session", "UPDATE bff_sessions SET expires_at = ? WHERE key = ? AND expires_at > ?", micros(expires), key, micros(now))
}

// DeleteSession implements Store.
func (s *SQLiteStore) DeleteSession(ctx context.Context, key []byte) error {
	if _, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE key = ?", key); err != nil {
		return s.fail("delete session", err)
	}
	return nil
}

// Purge implements Store.
func (s *SQLiteStore) Purge(ctx context.Context, now time.Time) (int, error) {
	res, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE expires_at <= ?", micros(now))
	if err != nil {
		return 0, s.fail("purge", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CreateKey implements Store. The insert and the read run on the one
// writer connection, in one transaction.
func (s *SQLiteStore) CreateKey(ctx context.Context, name string, sealed []byte) ([]byte, error) {
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
