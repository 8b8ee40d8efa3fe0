-- 0003_client_fingerprint: clients whose JWT access tokens are bound to a
-- browser cookie (latch.Client.TokenFingerprint, DESIGN invariant 8).
--
-- Conventions as in 0001_init; booleans are INTEGER 0 or 1. Existing
-- clients are not bound (DEFAULT 0).

ALTER TABLE clients ADD COLUMN token_fingerprint INTEGER NOT NULL DEFAULT 0
	CHECK (token_fingerprint IN (0, 1));
