-- 0007_user_profile: the user's email and OIDC profile claims
-- (latch.User.Email, EmailVerified, Profile).
--
-- email is stored as given, for display; email_norm is
-- latch.NormalizeEmail(email), written by the store, NULL when the user
-- has no email, and unique otherwise. profile is the JSON object of
-- latch.Profile: claims that are only ever read and written whole, so a
-- claim added later needs no migration.

ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_norm TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));
ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';

CREATE UNIQUE INDEX users_email_norm ON users (email_norm);
