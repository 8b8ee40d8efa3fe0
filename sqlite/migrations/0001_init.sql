-- 0001_init: clients, opaque tokens, the revocation log and signing keys.
--
-- Conventions (see package doc):
--   times      INTEGER unix microseconds, UTC; NULL is the zero time.Time
--   durations  INTEGER nanoseconds (time.Duration)
--   lists      TEXT holding a JSON array of strings, '[]' when empty
--   hashes     BLOB (SHA-256); bearer strings are never stored

CREATE TABLE clients (
	id                  TEXT    NOT NULL PRIMARY KEY,
	name                TEXT    NOT NULL,
	secret_hash         BLOB,
	auth_method         TEXT    NOT NULL,
	jwks                BLOB,
	grant_types         TEXT    NOT NULL,
	scopes              TEXT    NOT NULL,
	audiences           TEXT    NOT NULL,
	redirect_uris       TEXT    NOT NULL,
	access_token_format TEXT    NOT NULL,
	access_token_ttl    INTEGER NOT NULL,
	refresh_token_ttl   INTEGER NOT NULL,
	created_at          INTEGER,
	updated_at          INTEGER
) STRICT;

-- Opaque tokens by SHA-256. WITHOUT ROWID keeps the row in the primary-key
-- b-tree, so introspection is one b-tree search, not index + table.
-- Deleting a client deletes its tokens (ClientStore.DeleteClient).
CREATE TABLE tokens (
	hash       BLOB    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	subject    TEXT    NOT NULL,
	scope      TEXT    NOT NULL,
	audience   TEXT    NOT NULL,
	family_id  TEXT,
	issued_at  INTEGER,
	expires_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_family_id ON tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- The revocation log: the JWT denylist and the feed resource servers follow.
-- AUTOINCREMENT, so a seq is never reused, even after the newest entry is
-- purged: a follower's cursor must never skip a later entry.
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT    NOT NULL,
	issuer     TEXT,
	jti        TEXT,
	token_hash BLOB,
	expires_at INTEGER,
	revoked_at INTEGER,
	CHECK (
		(kind = 'jwt' AND issuer IS NOT NULL AND jti IS NOT NULL AND token_hash IS NULL) OR
		(kind = 'opaque' AND token_hash IS NOT NULL AND issuer IS NULL AND jti IS NULL)
	)
) STRICT;

CREATE UNIQUE INDEX revocations_jwt ON revocations (issuer, jti) WHERE kind = 'jwt';
CREATE UNIQUE INDEX revocations_opaque ON revocations (token_hash) WHERE kind = 'opaque';
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	algorithm  TEXT    NOT NULL,
	public     BLOB,
	private    BLOB,
	created_at INTEGER,
	active_at  INTEGER,
	retired_at INTEGER,
	removed_at INTEGER
) STRICT;

CREATE INDEX keys_created_at ON keys (created_at);
