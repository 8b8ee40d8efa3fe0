package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

// CreatePushedRequest stores p; ECONFLICT if p.Hash exists, EINVALID if
// p.ClientID names no client.
func (db *DB) CreatePushedRequest(ctx context.Context, p *latch.PushedRequest) error {
	const op = "create pushed request"
	if len(p.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "postgres: %s: empty hash", op)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO pushed_requests (hash, client_id, params, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, p.Hash, p.ClientID, p.Params, timeArg(p.CreatedAt), timeArg(p.ExpiresAt))
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: request exists", op)
	case isForeignKey(err):
		return latch.Errorf(latch.EINVALID, "postgres: %s: client %q does not exist", op, p.ClientID)
	}
	return internal(op, err)
}

// PushedRequest returns the pushed request with hash; ENOTFOUND if none.
func (db *DB) PushedRequest(ctx context.Context, hash []byte) (*latch.PushedRequest, error) {
	p := latch.PushedRequest{Hash: append([]byte(nil), hash...)}
	var createdAt, expiresAt *time.Time
	err := db.pool.QueryRow(ctx, `SELECT client_id, params, created_at, expires_at
		FROM pushed_requests WHERE hash = $1`, hash).Scan(&p.ClientID, &p.Params, &createdAt, &expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: pushed request not found")
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
	const op = "use pushed request"
	tag, err := db.pool.Exec(ctx, `DELETE FROM pushed_requests WHERE hash = $1 AND expires_at > $2`, hash, now)
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = db.pool.QueryRow(ctx, `SELECT 1 FROM pushed_requests WHERE hash = $1`, hash).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return latch.Errorf(latch.ENOTFOUND, "postgres: %s: no such request (used already?)", op)
	} else if err != nil {
		return internal(op, err)
	}
	return latch.Errorf(latch.EUNAUTHORIZED, "postgres: %s: request expired", op)
}
