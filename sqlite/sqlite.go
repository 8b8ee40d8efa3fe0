// Package sqlite implements latch.Store on one SQLite file, through the pure
// Go driver modernc.org/sqlite (no cgo). It is the embedded default backend:
// `latch serve --dev` needs nothing else.
//
// It owns the SQL schema and its migrations (embedded, applied by Migrate,
// i.e. `latch migrate`), the connection settings, and the mapping of driver
// errors to latch errors. It does not own the records' meaning: that is
// package latch, and the contract every backend meets is storetest.Run.
//
// # Connections
//
// A DB holds two pools on the same file: one writer connection
// (MaxOpenConns 1, BEGIN IMMEDIATE), so writers in this process queue in Go
// instead of failing with SQLITE_BUSY, and a pool of reader connections that
// never wait for it (WAL). Every connection runs with journal_mode=WAL,
// synchronous=FULL (a write acknowledged by a nil error survives a power
// loss, security invariant 10), foreign_keys=ON and busy_timeout=5s, because
// the CLI writes to the same file while a server runs. Readers are
// query_only.
//
// # Encoding
//
//   - times: INTEGER unix microseconds, UTC; NULL is the zero time.Time.
//     Microseconds, not nanoseconds, because they cover years 1 to 9999
//     (nanoseconds end in 2262) and match PostgreSQL's timestamp precision,
//     so both backends round-trip the same values. Times are read back in UTC.
//   - durations: INTEGER nanoseconds.
//   - string lists (scopes, audiences, grant types, redirect URIs): TEXT
//     holding a JSON array; an empty or nil list is stored as [] and read
//     back as nil.
//   - hashes and keys: BLOB; an empty slice is read back as nil.
//   - booleans: INTEGER 0 or 1.
//
// Sub-microsecond parts of times are dropped.
//
// # Errors
//
// Every error is a *latch.Error (errors.As finds it): ENOTFOUND for a
// missing record, ECONFLICT for a duplicate key, EINVALID for input the
// schema refuses (a token for an unknown client, a session for an unknown
// user, a username latch.NormalizeUsername refuses, a revocation without
// its key fields, a non-positive limit), EUNAUTHORIZED for an expired or
// revoked authorization code or refresh token, ECONFLICT with
// latch.ErrReused for a reused one, EUNAVAILABLE while the schema is not
// current or another process holds the write lock past busy_timeout, and
// EINTERNAL ("sqlite: <op>: <cause>") for the rest. Driver and context
// errors stay in the chain: errors.Is(err, context.Canceled) works.
//
// A DB is safe for concurrent use.
package sqlite

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
	"sync"
	"sync/atomic"

	"github.com/latch-auth/latch"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeoutMS is how long a connection waits for another process's write
// lock (the CLI, a second server, Migrate) before failing with EUNAVAILABLE.
const busyTimeoutMS = 5000

// DB is a latch.Store backed by one SQLite file.
type DB struct {
	path   string
	writer *sql.DB // one connection: writes are serialized here, not by SQLITE_BUSY
	reader *sql.DB // query_only connections; WAL lets them run beside the writer

	// stmts is nil until the schema is known to be current; then it holds
	// the prepared hot-path statements. One atomic load on every call is the
	// whole cost of the "did you run latch migrate" check.
	stmts  atomic.Pointer[statements]
	initMu sync.Mutex

	// The group committer (batch.go).
	writes        chan *write
	closing       chan struct{}
	closeOnce     sync.Once
	committerDone chan struct{}
	stats         batchStats
	syncer        *walSyncer // nil at synchronous=NORMAL (walsync.go)
	// batchLen is the number of writes in the transaction being built;
	// only the committer goroutine and the writes it runs touch it.
	batchLen int

	// The checkpointer (checkpoint.go); sinceCheckpoint belongs to the
	// committer goroutine.
	checkpointer     *sql.DB
	sinceRestart     int         // writes since the committer's last checkpoint (restartWAL)
	copied           atomic.Bool // the checkpointer copied the WAL since restartWAL last looked
	kick             chan struct{}
	checkpointerDone chan struct{}
	sinceCheckpoint  int
}

var _ latch.Store = (*DB)(nil)

