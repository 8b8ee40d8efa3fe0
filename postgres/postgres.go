// Package postgres implements latch.Store on PostgreSQL, through
// github.com/jackc/pgx/v5 and its connection pool (pgxpool). It is the
// backend for deployments that run more than one latch process, or that
// already operate PostgreSQL.
//
// It owns the SQL schema and its migrations (embedded, one file per
// version, applied by Open), the connection pool, and the mapping of
// PostgreSQL errors to latch errors. It does not own the records' meaning:
// that is package latch, and the contract every backend meets is
// storetest.Run.
//
// # Opening
//
// Open(ctx, url) takes a PostgreSQL URL or keyword/value connection string
// as pgx understands it, e.g.
//
//	postgres://latch@db.example:5432/latch?sslmode=verify-full
//
// connects, and brings the schema up to date before it returns. Query
// parameters pgx does not know are sent as run-time parameters, so
// &search_path=latch puts the tables in schema latch, and pgxpool's own
// parameters size the pool (&pool_max_conns=16; the default is four or the
// number of CPUs, whichever is more). Several processes may
// open one database at once: each migration runs in a transaction that
// first takes a transaction-scoped advisory lock, so they apply it once,
// one after the other.
//
// # Transactions
//
// Every method that reads and then writes (RedeemCode, RotateRefresh,
// RevokeFamily, RevokeFamilies, CreateFamily, DeleteClient, DeleteUser,
// Revoke) runs in one READ COMMITTED transaction that locks the rows it
// decides on (SELECT ... FOR UPDATE), always a family before its tokens, so
// two rotations of one refresh token, or two redemptions of one code, are
// serialized: the second sees what the first committed. A transaction that
// fails with a serialization failure or a deadlock (SQLSTATE 40001, 40P01)
// is retried a few times before the error reaches the caller.
//
// # Encoding
//
//   - times: timestamptz, which keeps microseconds; NULL is the zero
//     time.Time. Times are read back in UTC.
//   - durations: bigint nanoseconds.
//   - string lists (scopes, audiences, grant types, redirect URIs, roles,
//     groups): text[]; an empty or nil list is stored as {} and read back
//     as nil.
//   - hashes and keys: bytea; an empty slice is stored as NULL and read
//     back as nil.
//
// # Errors
//
// Every error is a *latch.Error (errors.As finds it): ENOTFOUND for a
// missing record, ECONFLICT for a duplicate key (SQLSTATE 23505), EINVALID
// for input the schema refuses (a token for an unknown client, a session
// for an unknown user: SQLSTATE 23503; a username latch.NormalizeUsername
// refuses, a revocation without its key fields, a non-positive limit),
// EUNAUTHORIZED for an expired or revoked authorization code or refresh
// token, ECONFLICT with latch.ErrReused for a reused one, and EINTERNAL
// ("postgres: <op>: <cause>") for the rest, or EUNAVAILABLE when the
// server cannot be reached, is shutting down or out of connections. Driver and context errors stay
// in the chain: errors.Is(err, context.Canceled) works.
//
// # Tests
//
// The package's tests run the conformance suite storetest.Run against a
// real server when LATCH_TEST_POSTGRES holds a URL, e.g.
//
//	LATCH_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./postgres/
//
// and skip, saying so, when it is unset. Each test gets a fresh schema
// (latch_test_<random>), dropped when the test ends.
//
// A DB is safe for concurrent use.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/latch-auth/latch"
)

// DB is a latch.Store backed by a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	ins  *inserterPool // batch.go
}

var _ latch.Store = (*DB)(nil)

// Open connects to the database at url (a PostgreSQL URL or keyword/value
// string, as pgx parses it), applies the migrations it lacks, and returns
// the store. EINVALID for a malformed url or one whose role, password or
// database the server refuses; EUNAVAILABLE if the server does not answer,
// or if the schema is newer than this latch.
// Close the DB when done.
func Open(ctx context.Context, url string) (*DB, error) {
	pool, err := connect(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.startInserters()
	return db, nil
}

// Close stops the token inserters after their batches in flight, then
// closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() error {
	db.stopInserters()
	db.pool.Close()
	return nil
}

// Ping checks that the server answers; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return internal("ping", err)
	}
	return nil
}

// internal wraps a driver error, kept in the chain, as "postgres: <op>:
// <cause>": EUNAVAILABLE when the server cannot be reached or is refusing
// work for now (retrying later may work), EINTERNAL otherwise.
func internal(op string, err error) error {
	code := latch.EINTERNAL
	if unavailable(err) {
		code = latch.EUNAVAILABLE
	}
	return latch.WithCause(latch.Errorf(code, "postgres: %s: %v", op, err), err)
}

