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

// Backup writes a consistent copy of the database to the new file to and
// returns its size. It runs while servers and the CLI use the database:
// VACUUM INTO reads one snapshot (a read transaction, which in WAL mode
// holds up no writer) and writes a compact copy without the WAL. The copy
// is synced to disk and checked (PRAGMA quick_check) before Backup
// returns, so a nil error means a file that Restore accepts.
//
// to must not exist: a backup never overwrites anything (ECONFLICT). The
// copy is created mode 0600; it holds what the database holds (sealed
// signing keys, token hashes), useless without the key-encryption key but
// worth guarding like the database.
func (db *DB) Backup(ctx context.Context, to string) (int64, error) {
	abs, err := filepath.Abs(to)
	if err != nil {
		return 0, latch.Errorf(latch.EINVALID, "sqlite: backup to %s: %v", to, err)
	}
	for _, own := range []string{db.path, db.path + "-wal", db.path + "-shm", db.path + "-journal"} {
		if abs == own {
			return 0, latch.Errorf(latch.EINVALID, "sqlite: backup to %s: that is the database itself; name a new file", to)
		}
	}
	if err := createEmpty(abs); err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(abs)
		}
	}()

	// A connection of its own: the reader pool is query_only, which SQLite
	// applies to VACUUM INTO as well, and the writer must stay free for
	// this process's writes while the copy is made.
	conn, err := sql.Open("sqlite", dsn(db.path, options{synchronous: "FULL"}, false))
	if err != nil {
		return 0, internal("backup", err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	// VACUUM INTO accepts an existing file only when it is empty: the one
	// createEmpty made, never a file someone else put there meanwhile.
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return 0, internal("backup to "+to, err)
	}
	n, err := syncFile(abs)
	if err != nil {
		return 0, internal("backup to "+to, err)
	}
	if err := check(ctx, abs); err != nil {
		return 0, err
	}
	ok = true
	return n, nil
}

// Restore copies the backup file from into the new database file to
// (creating its directory, mode 0700) and returns its size. It checks
// first that from is an intact latch database (PRAGMA quick_check and a
// schema_migrations table), and refuses when to, or its -wal or -shm file,
// exists: restoring over a database that a server may have open would
// corrupt it, and over one that none has open would destroy what the
// backup lacks. The copy is written beside to and renamed into place, so
// a crash leaves no half-restored database. Open and Migrate the restored
// database as usual: a backup of an older schema is brought up to date
// then.
func Restore(ctx context.Context, from, to string) (int64, error) {
	if err := check(ctx, from); err != nil {
		return 0, err
	}
	abs, err := filepath.Abs(to)
	if err != nil {
		return 0, latch.Errorf(latch.EINVALID, "sqlite: restore to %s: %v", to, err)
	}
	for _, p := range []string{abs, abs + "-wal", abs + "-shm", abs + "-journal"} {
		if _, err := os.Lstat(p); err == nil {
			return 0, latch.Errorf(latch.ECONFLICT, "sqlite: restore: %s exists: restore into a new data directory (or move the old database and its -wal and -shm files away while no latch runs on it)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, internal("restore to "+to, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return 0, internal("restore to "+to, err)
	}
	tmp := abs + ".restoring"
	os.Remove(tmp) // a leftover of a restore that crashed: ours to replace
	n, err := copyFile(from, tmp)
	if err != nil {
		os.Remove(tmp)
		return 0, internal("restore from "+from, err)
	}
	// Link, not rename: link fails when to appeared meanwhile (another
	// restore, a server started on the directory), rename would replace it.
	if err := os.Link(tmp, abs); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return 0, latch.Errorf(latch.ECONFLICT, "sqlite: restore: %s appeared while restoring: is a latch running on this data directory?", abs)
		}
		return 0, internal("restore to "+to, err)
	}
	os.Remove(tmp)
	if err := syncDir(filepath.Dir(abs)); err != nil {
		return 0, internal("restore to "+to, err)
	}
	return n, nil
}

// check opens path read-only and makes sure it is an intact latch
// database: a truncated copy, another program's database or a random file
// is refused with the reason rather than restored.
func check(ctx context.Context, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return latch.WithCause(latch.Errorf(latch.EINVALID, "sqlite: %s: %v", path, err), err)
	}
	if !fi.Mode().IsRegular() {
		return latch.Errorf(latch.EINVALID, "sqlite: %s is not a regular file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: %v", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	// mode=ro and no journal_mode pragma: checking must not turn the copy
	// into a WAL database or leave -wal and -shm files beside it.
	u := url.URL{Scheme: "file", Path: p, RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}
	conn, err := sql.Open("sqlite", u.String())
	if err != nil {
		return internal("check "+path, err)
	}
	defer conn.Close()
	var res string
	if err := conn.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return latch.WithCause(latch.Errorf(latch.EINVALID, "sqlite: %s is not a readable SQLite database: %v", path, err), err)
	}
	if res != "ok" {
		return latch.Errorf(latch.EINVALID, "sqlite: %s is damaged (quick_check: %s)", path, res)
	}
	var n int
	if err := conn.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('schema_migrations', 'revocations', 'keys')`).Scan(&n); err != nil {
		return internal("check "+path, err)
	}
	if n != 3 {
		return latch.Errorf(latch.EINVALID, "sqlite: %s is a SQLite database but not latch's", path)
	}
	return nil
}

// createEmpty creates path, empty and mode 0600, refusing an existing one.
func createEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return latch.Errorf(latch.ECONFLICT, "sqlite: backup: %s exists: name a new file (a backup never overwrites one)", path)
	}
	if err != nil {
		return latch.WithCause(latch.Errorf(latch.EINVALID, "sqlite: backup: %v", err), err)
	}
	return f.Close()
}

// syncFile flushes path and its directory entry to disk and returns its
// size: a backup that only reached the page cache is not one.
func syncFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), syncDir(filepath.Dir(path))
}

func copyFile(from, to string) (int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("copy to %s: %w", to, err)
	}
	return n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
