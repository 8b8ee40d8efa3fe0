-- 0001_init: the whole latch.Store schema, as the SQLite store has it after
-- its migration 0004 (clients, opaque tokens, the revocation log, signing
-- keys, users, login sessions, authorization codes and refresh families).
--
-- Conventions (see package doc):
--   times      timestamptz (microseconds); NULL is the zero time.Time
--   durations  bigint nanoseconds (time.Duration)
--   lists      text[], '{}' when empty
--   hashes     bytea (SHA-256); bearer strings are never stored

CREATE TABLE clients (
	id                          text    NOT NULL PRIMARY KEY,
	name                        text    NOT NULL,
	secret_hash                 bytea,
	auth_method                 text    NOT NULL,
	jwks                        bytea,
	grant_types                 text[]  NOT NULL,
	scopes                      text[]  NOT NULL,
	audiences                   text[]  NOT NULL,
	redirect_uris               text[]  NOT NULL,
	access_token_format         text    NOT NULL,
	access_token_ttl            bigint  NOT NULL,
	refresh_token_ttl           bigint  NOT NULL,
	created_at                  timestamptz,
	updated_at                  timestamptz,
	token_fingerprint           boolean NOT NULL DEFAULT false,
	first_party                 boolean NOT NULL DEFAULT false,
	access_token_encryption_key bytea
);

-- Opaque tokens by SHA-256. Deleting a client deletes its tokens
-- (ClientStore.DeleteClient). family_id is not a foreign key: revoking a
-- family deletes its tokens itself, and appends their revocations first.
CREATE TABLE tokens (
	hash       bytea  NOT NULL PRIMARY KEY,
	kind       text   NOT NULL,
	id         text   NOT NULL,
	client_id  text   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	subject    text   NOT NULL,
	scope      text[] NOT NULL,
	audience   text[] NOT NULL,
	family_id  text,
	issued_at  timestamptz,
	expires_at timestamptz,
	-- When a refresh token was first exchanged for a successor; NULL until
	-- then. A rotated token is kept until it expires so that reuse is seen.
	rotated_at timestamptz
);

CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_family_id ON tokens (family_id) WHERE family_id IS NOT NULL;
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- The revocation log: the JWT denylist and the feed resource servers follow.
-- A sequence never hands a value out twice, even after the newest entry is
-- purged: a follower's cursor must never skip a later entry.
CREATE TABLE revocations (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind       text   NOT NULL,
	issuer     text,
	jti        text,
	token_hash bytea,
	expires_at timestamptz,
	revoked_at timestamptz,
	CHECK (
		(kind = 'jwt' AND issuer IS NOT NULL AND jti IS NOT NULL AND token_hash IS NULL) OR
		(kind = 'opaque' AND token_hash IS NOT NULL AND issuer IS NULL AND jti IS NULL)
	)
);

CREATE UNIQUE INDEX revocations_jwt ON revocations (issuer, jti) WHERE kind = 'jwt';
CREATE UNIQUE INDEX revocations_opaque ON revocations (token_hash) WHERE kind = 'opaque';
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE keys (
	id         text NOT NULL PRIMARY KEY,
	algorithm  text NOT NULL,
	public     bytea,
	private    bytea,
	created_at timestamptz,
	active_at  timestamptz,
	retired_at timestamptz,
	removed_at timestamptz
);

CREATE INDEX keys_created_at ON keys (created_at);

-- username is stored as given, for display; username_norm is
-- latch.NormalizeUsername(username), written by the store, and is what is
-- unique and looked up at login.
CREATE TABLE users (
	id                  text    NOT NULL PRIMARY KEY,
	username            text    NOT NULL,
	username_norm       text    NOT NULL,
	password_hash       text    NOT NULL,
	disabled            boolean NOT NULL,
	roles               text[]  NOT NULL,
	groups              text[]  NOT NULL,
	created_at          timestamptz,
	updated_at          timestamptz,
	password_changed_at timestamptz
);

CREATE UNIQUE INDEX users_username_norm ON users (username_norm);

-- Login sessions by the SHA-256 of the cookie value. Deleting a user
-- deletes the user's sessions (UserStore.DeleteUser).
CREATE TABLE sessions (
	id_hash         bytea NOT NULL PRIMARY KEY,
	user_id         text  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	auth_time       timestamptz,
	created_at      timestamptz,
	last_seen_at    timestamptz,
	idle_expires_at timestamptz,
	expires_at      timestamptz
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

-- Authorization codes by SHA-256, kept after use (used_at) until they
-- expire so that a second redemption is recognised. family_id is the family
-- the first redemption creates: not a foreign key, it does not exist yet.
CREATE TABLE auth_codes (
	hash           bytea  NOT NULL PRIMARY KEY,
	client_id      text   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id        text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id     text   NOT NULL,
	redirect_uri   text   NOT NULL,
	scope          text[] NOT NULL,
	audience       text[] NOT NULL,
	nonce          text   NOT NULL,
	code_challenge text   NOT NULL,
	auth_time      timestamptz,
	family_id      text   NOT NULL,
	issued_at      timestamptz,
	expires_at     timestamptz,
	used_at        timestamptz
);

-- The foreign-key columns are indexed so that deleting a client or a user
-- cascades by index search, not by a scan of every code.
CREATE INDEX auth_codes_client_id ON auth_codes (client_id);
CREATE INDEX auth_codes_user_id ON auth_codes (user_id);
CREATE INDEX auth_codes_session_id ON auth_codes (session_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- Refresh families (DESIGN invariant 7). session_id is NULL for families
-- no login session started (the password grant).
CREATE TABLE families (
	id         text   NOT NULL PRIMARY KEY,
	client_id  text   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	user_id    text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	session_id text,
	scope      text[] NOT NULL,
	audience   text[] NOT NULL,
	auth_time  timestamptz,
	created_at timestamptz,
	expires_at timestamptz,
	revoked_at timestamptz
);

CREATE INDEX families_client_id ON families (client_id);
CREATE INDEX families_user_id ON families (user_id);
CREATE INDEX families_session_id ON families (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX families_expires_at ON families (expires_at);

-- JWT access tokens issued in a family, so that revoking the family can
-- denylist them by (issuer, jti). Deleted with their family.
CREATE TABLE family_jwts (
	family_id  text NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	issuer     text NOT NULL,
	jti        text NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (family_id, issuer, jti)
);

CREATE INDEX family_jwts_expires_at ON family_jwts (expires_at);
