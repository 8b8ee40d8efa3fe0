package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/latch-auth/latch"
)

// CreateSession stores s; ECONFLICT if s.IDHash exists, EINVALID if it is
// empty or s.UserID names no user. It returns after the server committed
// the write.
func (db *DB) CreateSession(ctx context.Context, s *latch.Session) error {
	if len(s.IDHash) == 0 {
		return latch.Errorf(latch.EINVALID, "postgres: create session: empty ID hash")
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, auth_time, created_at,
		last_seen_at, idle_expires_at, expires_at, user_agent, address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.IDHash, s.UserID, timeArg(s.AuthTime), timeArg(s.CreatedAt), timeArg(s.LastSeenAt),
		timeArg(s.IdleExpiresAt), timeArg(s.ExpiresAt), s.UserAgent, s.Address)
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		// The ID hash is a credential's hash: never put it in a message.
		return latch.Errorf(latch.ECONFLICT, "postgres: create session: a session with this ID exists")
	case isForeignKey(err):
		return latch.Errorf(latch.EINVALID, "postgres: create session: user %q does not exist", s.UserID)
	}
	return internal("create session", err)
}

// sessionTimes receives a session's time columns.
type sessionTimes struct {
	authTime, created, lastSeen, idle, expires *time.Time
}

func (st *sessionTimes) dest() []any {
	return []any{&st.authTime, &st.created, &st.lastSeen, &st.idle, &st.expires}
}

func (st *sessionTimes) set(s *latch.Session) {
	s.AuthTime, s.CreatedAt, s.LastSeenAt = timeOf(st.authTime), timeOf(st.created), timeOf(st.lastSeen)
	s.IdleExpiresAt, s.ExpiresAt = timeOf(st.idle), timeOf(st.expires)
}

// Session returns the session with idHash, expired or not; ENOTFOUND if none.
func (db *DB) Session(ctx context.Context, idHash []byte) (*latch.Session, error) {
	var (
		s  latch.Session
		st sessionTimes
	)
	err := db.pool.QueryRow(ctx, `SELECT user_id, auth_time, created_at, last_seen_at,
		idle_expires_at, expires_at, user_agent, address FROM sessions WHERE id_hash = $1`, idHash).
		Scan(append(append([]any{&s.UserID}, st.dest()...), &s.UserAgent, &s.Address)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, latch.ErrNotFound
	}
	if err != nil {
		return nil, internal("session", err)
	}
	s.IDHash = append([]byte(nil), idHash...)
	st.set(&s)
	return &s, nil
}

// UserSessions returns the user's sessions, oldest first; none for a user
// without any.
func (db *DB) UserSessions(ctx context.Context, userID string) ([]*latch.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT id_hash, auth_time, created_at, last_seen_at,
		idle_expires_at, expires_at, user_agent, address FROM sessions WHERE user_id = $1
		ORDER BY created_at NULLS FIRST, id_hash`, userID)
	if err != nil {
		return nil, internal("user sessions", err)
	}
	defer rows.Close()
	var out []*latch.Session
	for rows.Next() {
		var (
			s  = latch.Session{UserID: userID}
			st sessionTimes
		)
		if err := rows.Scan(append(append([]any{&s.IDHash}, st.dest()...), &s.UserAgent, &s.Address)...); err != nil {
			return nil, internal("user sessions", err)
		}
		st.set(&s)
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("user sessions", err)
	}
	return out, nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt; ENOTFOUND if none.
func (db *DB) TouchSession(ctx context.Context, idHash []byte, lastSeen, idleExpires time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id_hash = $1`,
		idHash, timeArg(lastSeen), timeArg(idleExpires))
	return affectedOneSession(tag, err, "touch session")
}

// DeleteSession removes the session; ENOTFOUND if none.
func (db *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return affectedOneSession(tag, err, "delete session")
}

// DeleteUserSessions removes every session of the user and returns how
// many it removed.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, internal("delete user sessions", err)
	}
	return int(tag.RowsAffected()), nil
}

// affectedOneSession is affectedOne for sessions, whose key must not appear
// in messages.
func affectedOneSession(tag pgconn.CommandTag, err error, op string) error {
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 0 {
		return latch.Errorf(latch.ENOTFOUND, "postgres: %s: session not found", op)
	}
	return nil
}
