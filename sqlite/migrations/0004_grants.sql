-- 0004_grants: authorization codes and refresh families (latch.GrantStore),
-- the client fields of the authorization code flow, and refresh rotation.
--
-- Conventions as in 0001_init; booleans are INTEGER 0 or 1. Existing
-- clients are third-party (DEFAULT 0) and encrypt nothing (NULL).

ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0
	CHECK (first_party IN (0, 1));
ALTER TABLE clients ADD COLUMN access_token_encryption_key BLOB;

-- When a refresh token was first exchanged for a successor; NULL until
-- then. A rotated token is kept until it expires so that reuse is seen.
ALTER TABLE tokens ADD COLUMN rotated_at INTEGER;

-- Authorization codes by SHA-256, kept after use (used_at) until they
-- expire so that a second redemption is recognised. family_id is the family
-- the first redemption creates: not a foreign key, it does not exist yet.
CREATE TABLE auth_codes (
	hash           BLOB    NOT NULL PRIMARY KEY,
	client_id      TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id     TEXT    NOT NULL,
	redirect_uri   TEXT    NOT NULL,
	scope          TEXT    NOT NULL,
	audience       TEXT    NOT NULL,
	nonce          TEXT    NOT NULL,
	code_challenge TEXT    NOT NULL,
	auth_time      INTEGER,
	family_id      TEXT    NOT NULL,
	issued_at      INTEGER,
	expires_at     INTEGER,
	used_at        INTEGER
) STRICT, WITHOUT ROWID;

-- The foreign-key columns are indexed so that deleting a client or a user
-- cascades by index search, not by a scan of every code.
CREATE INDEX auth_codes_client_id ON auth_codes (client_id);
CREATE INDEX auth_codes_user_id ON auth_codes (user_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- Refresh families (DESIGN invariant 7). session_id is NULL for families
-- no login session started (the password grant).
CREATE TABLE families (
	id         TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id TEXT,
	scope      TEXT    NOT NULL,
	audience   TEXT    NOT NULL,
	auth_time  INTEGER,
	created_at INTEGER,
	expires_at INTEGER,
	revoked_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX families_client_id ON families (client_id);
CREATE INDEX families_user_id ON families (user_id);
CREATE INDEX families_session_id ON families (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX families_expires_at ON families (expires_at);

-- JWT access tokens issued in a family, so that revoking the family can
-- denylist them by (issuer, jti). Deleted with their family.
CREATE TABLE family_jwts (
	family_id  TEXT    NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	issuer     TEXT    NOT NULL,
	jti        TEXT    NOT NULL,
	expires_at INTEGER,
	PRIMARY KEY (family_id, issuer, jti)
) STRICT, WITHOUT ROWID;

CREATE INDEX family_jwts_expires_at ON family_jwts (expires_at);