// statements are prepared once per DB; database/sql re-prepares them per
// connection as needed.
type statements struct {
	token       *sql.Stmt // reader
	isRevoked   *sql.Stmt // reader
	client      *sql.Stmt // reader
	family      *sql.Stmt // reader: every refresh grant reads its family first
	createToken *sql.Stmt // writer
	// The group committer's savepoint around each write (batch.go).
	savepoint, rollbackTo, release *sql.Stmt // writer

	// Login sessions: Session on every request of a logged-in browser,
	// TouchSession on many of them.
	session       *sql.Stmt // reader
	user          *sql.Stmt // reader
	userByName    *sql.Stmt // reader
	userByEmail   *sql.Stmt // reader
	createSession *sql.Stmt // writer
	touchSession  *sql.Stmt // writer

	// Grants: the authorization code and refresh token grants, used in
	// transactions (tx.StmtContext) on the writer.
	redeemCode      *sql.Stmt // writer: selectCode, under the write lock
	useCode         *sql.Stmt // writer
	insertFamily    *sql.Stmt // writer
	selectRefresh   *sql.Stmt // writer: read under the write lock
	refreshChain    *sql.Stmt // reader: the refresh grant's checks, before its write
	rotateToken     *sql.Stmt // writer
	insertFamilyJWT *sql.Stmt // writer
}

// options are the connection settings Open does not let callers change;
// tests use them to measure the cost of synchronous=FULL.
type options struct {
	synchronous string // FULL or NORMAL
	// syncInCommit keeps the fsync inside each batch's COMMIT at FULL
	// instead of the syncer's (walsync.go), for the benchmark that
	// compares the two.
	syncInCommit bool
}

// Open opens the database file at path, creating it (mode 0600) and its
// parent directory (mode 0700) if missing. It does not migrate: run Migrate
// (`latch migrate`) first; until then every store method fails with an error
// that says so. Close the DB when done.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, options{synchronous: "FULL"})
}

