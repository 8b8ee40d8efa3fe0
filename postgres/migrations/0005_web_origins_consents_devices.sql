-- 0005_web_origins_consents_devices: the browser origins of single-page
-- app clients (latch.Client.WebOrigins, for CORS), remembered consents
-- (latch.ConsentStore), and what the account page shows of a login
-- session (latch.Session.UserAgent and Address).
--
-- Conventions as in 0001_init. Existing clients have no web origin, existing
-- sessions an unknown device ('').

ALTER TABLE clients ADD COLUMN web_origins text[] NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address text NOT NULL DEFAULT '';

-- One row per user and client: the scopes the user approved so far.
-- Deleting the user or the client deletes it.
CREATE TABLE consents (
	user_id    text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  text   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	scope      text[] NOT NULL,
	created_at timestamptz,
	updated_at timestamptz,
	PRIMARY KEY (user_id, client_id)
);

-- Deleting a client cascades by index search, not by a scan of every row.
CREATE INDEX consents_client_id ON consents (client_id);
