package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latch-auth/latch"
	sqlite3 "modernc.org/sqlite/lib"
)

const selectSession = `SELECT user_id, auth_time, created_at, last_seen_at,
	idle_expires_at, expires_at, user_agent, address FROM sessions WHERE id_hash = ?`

const insertSession = `INSERT INTO sessions (id_hash, user_id, auth_time, created_at,
	last_seen_at, idle_expires_at, expires_at, user_agent, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

const touchSession = `UPDATE sessions SET last_seen_at = ?2, idle_expires_at = ?3 WHERE id_hash = ?1`

// CreateSession stores s; ECONFLICT if s.IDHash exists, EINVALID if it is
// empty or s.UserID names no user. It returns after the write is synced.
func (db *DB) CreateSession(ctx context.Context, s *latch.Session) error {
	st, err := db.ready(ctx)
	if err != nil {
		return err
	}
	if len(s.IDHash) == 0 {
		return latch.Errorf(latch.EINVALID, "sqlite: create session: empty ID hash")
	}
	_, err = st.createSession.ExecContext(ctx, s.IDHash, s.UserID, timeArg(s.AuthTime),
		timeArg(s.CreatedAt), timeArg(s.LastSeenAt), timeArg(s.IdleExpiresAt), timeArg(s.ExpiresAt),
		s.UserAgent, s.Address)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		// The ID hash is a credential's hash: never put it in a message.
		return latch.Errorf(latch.ECONFLICT, "sqlite: create session: a session with this ID exists")
	case isExtCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return latch.Errorf(latch.EINVALID, "sqlite: create session: user %q does not exist", s.UserID)
	}
	return internal("create session", err)
}

// Session returns the session with idHash, expired or not; ENOTFOUND if none.
func (db *DB) Session(ctx context.Context, idHash []byte) (*latch.Session, error) {
	st, err := db.ready(ctx)
	if err != nil {
		return nil, err
	}
	var (
		s                                          latch.Session
		authTime, created, lastSeen, idle, expires sql.NullInt64
	)
	err = st.session.QueryRowContext(ctx, idHash).Scan(&s.UserID, &authTime, &created, &lastSeen, &idle, &expires,
		&s.UserAgent, &s.Address)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.ErrNotFound
	}
	if err != nil {
		return nil, internal("session", err)
	}
	s.IDHash = append([]byte(nil), idHash...)
	s.AuthTime, s.CreatedAt, s.LastSeenAt = timeOf(authTime), timeOf(created), timeOf(lastSeen)
	s.IdleExpiresAt, s.ExpiresAt = timeOf(idle), timeOf(expires)
	return &s, nil
}

// UserSessions returns the user's sessions, oldest first (by the
// sessions_user_id index); none for a user without any.
func (db *DB) UserSessions(ctx context.Context, userID string) ([]*latch.Session, error) {
	if _, err := db.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := db.reader.QueryContext(ctx, `SELECT id_hash, auth_time, created_at, last_seen_at,
		idle_expires_at, expires_at, user_agent, address FROM sessions WHERE user_id = ? ORDER BY created_at, id_hash`, userID)
	if err != nil {
		return nil, internal("user sessions", err)
	}
	defer rows.Close()
	var out []*latch.Session
	for rows.Next() {
		var (
			s                                          = latch.Session{UserID: userID}
			authTime, created, lastSeen, idle, expires sql.NullInt64
		)
		if err := rows.Scan(&s.IDHash, &authTime, &created, &lastSeen, &idle, &expires, &s.UserAgent, &s.Address); err != nil {
			return nil, internal("user sessions", err)
		}
		s.AuthTime, s.CreatedAt, s.LastSeenAt = timeOf(authTime), timeOf(created), timeOf(lastSeen)
		s.IdleExpiresAt, s.ExpiresAt = timeOf(idle), timeOf(expires)
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("user sessions", err)
	}
	return out, nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt; ENOTFOUND if none.
func (db *DB) TouchSession(ctx context.Context, idHash []byte, lastSeen, idleExpires time.Time) error {
	st, err := db.ready(ctx)
	if err != nil {
		return err
	}
	res, err := st.touchSession.ExecContext(ctx, idHash, timeArg(lastSeen), timeArg(idleExpires))
	return affectedOneSession(res, err, "touch session")
}

// DeleteSession removes the session; ENOTFOUND if none.
func (db *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := db.ready(ctx); err != nil {
		return err
	}
	res, err := db.writer.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return affectedOneSession(res, err, "delete session")
}

// DeleteUserSessions removes every session of the user and returns how
// many it removed.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	if _, err := db.ready(ctx); err != nil {
		return 0, err
	}
	res, err := db.writer.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	n, err := affected(res, err, "delete user sessions")
	return int(n), err
}

// affectedOneSession is affectedOne for sessions, whose key must not appear
// in messages.
func affectedOneSession(res sql.Result, err error, op string) error {
	n, err := affected(res, err, op)
	if err != nil {
		return err
	}
	if n == 0 {
		return latch.Errorf(latch.ENOTFOUND, "sqlite: %s: session not found", op)
	}
	return nil
}
