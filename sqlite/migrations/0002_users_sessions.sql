-- 0002_users_sessions: users and login sessions.
--
-- Conventions as in 0001_init; booleans are INTEGER 0 or 1.

-- username is stored as given, for display; username_norm is
-- latch.NormalizeUsername(username), written by the store, and is what is
-- unique and looked up at login.
CREATE TABLE users (
	id                  TEXT    NOT NULL PRIMARY KEY,
	username            TEXT    NOT NULL,
	username_norm       TEXT    NOT NULL,
	password_hash       TEXT    NOT NULL,
	disabled            INTEGER NOT NULL CHECK (disabled IN (0, 1)),
	roles               TEXT    NOT NULL,
	groups              TEXT    NOT NULL,
	created_at          INTEGER,
	updated_at          INTEGER,
	password_changed_at INTEGER
) STRICT;

CREATE UNIQUE INDEX users_username_norm ON users (username_norm);

-- Login sessions by the SHA-256 of the cookie value. WITHOUT ROWID, like
-- tokens: the lookup on every request of a logged-in browser is one b-tree
-- search. Deleting a user deletes the user's sessions (UserStore.DeleteUser).
CREATE TABLE sessions (
	id_hash         BLOB    NOT NULL PRIMARY KEY,
	user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	auth_time       INTEGER,
	created_at      INTEGER,
	last_seen_at    INTEGER,
	idle_expires_at INTEGER,
	expires_at      INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);
