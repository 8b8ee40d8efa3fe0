package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/latch-auth/latch"
)

// OpenReadOnly opens an existing database file for reading only, for a
// command that must not change what it inspects (latch doctor): it
// creates nothing, sets no persistent pragma (not even journal_mode) and
// runs no migration. Both pools are mode=ro, so a write through any
// method fails with SQLITE_READONLY instead of changing the file.
// ENOTFOUND when the file does not exist.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, internal("open "+path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: open: no database at %s", abs)
		}
		return nil, internal("open "+path, err)
	}
	db := &DB{path: abs}
	for _, p := range []**sql.DB{&db.writer, &db.reader} {
		if *p, err = sql.Open("sqlite", readOnlyDSN(abs)); err != nil {
			db.Close()
			return nil, internal("open "+path, err)
		}
		(*p).SetMaxOpenConns(2)
	}
	if err := db.reader.PingContext(ctx); err != nil {
		db.Close()
		return nil, internal("open "+path, err)
	}
	return db, nil
}

func readOnlyDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Set("_query_only", "1")
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// JournalMode returns the file's journal mode (wal, delete, ...), which a
// server needs to be wal for readers not to wait for the writer.
func (db *DB) JournalMode(ctx context.Context) (string, error) {
	var m string
	if err := db.reader.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&m); err != nil {
		return "", internal("journal mode", err)
	}
	return strings.ToLower(m), nil
}
