package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

const consentColumns = `user_id, client_id, scope, created_at, updated_at`

// SaveConsent stores c, replacing the user's consent to the client but
// its CreatedAt; EINVALID if the user or the client does not exist.
func (db *DB) SaveConsent(ctx context.Context, c *latch.Consent) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO consents (`+consentColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, listArg(c.Scope), timeArg(c.CreatedAt), timeArg(c.UpdatedAt))
	if isForeignKey(err) {
		return latch.Errorf(latch.EINVALID, "postgres: save consent: user %q or client %q does not exist", c.UserID, c.ClientID)
	}
	if err != nil {
		return internal("save consent", err)
	}
	return nil
}

// Consent returns the user's consent to the client; ENOTFOUND if none.
func (db *DB) Consent(ctx context.Context, userID, clientID string) (*latch.Consent, error) {
	c, err := scanConsent(db.pool.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 AND client_id = $2`, userID, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: no consent of user %q to client %q", userID, clientID)
	}
	if err != nil {
		return nil, internal("consent", err)
	}
	return c, nil
}

// UserConsents returns the user's consents ordered by client ID (byte
// order).
func (db *DB) UserConsents(ctx context.Context, userID string) ([]*latch.Consent, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 ORDER BY client_id COLLATE "C"`, userID)
	if err != nil {
		return nil, internal("user consents", err)
	}
	defer rows.Close()
	var out []*latch.Consent
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, internal("user consents", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("user consents", err)
	}
	return out, nil
}

// DeleteConsent removes the user's consent to the client; ENOTFOUND if
// none.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	return affectedOne(tag, err, "delete consent", "consent to client", clientID)
}

func scanConsent(row pgx.Row) (*latch.Consent, error) {
	var (
		c                latch.Consent
		created, updated *time.Time
	)
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Scope, &created, &updated); err != nil {
		return nil, err
	}
	c.Scope = listOf(c.Scope)
	c.CreatedAt, c.UpdatedAt = timeOf(created), timeOf(updated)
	return &c, nil
}

// UserFamilies returns the user's families not revoked, oldest first.
func (db *DB) UserFamilies(ctx context.Context, userID string) ([]*latch.Family, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+familyColumns+` FROM families
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at NULLS FIRST, id COLLATE "C"`, userID)
	if err != nil {
		return nil, internal("user families", err)
	}
	defer rows.Close()
	var out []*latch.Family
	for rows.Next() {
		var fs familyScan
		if err := rows.Scan(fs.dest()...); err != nil {
			return nil, internal("user families", err)
		}
		out = append(out, fs.family())
	}
	if err := rows.Err(); err != nil {
		return nil, internal("user families", err)
	}
	return out, nil
}
