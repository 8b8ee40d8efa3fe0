package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/latch-auth/latch"
)

const tokenColumns = `kind, id, client_id, subject, scope, audience,
	COALESCE(family_id, ''), issued_at, expires_at, rotated_at, registration_id, jkt`

const insertToken = `INSERT INTO tokens (hash, kind, id, client_id, subject, scope,
	audience, family_id, issued_at, expires_at, rotated_at, registration_id, jkt)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

// querier is what a pool and a transaction both run statements on.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// CreateToken stores t; ECONFLICT if t.Hash exists, EINVALID if t.ClientID
// names no client. It returns after the server committed the write, in a
// batch with the tokens issued at the same time (batch.go).
func (db *DB) CreateToken(ctx context.Context, t *latch.Token) error {
	if len(t.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "postgres: create token: empty hash")
	}
	return db.queueInsert(ctx, t)
}

// execInsertToken runs insertToken on q (the pool or a transaction) and
// maps its errors.
func execInsertToken(ctx context.Context, q querier, op string, t *latch.Token) error {
	if len(t.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "postgres: %s: empty hash", op)
	}
	_, err := q.Exec(ctx, insertToken, insertArgs(t)...)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: token %s exists", op, t.ID)
	case isForeignKey(err):
		return latch.Errorf(latch.EINVALID, "postgres: %s: client %q does not exist", op, t.ClientID)
	}
	return internal(op, err)
}

// insertArgs are insertToken's arguments for t.
func insertArgs(t *latch.Token) []any {
	return []any{t.Hash, string(t.Kind), t.ID, t.ClientID, t.Subject,
		listArg(t.Scope), listArg(t.Audience), textArg(t.FamilyID), timeArg(t.IssuedAt),
		timeArg(t.ExpiresAt), timeArg(t.RotatedAt), t.RegistrationID, t.JKT}
}

// tokenScan receives a tokens row as tokenColumns lists it.
type tokenScan struct {
	t                              latch.Token
	kind                           string
	issuedAt, expiresAt, rotatedAt *time.Time
}

func (s *tokenScan) dest() []any {
	return []any{&s.kind, &s.t.ID, &s.t.ClientID, &s.t.Subject, &s.t.Scope, &s.t.Audience,
		&s.t.FamilyID, &s.issuedAt, &s.expiresAt, &s.rotatedAt, &s.t.RegistrationID, &s.t.JKT}
}

func (s *tokenScan) token(hash []byte) *latch.Token {
	t := s.t
	t.Hash = append([]byte(nil), hash...)
	t.Kind = latch.TokenKind(s.kind)
	t.IssuedAt, t.ExpiresAt, t.RotatedAt = timeOf(s.issuedAt), timeOf(s.expiresAt), timeOf(s.rotatedAt)
	t.Scope, t.Audience = listOf(t.Scope), listOf(t.Audience)
	return &t
}

// Token returns the token with hash, expired or not; ENOTFOUND if none.
func (db *DB) Token(ctx context.Context, hash []byte) (*latch.Token, error) {
	var ts tokenScan
	err := db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash).Scan(ts.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.ErrNotFound
	}
	if err != nil {
		return nil, internal("token", err)
	}
	return ts.token(hash), nil
}