// unavailable reports whether err says the server is down, starting up,
// shutting down or out of connections, rather than that the request failed.
func unavailable(err error) bool {
	if s := sqlState(err); s != "" {
		return strings.HasPrefix(s, "08") || // connection exception
			s == "53300" || // too_many_connections
			s == "57P01" || s == "57P02" || s == "57P03" // admin or crash shutdown, cannot connect now
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) { // no answer at all: refused, unreachable, timed out
		return true
	}
	// The connection broke mid-statement (a dropped network path, the
	// server killed) or the statement timed out: the outcome is unknown
	// to us, and retrying (every write of latch is idempotent or fails
	// cleanly on its unique key) is the answer.
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || pgconn.Timeout(err)
}

// refusal says why a server that answered refused the connection, once
// and in the terms of the URL: pgx's own message repeats the address and
// wraps the server's.
func refusal(cc *pgx.ConnConfig, err error) string {
	var pe *pgconn.PgError
	errors.As(err, &pe)
	at := fmt.Sprintf("%s:%d", cc.Host, cc.Port)
	switch pe.Code {
	case "3D000": // invalid_catalog_name
		return fmt.Sprintf("database %q does not exist on %s: create it (createdb %s, or CREATE DATABASE) or fix the database name in the URL", cc.Database, at, cc.Database)
	case "28000", "28P01": // invalid_authorization_specification, invalid_password
		return fmt.Sprintf("%s refused role %q: %s; check the role and password in the URL", at, cc.User, pe.Message)
	}
	return fmt.Sprintf("%s refused the connection: %s (SQLSTATE %s); check the role, password and database in the URL", at, pe.Message, pe.Code)
}

// sqlState returns err's SQLSTATE, "" if it is not a server error.
func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// constraint returns the name of the constraint err violated, if any.
func constraint(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.ConstraintName
	}
	return ""
}

func isUnique(err error) bool     { return sqlState(err) == "23505" }
func isForeignKey(err error) bool { return sqlState(err) == "23503" }

// retryable reports whether a transaction failed only because of a
// concurrent one, so that running it again may succeed.
func retryable(err error) bool {
	s := sqlState(err)
	return s == "40001" || s == "40P01"
}

// txAttempts bounds the retries of a transaction that keeps losing a
// deadlock or serialization race.
const txAttempts = 5

// withTx runs fn in a READ COMMITTED transaction and commits it, running it
// again (fn must reset what it sets outside the transaction) when it fails
// with a serialization failure or a deadlock.
func (db *DB) withTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	var err error
	for attempt := range txAttempts {
		if attempt > 0 {
			// Short, growing pause: let the winner of the race commit.
			select {
			case <-ctx.Done():
				return internal(op, ctx.Err())
			case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
			}
		}
		err = db.tryTx(ctx, op, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return internal(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return internal(op, err)
	}
	return nil
}

// affectedOne turns the result of an UPDATE or DELETE by primary key into
// nil, ENOTFOUND, or an internal error.
func affectedOne(tag pgconn.CommandTag, err error, op, what, id string) error {
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 0 {
		return latch.Errorf(latch.ENOTFOUND, "postgres: %s: %s %q not found", op, what, id)
	}
	return nil
}

// timeArg encodes t for a timestamptz column, NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeOf decodes what timeArg stored, in UTC.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// listArg encodes a string list for a text[] column, {} when empty.
func listArg(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// listOf reads {} back as nil.
func listOf(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// bytesArg stores an empty slice as NULL.
func bytesArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// bytesOf reads NULL or an empty bytea back as nil.
func bytesOf(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// textArg stores "" as NULL, for the optional text columns.
func textArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// connect parses url, lets adjust change the pool's configuration, and
// pings the server, so that a wrong URL, a refusal and an unreachable
// server each get their own error before anything else runs.
func connect(ctx context.Context, url string, adjust func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: say only
		// that it did not parse.
		return nil, latch.Errorf(latch.EINVALID, "postgres: open: the connection string does not parse as a PostgreSQL URL or keyword/value string")
	}
	if adjust != nil {
		adjust(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, internal("open", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if sqlState(err) != "" && !unavailable(err) {
			// The server answered and refused: the URL's role, password
			// or database is wrong.
			return nil, latch.WithCause(latch.Errorf(latch.EINVALID, "postgres: open: %s", refusal(cfg.ConnConfig, err)), err)
		}
		return nil, latch.WithCause(latch.Errorf(latch.EUNAVAILABLE, "postgres: open: cannot reach %s:%d: %v",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, err), err)
	}
	return pool, nil
}
