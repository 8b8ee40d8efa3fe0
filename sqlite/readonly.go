package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
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
// method fails with SQLITE_READONLY instead of changing the file. When no
// -wal file exists no process has the database open (SQLite removes it
// with the last connection), and the file is opened immutable, so that
// not even the -wal and -shm files a WAL reader needs are created.
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
	_, werr := os.Stat(abs + "-wal")
	immutable := errors.Is(werr, fs.ErrNotExist)
	db := &DB{path: abs}
	for _, p := range []**sql.DB{&db.writer, &db.reader} {
		if *p, err = sql.Open("sqlite", readOnlyDSN(abs, immutable)); err != nil {
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

func readOnlyDSN(path string, immutable bool) string {
	q := url.Values{}
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Set("_query_only", "1")
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// JournalMode returns "wal" when the file is in WAL mode, which a server
// needs for readers not to wait for the writer, and "rollback" otherwise.
// It reads the file header's format version (bytes 18 and 19: 2 for WAL,
// sqlite.org/fileformat2.html §1.3.3), which PRAGMA journal_mode cannot
// report on an immutable connection.
func (db *DB) JournalMode(context.Context) (string, error) {
	f, err := os.Open(db.path)
	if err != nil {
		return "", internal("journal mode", err)
	}
	defer f.Close()
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return "", internal("journal mode", err)
	}
	if h[18] == 2 && h[19] == 2 {
		return "wal", nil
	}
	return "rollback", nil
}
