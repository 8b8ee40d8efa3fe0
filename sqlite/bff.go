package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latch-auth/latch"
)

// bffSchemaVersion is PRAGMA user_version of a current bff database.
const bffSchemaVersion = 1

const bffSchema = `
CREATE TABLE IF NOT EXISTS bff_sessions (
	key        BLOB PRIMARY KEY,
	sealed     BLOB NOT NULL,
	expires_at INTEGER NOT NULL -- unix microseconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bff_sessions_expires ON bff_sessions (expires_at);
DROP TABLE IF EXISTS bff_logins; -- pending logins live in the pre-login cookie
PRAGMA user_version = 1;
`

// BFFStore is the Backend-for-Frontend's default session store
// (bff.Store): one SQLite file of its own (not the
// authorization server's database), through the pure Go driver
// modernc.org/sqlite. Like package sqlite it runs one writer connection
// (writes queue in Go, not on SQLITE_BUSY) beside a pool of readers, with
// journal_mode=WAL and synchronous=FULL: a session acknowledged to the
// browser survives a power loss, and a refresh token rotated at the
// authorization server is on disk before any request uses its successor.
type BFFStore struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	// session is the read of every proxied request, prepared once: the
	// driver would otherwise parse and plan it on each call.
	session *sql.Stmt
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
	s := &BFFStore{path: abs}
	if s.writer, err = sql.Open("sqlite", bffDSN(abs, false)); err != nil {
		return nil, fmt.Errorf("bff: sqlite: open %s: %w", abs, err)
	}
	keepConns(s.writer, 1)
	if err := s.migrate(ctx); err != nil {
		s.writer.Close()
		return nil, err
	}
	if s.reader, err = sql.Open("sqlite", bffDSN(abs, true)); err != nil {
		s.writer.Close()
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
	return errors.Join(err, s.writer.Close())
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
	if err != nil {
		return s.fail("create session", err)
	}
	return nil
}

// Session implements Store.
func (s *BFFStore) Session(ctx context.Context, key []byte, now time.Time) ([]byte, time.Time, error) {
	var sealed []byte
	var exp int64
	err := s.session.QueryRowContext(ctx, key, bffMicros(now)).Scan(&sealed, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, latch.Errorf(latch.ENOTFOUND, "bff: no such session")
	}
	if err != nil {
		return nil, time.Time{}, s.fail("read session", err)
	}
	return sealed, time.UnixMicro(exp), nil
}

func (s *BFFStore) update(ctx context.Context, op, query string, args ...any) error {
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
func (s *BFFStore) UpdateSession(ctx context.Context, key, sealed []byte, now time.Time) error {
	return s.update(ctx, "update session", "UPDATE bff_sessions SET sealed = ? WHERE key = ? AND expires_at > ?", sealed, key, bffMicros(now))
}

// TouchSession implements Store.
func (s *BFFStore) TouchSession(ctx context.Context, key []byte, expires, now time.Time) error {
	return s.update(ctx, "touch session", "UPDATE bff_sessions SET expires_at = ? WHERE key = ? AND expires_at > ?", bffMicros(expires), key, bffMicros(now))
}

// DeleteSession implements Store.
func (s *BFFStore) DeleteSession(ctx context.Context, key []byte) error {
	if _, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE key = ?", key); err != nil {
		return s.fail("delete session", err)
	}
	return nil
}

// Purge implements Store.
func (s *BFFStore) Purge(ctx context.Context, now time.Time) (int, error) {
	res, err := s.writer.ExecContext(ctx, "DELETE FROM bff_sessions WHERE expires_at <= ?", bffMicros(now))
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
