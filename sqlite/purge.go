package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// purgeChunk is how many rows one purge step deletes. The step rides in a
// group-commit transaction beside the writes queued with it (batch.go),
// so its cost lands on their latency: expired rows leave in expiry order,
// their hashes are random, and each deleted row dirties a page of the
// primary key and of every index, written and fsynced at COMMIT. A
// 64-row step delays the batch that carries it by a fraction of what a
// 1,000-row statement with its own commit held the writer for; 16-row
// steps were tried and purged at a third of the rate with no better p99
// (BENCHMARKS.md, "Purge of expired rows beside writers").
const purgeChunk = 64

// PurgeExpired deletes tokens whose ExpiresAt is before now (or unset: such
// a token is never active), revocation entries whose ExpiresAt is before
// now, sessions whose ExpiresAt or IdleExpiresAt is before now (or
// unset), authorization codes and refresh families whose ExpiresAt is
// before now (or unset), and IssuedJWT records whose ExpiresAt is before
// now, and returns how many rows it removed. A family's tokens are not
// purged with it: no token of a family outlives it, so they are gone by
// their own ExpiresAt. A revocation without ExpiresAt
// is kept: a denylist entry must not lapse by accident.
//
// It deletes in steps of purgeChunk rows, each one write of the group
// committer, so a purge never holds the writer connection on its own and
// adds no fsync of its own while writers are busy. After a step that
// shared its transaction with other writes, it pauses as long as the step
// took, so that the next transaction is theirs alone: the purge takes at
// most about half of a busy writer. On error the count covers the steps
// already committed.
func (db *DB) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	if _, err := db.ready(ctx); err != nil {
		return 0, err
	}
	cutoff := now.UnixMicro()
	var total int64
	for _, q := range []string{
		`DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens
			WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2)`,
		`DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations
			WHERE expires_at < ?1 LIMIT ?2)`,
		`DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions
			WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2)`,
		`DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions
			WHERE idle_expires_at < ?1 OR idle_expires_at IS NULL LIMIT ?2)`,
		`DELETE FROM auth_codes WHERE hash IN (SELECT hash FROM auth_codes
			WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2)`,
		// JWT records before families: those of a purged family would go
		// with it by cascade, uncounted.
		`DELETE FROM family_jwts WHERE (family_id, issuer, jti) IN (SELECT family_id, issuer, jti
			FROM family_jwts WHERE expires_at < ?1 LIMIT ?2)`,
		`DELETE FROM families WHERE id IN (SELECT id FROM families
			WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2)`,
		`DELETE FROM pushed_requests WHERE hash IN (SELECT hash FROM pushed_requests
			WHERE expires_at < ?1 OR expires_at IS NULL LIMIT ?2)`,
	} {
		for {
			var (
				n      int64
				took   time.Duration
				shared bool
			)
			err := db.batch(ctx, "purge expired", func(ctx context.Context, tx *sql.Tx) error {
				start := time.Now()
				shared = db.batchLen > 1
				res, err := tx.ExecContext(ctx, q, cutoff, purgeChunk)
				if err != nil {
					return internal("purge expired", err)
				}
				if n, err = res.RowsAffected(); err != nil {
					return internal("purge expired", err)
				}
				took = time.Since(start)
				return nil
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < purgeChunk {
				break
			}
			if shared {
				select {
				case <-time.After(took):
				case <-ctx.Done():
					return total, ctx.Err()
				}
			}
		}
	}
	return total, nil
}
