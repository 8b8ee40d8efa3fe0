package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/latch-auth/latch"
)

// selectIsRevoked names kind = 'jwt' so the planner can use the partial
// unique index revocations_jwt: one index point lookup.
const selectIsRevoked = `SELECT EXISTS (SELECT 1 FROM revocations
	WHERE kind = 'jwt' AND issuer = ? AND jti = ?)`

// Revoke appends r to the revocation log and sets r.Seq, in one IMMEDIATE
// transaction that, for RevokeOpaque, also deletes the token r.TokenHash.
// Revoking what is already revoked sets r.Seq to the existing entry's and
// appends nothing. EINVALID for an unknown kind or a missing key field.
func (db *DB) Revoke(ctx context.Context, r *latch.Revocation) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	var issuer, jti, hash any
	switch r.Kind {
	case latch.RevokeJWT:
		if r.Issuer == "" || r.JTI == "" {
			return latch.Errorf(latch.EINVALID, "sqlite: revoke: a jwt revocation needs issuer and jti")
		}
		issuer, jti = r.Issuer, r.JTI
	case latch.RevokeOpaque:
		if len(r.TokenHash) == 0 {
			return latch.Errorf(latch.EINVALID, "sqlite: revoke: an opaque revocation needs a token hash")
		}
		hash = r.TokenHash
	default:
		return latch.Errorf(latch.EINVALID, "sqlite: revoke: unknown kind %q", r.Kind)
	}
	var (
		seq     int64
		created bool
	)
	err := db.batch(ctx, "revoke", func(ctx context.Context, tx *sql.Tx) error {
		created = false
		if r.Kind == latch.RevokeOpaque {
			if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE hash = ?`, hash); err != nil {
				return internal("revoke", err)
			}
		}
		// DO NOTHING on either partial unique index: the entry exists.
		err := tx.QueryRowContext(ctx, `INSERT INTO revocations
			(kind, issuer, jti, token_hash, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING seq`,
			string(r.Kind), issuer, jti, hash, timeArg(r.ExpiresAt), timeArg(r.RevokedAt)).Scan(&seq)
		created = err == nil
		if err == sql.ErrNoRows {
			if r.Kind == latch.RevokeJWT {
				err = tx.QueryRowContext(ctx, `SELECT seq FROM revocations
					WHERE kind = 'jwt' AND issuer = ? AND jti = ?`, issuer, jti).Scan(&seq)
			} else {
				err = tx.QueryRowContext(ctx, `SELECT seq FROM revocations
					WHERE kind = 'opaque' AND token_hash = ?`, hash).Scan(&seq)
			}
		}
		if err != nil {
			return internal("revoke", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Seq = seq
	r.Created = created
	return nil
}

// IsRevoked reports whether the JWT (issuer, jti) is denylisted.
func (db *DB) IsRevoked(ctx context.Context, issuer, jti string) (bool, error) {
	s, err := db.ready(ctx)
	if err != nil {
		return false, err
	}
	var revoked bool
	if err := s.isRevoked.QueryRowContext(ctx, issuer, jti).Scan(&revoked); err != nil {
		return false, internal("is revoked", err)
	}
	return revoked, nil
}

// IsRevokedOpaque reports whether the log holds a RevokeOpaque entry for
// the token hash.
func (db *DB) IsRevokedOpaque(ctx context.Context, hash []byte) (bool, error) {
	if _, err := db.ready(ctx); err != nil {
		return false, err
	}
	var revoked bool
	if err := db.reader.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM revocations
		WHERE kind = 'opaque' AND token_hash = ?)`, hash).Scan(&revoked); err != nil {
		return false, internal("is revoked opaque", err)
	}
	return revoked, nil
}

// RevocationsSince returns up to limit entries with Seq > after, in Seq
// order. EINVALID if limit is not positive.
func (db *DB) RevocationsSince(ctx context.Context, after int64, limit int) ([]*latch.Revocation, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, latch.Errorf(latch.EINVALID, "sqlite: revocations since: limit %d is not positive", limit)
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT seq, kind, COALESCE(issuer, ''),
		COALESCE(jti, ''), token_hash, expires_at, revoked_at
		FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, internal("revocations since", err)
	}
	defer rows.Close()
	var rs []*latch.Revocation
	for rows.Next() {
		var (
			r                    latch.Revocation
			kind                 string
			expiresAt, revokedAt sql.NullInt64
		)
		if err := rows.Scan(&r.Seq, &kind, &r.Issuer, &r.JTI, &r.TokenHash, &expiresAt, &revokedAt); err != nil {
			return nil, internal("revocations since", err)
		}
		r.Kind = latch.RevocationKind(kind)
		r.TokenHash = bytesOf(r.TokenHash)
		r.ExpiresAt, r.RevokedAt = timeOf(expiresAt), timeOf(revokedAt)
		rs = append(rs, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("revocations since", err)
	}
	return rs, nil
}

// appendOpaqueRevocations appends to the log, in tx, a RevokeOpaque entry
// revoked at now for each token that where selects and that is unexpired at
// now (a token that can no longer be used needs no entry), keeping entries
// that exist. where is a condition on tokens whose placeholders are written
// "?" and take args; ?1 is now. The caller deletes the tokens.
func appendOpaqueRevocations(ctx context.Context, tx *sql.Tx, op string, now time.Time, where string, args ...any) error {
	// ORDER BY: the entries get their seqs in a deterministic order.
	_, err := tx.ExecContext(ctx, `INSERT INTO revocations (kind, token_hash, expires_at, revoked_at)
		SELECT 'opaque', hash, expires_at, ?1 FROM tokens WHERE expires_at > ?1 AND (`+where+`)
		ORDER BY hash ON CONFLICT DO NOTHING`, append([]any{timeArg(now)}, args...)...)
	if err != nil {
		return internal(op, err)
	}
	return nil
}

// appendJWTRevocations appends to the log, in tx, a RevokeJWT entry revoked
// at now for each family_jwts row that where selects and that is unexpired
// at now, keeping entries that exist. A row without an expiry is denylisted
// (with none: the entry is never purged) rather than forgotten. where is a
// condition on family_jwts, as for appendOpaqueRevocations.
func appendJWTRevocations(ctx context.Context, tx *sql.Tx, op string, now time.Time, where string, args ...any) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO revocations (kind, issuer, jti, expires_at, revoked_at)
		SELECT 'jwt', issuer, jti, expires_at, ?1 FROM family_jwts
		WHERE (expires_at > ?1 OR expires_at IS NULL) AND (`+where+`)
		ORDER BY issuer, jti ON CONFLICT DO NOTHING`, append([]any{timeArg(now)}, args...)...)
	if err != nil {
		return internal(op, err)
	}
	return nil
}
