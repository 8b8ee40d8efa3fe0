package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latch-auth/latch"
)

const userColumns = `id, username, username_norm, password_hash, disabled, roles, groups,
	created_at, updated_at, password_changed_at, email, email_norm, email_verified, profile`

// qualified returns the column list cols (plain names, comma-separated)
// with each name qualified by alias, for a join.
func qualified(alias, cols string) string {
	names := strings.Split(cols, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// userArgs returns the column values of u, computing username_norm; an
// EINVALID error if the ID is empty or the username refused.
func userArgs(op string, u *latch.User) ([]any, error) {
	if u.ID == "" {
		return nil, latch.Errorf(latch.EINVALID, "postgres: %s: empty user ID", op)
	}
	norm, err := latch.NormalizeUsername(u.Username)
	if err != nil {
		return nil, latch.Errorf(latch.EINVALID, "postgres: %s %q: %s", op, u.ID, latch.ErrorMessage(err))
	}
	var emailNorm *string // NULL: no email, and NULLs are not unique
	if u.Email != "" {
		n, err := latch.NormalizeEmail(u.Email)
		if err != nil {
			return nil, latch.Errorf(latch.EINVALID, "postgres: %s %q: %s", op, u.ID, latch.ErrorMessage(err))
		}
		emailNorm = &n
	}
	if err := u.Profile.Validate(); err != nil {
		return nil, latch.Errorf(latch.EINVALID, "postgres: %s %q: %s", op, u.ID, latch.ErrorMessage(err))
	}
	profile, err := json.Marshal(&u.Profile)
	if err != nil {
		return nil, internal(op, err)
	}
	return []any{
		u.ID, u.Username, norm, u.PasswordHash, u.Disabled, listArg(u.Roles), listArg(u.Groups),
		timeArg(u.CreatedAt), timeArg(u.UpdatedAt), timeArg(u.PasswordChangedAt),
		u.Email, emailNorm, u.EmailVerified, string(profile),
	}, nil
}

func scanUser(row pgx.Row) (*latch.User, error) {
	var (
		u                                   latch.User
		norm                                string
		emailNorm                           *string
		profile                             []byte
		createdAt, updatedAt, passwordSetAt *time.Time
	)
	if err := row.Scan(&u.ID, &u.Username, &norm, &u.PasswordHash, &u.Disabled, &u.Roles, &u.Groups,
		&createdAt, &updatedAt, &passwordSetAt, &u.Email, &emailNorm, &u.EmailVerified, &profile); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(profile, &u.Profile); err != nil {
		return nil, fmt.Errorf("profile of user %q: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = timeOf(createdAt), timeOf(updatedAt), timeOf(passwordSetAt)
	u.Roles, u.Groups = listOf(u.Roles), listOf(u.Groups)
	return &u, nil
}

// userConflict tells which unique key a failed INSERT or UPDATE hit.
func userConflict(op string, u *latch.User, err error) error {
	if constraint(err) == "users_pkey" {
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: user %q exists", op, u.ID)
	}
	if constraint(err) == "users_email_norm" {
		return latch.Errorf(latch.ECONFLICT, "postgres: %s: email %q is another user's", op, u.Email)
	}
	return latch.Errorf(latch.ECONFLICT, "postgres: %s: username %q is taken", op, u.Username)
}

// CreateUser stores u; ECONFLICT if u.ID or its normalized username
// exists, EINVALID if u.ID is empty or the username is refused.
func (db *DB) CreateUser(ctx context.Context, u *latch.User) error {
	args, err := userArgs("create user", u)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx,
		`INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, args...)
	if isUnique(err) {
		return userConflict("create user", u, err)
	}
	if err != nil {
		return internal("create user", err)
	}
	return nil
}

// User returns the user with id; ENOTFOUND if none.
func (db *DB) User(ctx context.Context, id string) (*latch.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: user %q not found", id)
	}
	if err != nil {
		return nil, internal("user", err)
	}
	return u, nil
}

// UserByName returns the user whose normalized username matches; ENOTFOUND
// if none, or if username is one no user can have.
func (db *DB) UserByName(ctx context.Context, username string) (*latch.User, error) {
	norm, err := latch.NormalizeUsername(username)
	if err != nil {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: user named %q not found", username)
	}
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username_norm = $1`, norm))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: user named %q not found", username)
	}
	if err != nil {
		return nil, internal("user by name", err)
	}
	return u, nil
}

// UserByEmail returns the user whose normalized email matches; ENOTFOUND
// if none, or if email is one no user can have.
func (db *DB) UserByEmail(ctx context.Context, email string) (*latch.User, error) {
	norm, err := latch.NormalizeEmail(email)
	if err != nil {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: user with email %.80q not found", email)
	}
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_norm = $1`, norm))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.Errorf(latch.ENOTFOUND, "postgres: user with email %.80q not found", email)
	}
	if err != nil {
		return nil, internal("user by email", err)
	}
	return u, nil
}

// Users returns all users ordered by normalized username, in byte order
// whatever the database's collation.
func (db *DB) Users(ctx context.Context) ([]*latch.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username_norm COLLATE "C"`)
	if err != nil {
		return nil, internal("users", err)
	}
	defer rows.Close()
	var us []*latch.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, internal("users", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("users", err)
	}
	return us, nil
}

// UpdateUser replaces the stored user u.ID; ENOTFOUND if none, ECONFLICT
// if the new username is another user's.
func (db *DB) UpdateUser(ctx context.Context, u *latch.User) error {
	args, err := userArgs("update user", u)
	if err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE users SET
		username = $2, username_norm = $3, password_hash = $4, disabled = $5, roles = $6,
		groups = $7, created_at = $8, updated_at = $9, password_changed_at = $10,
		email = $11, email_norm = $12, email_verified = $13, profile = $14
		WHERE id = $1`, args...)
	if isUnique(err) {
		return userConflict("update user", u, err)
	}
	return affectedOne(tag, err, "update user", "user", u.ID)
}

// RehashPassword sets the user's password hash to newHash if it is still
// oldHash, in one conditional UPDATE, and reports whether it did.
func (db *DB) RehashPassword(ctx context.Context, id, oldHash, newHash string) (bool, error) {
	if oldHash == "" || newHash == "" {
		return false, latch.Errorf(latch.EINVALID, "postgres: rehash password: empty hash")
	}
	tag, err := db.pool.Exec(ctx, `UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`,
		id, oldHash, newHash)
	if err != nil {
		return false, internal("rehash password", err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteUser removes the user and, through ON DELETE CASCADE, the user's
// sessions, authorization codes and refresh families, in one transaction
// that first revokes those families (as RevokeFamily), so that the tokens
// they issued stop working now rather than at their expiry; ENOTFOUND if
// none.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	now := time.Now()
	return db.withTx(ctx, "delete user", func(tx pgx.Tx) error {
		if err := lockParent(ctx, tx, "delete user", "users", "user_id", id); err != nil {
			return err
		}
		if _, err := revokeFamiliesTx(ctx, tx, "delete user", now, "user_id = $2", id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return affectedOne(tag, err, "delete user", "user", id)
	})
}
