-- Remembered login sessions expire on the server, not only in the browser: `expires_at` is
-- the Unix time after which the session no longer skips login (Hydra >= 2 stores the same as
-- hydra_oauth2_authentication_session.expires_at). Sessions remembered before this migration
-- get the default bound, 30 days after their authentication.
ALTER TABLE portcullis_login_session ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE portcullis_login_session SET expires_at = authenticated_at + 2592000;
