-- Indexes for the janitor (`portcullis janitor`, janitor.interval), for POST /oauth2/flush and
-- for client deletion: each of them finds its rows through an index instead of a table scan.

-- Tokens by kind and expiry (expired codes, access and refresh tokens), and by kind and age
-- (--access-lifespan / --refresh-lifespan, flush). The second replaces the index on
-- requested_at alone: every query on requested_at also names the kind.
CREATE INDEX IF NOT EXISTS portcullis_token_kind_expires_idx ON portcullis_token (kind, expires_at);
CREATE INDEX IF NOT EXISTS portcullis_token_kind_requested_idx ON portcullis_token (kind, requested_at);
DROP INDEX IF EXISTS portcullis_token_expiry_idx;
-- Tokens and flows of one client (client deletion, DELETE /oauth2/tokens?client_id=).
CREATE INDEX IF NOT EXISTS portcullis_token_client_idx ON portcullis_token (client_id, kind);
CREATE INDEX IF NOT EXISTS portcullis_flow_client_idx ON portcullis_flow (client_id);

-- Spent client-assertion jtis and remembered login sessions, by expiry.
CREATE INDEX IF NOT EXISTS portcullis_jti_expires_idx ON portcullis_jti (expires_at);
CREATE INDEX IF NOT EXISTS portcullis_login_session_expires_idx ON portcullis_login_session (expires_at);

-- Logout requests get their creation time, so abandoned ones can be removed. Requests created
-- before this migration count as created now: they get a whole lifespan to finish.
ALTER TABLE portcullis_logout_request ADD COLUMN requested_at BIGINT NOT NULL DEFAULT 0;
UPDATE portcullis_logout_request SET requested_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX IF NOT EXISTS portcullis_logout_request_requested_idx ON portcullis_logout_request (requested_at);
