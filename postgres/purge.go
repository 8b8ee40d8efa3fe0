package postgres

import (
	"context"
	"time"
)

// purgeBatch bounds how many rows one purge statement deletes (and so
// locks, and writes to the WAL in one transaction), so that a purge of
// millions of rows does not hold locks the grants wait on for seconds.
const purgeBatch = 1000

// PurgeExpired deletes tokens whose ExpiresAt is before now (or unset: such
// a token is never active), revocation entries whose ExpiresAt is before
// now, sessions whose ExpiresAt or IdleExpiresAt is before now (or
// unset), authorization codes and refresh families whose ExpiresAt is
// before now (or unset), and IssuedJWT records whose ExpiresAt is before
// now, and returns how many rows it removed. A family's tokens are not
// purged with it: no token of a family outlives it, so they are gone by
// their own ExpiresAt. A revocation without ExpiresAt is kept: a denylist
// entry must not lapse by accident. It deletes in batches of purgeBatch
// rows, one statement (transaction) each; on error the count covers the
// batches already committed.
func (db *DB) PurgeExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens
			WHERE expires_at < $1 OR expires_at IS NULL LIMIT $2)`,
		`DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations
			WHERE expires_at < $1 LIMIT $2)`,
		`DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions
			WHERE expires_at < $1 OR expires_at IS NULL LIMIT $2)`,
		`DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions
			WHERE idle_expires_at < $1 OR idle_expires_at IS NULL LIMIT $2)`,
		`DELETE FROM auth_codes WHERE hash IN (SELECT hash FROM auth_codes
			WHERE expires_at < $1 OR expires_at IS NULL LIMIT $2)`,
		// JWT records before families: those of a purged family would go
		// with it by cascade, uncounted.
		`DELETE FROM family_jwts WHERE (family_id, issuer, jti) IN (SELECT family_id, issuer, jti
			FROM family_jwts WHERE expires_at < $1 LIMIT $2)`,
		`DELETE FROM families WHERE id IN (SELECT id FROM families
			WHERE expires_at < $1 OR expires_at IS NULL LIMIT $2)`,
		`DELETE FROM pushed_requests WHERE hash IN (SELECT hash FROM pushed_requests
			WHERE expires_at < $1 OR expires_at IS NULL LIMIT $2)`,
	} {
		for {
			tag, err := db.pool.Exec(ctx, q, now, purgeBatch)
			if err != nil {
				return total, internal("purge expired", err)
			}
			n := tag.RowsAffected()
			total += n
			if n < purgeBatch {
				break
			}
		}
	}
	return total, nil
}
