-- 0006_dpop_par: DPoP (RFC 9449) and pushed authorization requests (RFC 9126).
--
-- clients.dpop is latch.Client.DPoP ('' is optional) and clients.require_par
-- latch.Client.RequirePAR; tokens.jkt the thumbprint of the DPoP key a token
-- is bound to ('' for a bearer token: every token issued before this
-- migration); auth_codes.dpop_jkt the dpop_jkt of the authorization request.
-- pushed_requests holds pushed authorization requests by the SHA-256 of their
-- request_uri until they are used or expire.

ALTER TABLE clients ADD COLUMN dpop TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';

CREATE TABLE pushed_requests (
	hash       BLOB    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	params     TEXT    NOT NULL,
	created_at INTEGER,
	expires_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX pushed_requests_client_id ON pushed_requests (client_id);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);