func open(ctx context.Context, path string, o options) (*DB, error) {
	if path == "" {
		return nil, latch.Errorf(latch.EINVALID, "sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, internal("open "+path, err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, internal("open "+path, err)
	}

	db := &DB{path: abs}
	// The writer is opened first: it switches the file to WAL, which is
	// persistent, before any query_only reader connects.
	if db.writer, err = sql.Open("sqlite", dsn(abs, o, false)); err != nil {
		return nil, internal("open "+path, err)
	}
	keepConns(db.writer, 1)
	if err := db.writer.PingContext(ctx); err != nil {
		db.writer.Close()
		return nil, internal("open "+path, err)
	}

	if db.reader, err = sql.Open("sqlite", dsn(abs, o, true)); err != nil {
		db.writer.Close()
		return nil, internal("open "+path, err)
	}
	keepConns(db.reader, readerConns())
	if err := db.reader.PingContext(ctx); err != nil {
		db.Close()
		return nil, internal("open "+path, err)
	}
	if o.synchronous == "FULL" && !o.syncInCommit {
		db.startSyncer()
	}
	db.startCommitter()
	if err := db.startCheckpointer(ctx, abs, o); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// createPrivate creates the database file at abs and its directory if
// missing, readable by the owner only. SQLite would create the file 0644,
// and latch's files hold sealed keys, token hashes or sealed tokens; SQLite
// gives the -wal and -shm files the same mode as the database file.
func createPrivate(abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// keepConns makes db hold n connections and never close them: the writer
// is one connection (writes queue in Go, not on SQLITE_BUSY), the readers
// a pool of readerConns.
func keepConns(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

func readerConns() int { return max(4, runtime.GOMAXPROCS(0)) }

// dsn builds the modernc.org/sqlite connection string of the server's
// database.
func dsn(path string, o options, readOnly bool) string {
	q := basePragmas(o.synchronous, readOnly)
	q.Add("_pragma", "foreign_keys(1)")
	if !readOnly {
		// Group commit runs each write in a SAVEPOINT, and SQLite copies
		// every page a savepoint first changes to a statement journal, a
		// temporary file by default: pwrite calls on the write path that
		// only serve a rollback. In memory they cost a copy. Durability
		// does not depend on it: the WAL is unchanged.
		q.Add("_pragma", "temp_store(MEMORY)")
		// checkpoint.go runs the checkpoints, off the commit path.
		q.Add("_pragma", "wal_autocheckpoint(0)")
		// A WAL rewound to its start keeps the file's size; a burst
		// that grew it past this is truncated back at the next rewind.
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	}
	return fileDSN(path, q)
}

// basePragmas are the settings of every SQLite file latch opens: WAL,
// the given synchronous level, and a writer that takes its lock at BEGIN
// (writes queue, never fail on SQLITE_BUSY) or a query-only reader.
// busy_timeout comes first so that switching to WAL waits for a
// concurrent opener.
func basePragmas(synchronous string, readOnly bool) url.Values {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	return q
}

// fileDSN is the modernc.org/sqlite file: URL of path with query q.
func fileDSN(path string, q url.Values) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") { // Windows: file:///C:/...
		p = "/" + p
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	db.closeOnce.Do(db.stopCommitter)
	var errs []error
	if s := db.stmts.Swap(nil); s != nil {
		s.close()
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	if db.checkpointer != nil {
		<-db.checkpointerDone
		errs = append(errs, db.checkpointer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return internal("close", err)
	}
	return nil
}

// Ping checks that the file answers and that its schema is current, so
// /readyz fails until `latch migrate` has run.
func (db *DB) Ping(ctx context.Context) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	if err := db.reader.PingContext(ctx); err != nil {
		return internal("ping", err)
	}
	return nil
}

// ready returns the prepared statements, checking the schema version on the
// first call (and on every call until it is current: another process may
// run `latch migrate` while this one waits).
func (db *DB) ready(ctx context.Context) (*statements, error) {
	if s := db.stmts.Load(); s != nil {
		return s, nil
	}
	db.initMu.Lock()
	defer db.initMu.Unlock()
	if s := db.stmts.Load(); s != nil {
		return s, nil
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(db.path, v); err != nil {
		return nil, err
	}
	s, err := db.prepare(ctx)
	if err != nil {
		return nil, err
	}
	db.stmts.Store(s)
	return s, nil
}

func checkVersion(path string, v int) error {
	latest := latestVersion()
	switch {
	case v < latest:
		return latch.Errorf(latch.EUNAVAILABLE,
			"sqlite: %s is at schema version %d, this latch needs %d: run `latch migrate`", path, v, latest)
	case v > latest:
		return latch.Errorf(latch.EUNAVAILABLE,
			"sqlite: %s is at schema version %d, newer than this latch knows (%d): upgrade latch", path, v, latest)
	}
	return nil
}

func (db *DB) prepare(ctx context.Context) (_ *statements, err error) {
	s := &statements{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, p := range []struct {
		dst  **sql.Stmt
		pool *sql.DB
		q    string
	}{
		{&s.token, db.reader, selectToken},
		{&s.isRevoked, db.reader, selectIsRevoked},
		{&s.client, db.reader, selectClient},
		{&s.family, db.reader, selectFamily},
		{&s.refreshChain, db.reader, selectRefreshChain},
		{&s.createToken, db.writer, insertToken},
		{&s.savepoint, db.writer, "SAVEPOINT w"},
		{&s.rollbackTo, db.writer, "ROLLBACK TO w"},
		{&s.release, db.writer, "RELEASE w"},
		{&s.session, db.reader, selectSession},
		{&s.user, db.reader, selectUser},
		{&s.userByName, db.reader, selectUserByName},
		{&s.userByEmail, db.reader, selectUserByEmail},
		{&s.createSession, db.writer, insertSession},
		{&s.touchSession, db.writer, touchSession},
		{&s.redeemCode, db.writer, selectCode},
		{&s.useCode, db.writer, useCode},
		{&s.insertFamily, db.writer, insertFamily},
		{&s.selectRefresh, db.writer, selectRefresh},
		{&s.rotateToken, db.writer, rotateToken},
		{&s.insertFamilyJWT, db.writer, insertFamilyJWT},
	} {
		if *p.dst, err = p.pool.PrepareContext(ctx, p.q); err != nil {
			return nil, internal("prepare", err)
		}
	}
	return s, nil
}

func (s *statements) close() {
	for _, st := range []*sql.Stmt{s.token, s.isRevoked, s.client, s.family, s.refreshChain, s.createToken, s.savepoint, s.rollbackTo, s.release,
		s.session, s.user, s.userByName, s.userByEmail, s.createSession, s.touchSession,
		s.redeemCode, s.useCode, s.insertFamily, s.selectRefresh, s.rotateToken, s.insertFamilyJWT} {
		if st != nil {
			st.Close()
		}
	}
}

// internal wraps a driver error, kept in the chain, as "sqlite: <op>:
// <cause>": EUNAVAILABLE for a lock held too long by another process,
// EINTERNAL otherwise.
func internal(op string, err error) error {
	code := latch.EINTERNAL
	if isCode(err, sqlite3.SQLITE_BUSY) {
		code = latch.EUNAVAILABLE
	}
	return latch.WithCause(latch.Errorf(code, "sqlite: %s: %v", op, err), err)
}

// isCode reports whether err is a SQLite error with the given primary result
// code (extended result codes are on; the low byte is the primary code).
func isCode(err error, primary int) bool {
	var e *sqlitedrv.Error
	return errors.As(err, &e) && e.Code()&0xff == primary
}

// isExtCode reports whether err is a SQLite error with the given extended code.
func isExtCode(err error, ext int) bool {
	var e *sqlitedrv.Error
	return errors.As(err, &e) && e.Code() == ext
}

func isUnique(err error) bool {
	return isExtCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) ||
		isExtCode(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// withTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (db *DB) withTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		db.rollbackAfterFailedCommit()
		return internal(op, err)
	}
	return nil
}
