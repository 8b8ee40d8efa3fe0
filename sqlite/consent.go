package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latch-auth/latch"
	sqlite3 "modernc.org/sqlite/lib"
)

// SaveConsent stores c, replacing the user's consent to the client but
// its CreatedAt; EINVALID if the user or the client does not exist.
func (db *DB) SaveConsent(ctx context.Context, c *latch.Consent) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	_, err := db.writer.ExecContext(ctx, `INSERT INTO consents (user_id, client_id, scope, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, client_id)
		DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, listArg(c.Scope), timeArg(c.CreatedAt), timeArg(c.UpdatedAt))
	if isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return latch.Errorf(latch.EINVALID, "sqlite: save consent: user %q or client %q does not exist", c.UserID, c.ClientID)
	}
	if err != nil {
		return internal("save consent", err)
	}
	return nil
}

// Consent returns the user's consent to the client; ENOTFOUND if none.
func (db *DB) Consent(ctx context.Context, userID, clientID string) (*latch.Consent, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	c, err := scanConsent(db.reader.QueryRowContext(ctx, `SELECT user_id, client_id, scope, created_at, updated_at
		FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "sqlite: no consent of user %q to client %q", userID, clientID)
	}
	if err != nil {
		return nil, internal("consent", err)
	}
	return c, nil
}

// UserConsents returns the user's consents ordered by client ID.
func (db *DB) UserConsents(ctx context.Context, userID string) ([]*latch.Consent, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT user_id, client_id, scope, created_at, updated_at
		FROM consents WHERE user_id = ? ORDER BY client_id`, userID)
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
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	res, err := db.writer.ExecContext(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return affectedOne(res, err, "delete consent", "consent to client", clientID)
}

func scanConsent(row interface{ Scan(...any) error }) (*latch.Consent, error) {
	var (
		c                latch.Consent
		scope            string
		created, updated sql.NullInt64
	)
	if err := row.Scan(&c.UserID, &c.ClientID, &scope, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if c.Scope, err = listOf(scope); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = timeOf(created), timeOf(updated)
	return &c, nil
}

// UserFamilies returns the user's families not revoked, oldest first.
func (db *DB) UserFamilies(ctx context.Context, userID string) ([]*latch.Family, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT `+familyColumns+` FROM families
		WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, id`, userID)
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
		f, err := fs.family()
		if err != nil {
			return nil, internal("user families", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("user families", err)
	}
	return out, nil
}
