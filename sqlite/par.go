package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latch-auth/latch"
	sqlite3 "modernc.org/sqlite/lib"
)

// CreatePushedRequest stores p; ECONFLICT if p.Hash exists, EINVALID if
// p.ClientID names no client.
func (db *DB) CreatePushedRequest(ctx context.Context, p *latch.PushedRequest) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	const op = "create pushed request"
	if len(p.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: empty hash", op)
	}
	_, err := db.writer.ExecContext(ctx, `INSERT INTO pushed_requests (hash, client_id, params, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, p.Hash, p.ClientID, p.Params, timeArg(p.CreatedAt), timeArg(p.ExpiresAt))
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "sqlite: %s: request exists", op)
	case isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return latch.Errorf(latch.EINVALID, "sqlite: %s: client %q does not exist", op, p.ClientID)
	}
	return internal(op, err)
}

// PushedRequest returns the pushed request with hash; ENOTFOUND if none.
func (db *DB) PushedRequest(ctx context.Context, hash []byte) (*latch.PushedRequest, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	p := latch.PushedRequest{Hash: append([]byte(nil), hash...)}
	var createdAt, expiresAt sql.NullInt64
	err := db.reader.QueryRowContext(ctx, `SELECT client_id, params, created_at, expires_at
		FROM pushed_requests WHERE hash = ?`, hash).Scan(&p.ClientID, &p.Params, &createdAt, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: pushed request not found")
	}
	if err != nil {
		return nil, internal("pushed request", err)
	}
	p.CreatedAt, p.ExpiresAt = timeOf(createdAt), timeOf(expiresAt)
	return &p, nil
}

// UsePushedRequest deletes the pushed request with hash unless it expired
// at now: ENOTFOUND if none, EUNAUTHORIZED if expired (it is then left
// for the purge). One DELETE decides, so of concurrent calls one wins.
func (db *DB) UsePushedRequest(ctx context.Context, hash []byte, now time.Time) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	const op = "use pushed request"
	res, err := db.writer.ExecContext(ctx, `DELETE FROM pushed_requests WHERE hash = ? AND expires_at > ?`, hash, now.UnixMicro())
	n, err := affected(res, err, op)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var one int
	err = db.writer.QueryRowContext(ctx, `SELECT 1 FROM pushed_requests WHERE hash = ?`, hash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: no such request (used already?)", op)
	} else if err != nil {
		return internal(op, err)
	}
	return latch.Errorf(latch.EUNAUTHORIZED, "sqlite: %s: request expired", op)
}
