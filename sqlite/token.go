package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latch-auth/latch"
	sqlite3 "modernc.org/sqlite/lib"
)

const selectToken = `SELECT kind, id, client_id, subject, scope, audience,
	COALESCE(family_id, ''), issued_at, expires_at, rotated_at, registration_id, jkt FROM tokens WHERE hash = ?`

const insertToken = `INSERT INTO tokens (hash, kind, id, client_id, subject, scope,
	audience, family_id, issued_at, expires_at, rotated_at, registration_id, jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateToken stores t; ECONFLICT if t.Hash exists, EINVALID if t.ClientID
// names no client. It returns after the write is synced to disk, by the
// commit of a batch of concurrent writes (batch.go).
func (db *DB) CreateToken(ctx context.Context, t *latch.Token) error {
	s, err := db.ready(ctx)
	if err != nil {
		return err
	}
	if len(t.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "sqlite: create token: empty hash")
	}
	return db.batch(ctx, "create token", func(ctx context.Context, tx *sql.Tx) error {
		return execInsertToken(ctx, tx.StmtContext(ctx, s.createToken), "create token", t)
	})
}

// execInsertToken runs insertToken, prepared as st (on the writer or in a
// transaction), and maps its errors.
func execInsertToken(ctx context.Context, st *sql.Stmt, op string, t *latch.Token) error {
	if len(t.Hash) == 0 {
		return latch.Errorf(latch.EINVALID, "sqlite: %s: empty hash", op)
	}
	var family any
	if t.FamilyID != "" {
		family = t.FamilyID
	}
	_, err := st.ExecContext(ctx, t.Hash, string(t.Kind), t.ID, t.ClientID, t.Subject,
		listArg(t.Scope), listArg(t.Audience), family, timeArg(t.IssuedAt), timeArg(t.ExpiresAt),
		timeArg(t.RotatedAt), t.RegistrationID, t.JKT)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return latch.Errorf(latch.ECONFLICT, "sqlite: %s: token %s exists", op, t.ID)
	case isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return latch.Errorf(latch.EINVALID, "sqlite: %s: client %q does not exist", op, t.ClientID)
	}
	return internal(op, err)
}

// Token returns the token with hash, expired or not; ENOTFOUND if none.
func (db *DB) Token(ctx context.Context, hash []byte) (*latch.Token, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return nil, err
	}
	var (
		t                              latch.Token
		kind, scope, aud               string
		issuedAt, expiresAt, rotatedAt sql.NullInt64
	)
	err = s.token.QueryRowContext(ctx, hash).Scan(&kind, &t.ID, &t.ClientID, &t.Subject,
		&scope, &aud, &t.FamilyID, &issuedAt, &expiresAt, &rotatedAt, &t.RegistrationID, &t.JKT)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.ErrNotFound
	}
	if err != nil {
		return nil, internal("token", err)
	}
	t.Hash = append([]byte(nil), hash...)
	t.Kind = latch.TokenKind(kind)
	t.IssuedAt, t.ExpiresAt, t.RotatedAt = timeOf(issuedAt), timeOf(expiresAt), timeOf(rotatedAt)
	if t.Scope, err = listOf(scope); err != nil {
		return nil, internal("token", err)
	}
	if t.Audience, err = listOf(aud); err != nil {
		return nil, internal("token", err)
	}
	return &t, nil
}
