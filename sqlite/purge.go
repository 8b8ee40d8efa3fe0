package sqlite

import (
	"context"
	"time"
)

// purgeBatch bounds how long one purge transaction holds the write lock, so
// token issuance waits milliseconds behind a purge of millions of rows, not
// seconds.
const purgeBatch = 1000

// PurgeExpired deletes tokens whose ExpiresAt is before now (or unset: such
// a token is never active), revocation entries whose ExpiresAt is before
// now, and sessions whose ExpiresAt or IdleExpiresAt is before now (or
// unset), and returns how many rows it removed. A revocation without ExpiresAt
// is kept: a denylist entry must not lapse by accident. It deletes in
// batches of purgeBatch rows, one statement (transaction) each; on error the count
// covers the batches already committed.
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
	} {
		for {
			res, err := db.writer.ExecContext(ctx, q, cutoff, purgeBatch)
			if err != nil {
				return total, internal("purge expired", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, internal("purge expired", err)
			}
			total += n
			if n < purgeBatch {
				break
			}
		}
	}
	return total, nil
}
