-- 0002_client_registration: the registration a client's tokens belong to
-- (latch.Client.RegistrationID, latch.Token.RegistrationID), so that the
-- tokens of a deleted client do not come back to life when another client
-- is registered under the same ID.
--
-- Existing clients and tokens get '' (DEFAULT ''), which match each other:
-- tokens issued before this migration stay as active as they were.

ALTER TABLE clients ADD COLUMN registration_id text NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN registration_id text NOT NULL DEFAULT '';
