package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

// Revoke appends r to the revocation log and sets r.Seq, in one
// transaction that, for RevokeOpaque, also deletes the token r.TokenHash.
// Revoking what is already revoked sets r.Seq to the existing entry's and
// appends nothing; of concurrent calls for one entry, the unique index
// makes all but one wait for the first to commit and then insert nothing,
// so exactly one sees r.Created true. EINVALID for an unknown kind or a
// missing key field.
func (db *DB) Revoke(ctx context.Context, r *latch.Revocation) error {
	var issuer, jti, hash any
	switch r.Kind {
	case latch.RevokeJWT:
		if r.Issuer == "" || r.JTI == "" {
			return latch.Errorf(latch.EINVALID, "postgres: revoke: a jwt revocation needs issuer and jti")
		}
		issuer, jti = r.Issuer, r.JTI
	case latch.RevokeOpaque:
		if len(r.TokenHash) == 0 {
			return latch.Errorf(latch.EINVALID, "postgres: revoke: an opaque revocation needs a token hash")
		}
		hash = r.TokenHash
	default:
		return latch.Errorf(latch.EINVALID, "postgres: revoke: unknown kind %q", r.Kind)
	}
	var (
		seq     int64
		created bool
	)
	err := db.withTx(ctx, "revoke", func(tx pgx.Tx) error {
		created = false
		// The log lock before the token's row lock, as everywhere.
		if err := lockLog(ctx, tx, "revoke"); err != nil {
			return err
		}
		if r.Kind == latch.RevokeOpaque {
			if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE hash = $1`, hash); err != nil {
				return internal("revoke", err)
			}
		}
		// DO NOTHING on either partial unique index: the entry exists.
		err := tx.QueryRow(ctx, `INSERT INTO revocations
			(kind, issuer, jti, token_hash, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT DO NOTHING RETURNING seq`,
			string(r.Kind), issuer, jti, hash, timeArg(r.ExpiresAt), timeArg(r.RevokedAt)).Scan(&seq)
		created = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			// A new statement, so a new snapshot: it sees the entry the
			// conflicting transaction committed.
			if r.Kind == latch.RevokeJWT {
				err = tx.QueryRow(ctx, `SELECT seq FROM revocations
					WHERE kind = 'jwt' AND issuer = $1 AND jti = $2`, issuer, jti).Scan(&seq)
			} else {
				err = tx.QueryRow(ctx, `SELECT seq FROM revocations
					WHERE kind = 'opaque' AND token_hash = $1`, hash).Scan(&seq)
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
	var revoked bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revocations
		WHERE kind = 'jwt' AND issuer = $1 AND jti = $2)`, issuer, jti).Scan(&revoked); err != nil {
		return false, internal("is revoked", err)
	}
	return revoked, nil
}

// IsRevokedOpaque reports whether the log holds a RevokeOpaque entry for
// the token hash.
func (db *DB) IsRevokedOpaque(ctx context.Context, hash []byte) (bool, error) {
	var revoked bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revocations
		WHERE kind = 'opaque' AND token_hash = $1)`, hash).Scan(&revoked); err != nil {
		return false, internal("is revoked opaque", err)
	}
	return revoked, nil
}

// RevocationsSince returns up to limit entries with Seq > after, in Seq
// order. EINVALID if limit is not positive. Entries become visible in Seq
// order (see lockLog), so a follower whose cursor is the highest Seq it
// has seen never skips one.
func (db *DB) RevocationsSince(ctx context.Context, after int64, limit int) ([]*latch.Revocation, error) {
	if limit <= 0 {
		return nil, latch.Errorf(latch.EINVALID, "postgres: revocations since: limit %d is not positive", limit)
	}
	rows, err := db.pool.Query(ctx, `SELECT seq, kind, COALESCE(issuer, ''),
		COALESCE(jti, ''), token_hash, expires_at, revoked_at
		FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, internal("revocations since", err)
	}
	defer rows.Close()
	var rs []*latch.Revocation
	for rows.Next() {
		var (
			r                    latch.Revocation
			kind                 string
			expiresAt, revokedAt *time.Time
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
// that exist. where is a condition on tokens whose one placeholder is $2,
// for arg ($1 is now). The caller deletes the tokens.
func appendOpaqueRevocations(ctx context.Context, tx pgx.Tx, op string, now time.Time, where string, arg any) error {
	if err := lockLog(ctx, tx, op); err != nil {
		return err
	}
	// ORDER BY: the entries get their seqs in a deterministic order.
	_, err := tx.Exec(ctx, `INSERT INTO revocations (kind, token_hash, expires_at, revoked_at)
		SELECT 'opaque', hash, expires_at, $1::timestamptz FROM tokens
		WHERE expires_at > $1::timestamptz AND (`+where+`)
		ORDER BY hash ON CONFLICT DO NOTHING`, now, arg)
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
func appendJWTRevocations(ctx context.Context, tx pgx.Tx, op string, now time.Time, where string, arg any) error {
	if err := lockLog(ctx, tx, op); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO revocations (kind, issuer, jti, expires_at, revoked_at)
		SELECT 'jwt', issuer, jti, expires_at, $1::timestamptz FROM family_jwts
		WHERE (expires_at > $1::timestamptz OR expires_at IS NULL) AND (`+where+`)
		ORDER BY issuer COLLATE "C", jti COLLATE "C" ON CONFLICT DO NOTHING`, now, arg)
	if err != nil {
		return internal(op, err)
	}
	return nil
}

// logLock is the key of the transaction-scoped advisory lock that
// transactions appending to the revocation log hold from before they draw
// a seq until they commit.
const logLock = 0x6c6f67 // "log"

// lockLog takes the log lock in tx. A sequence hands out values in the
// order transactions draw them, not the order they commit: without the
// lock an entry with a lower Seq could become visible after one with a
// higher Seq, and a follower polling RevocationsSince from the higher one
// would never see it. With it, appends commit one at a time in Seq order,
// as they do in the SQLite store's single writer. Appends are short (one
// row, or one family's tokens), so the queue is too.
//
// Lock order, in every transaction: authorization codes, then the client
// or user row, then families (in ID order), then this lock, then token
// rows. A rotation that inserts a token holds its family and takes a
// key-share lock on the client, so it can still deadlock with a
// DeleteClient of that client; PostgreSQL breaks the deadlock and withTx
// retries the loser.
func lockLog(ctx context.Context, tx pgx.Tx, op string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(logLock)); err != nil {
		return internal(op, err)
	}
	return nil
}
