-- Login sessions (the `sid` of the remembered-login cookie).
CREATE TABLE IF NOT EXISTS portcullis_login_session (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    authenticated_at BIGINT NOT NULL,
    remember BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS portcullis_login_session_subject_idx ON portcullis_login_session (subject);

-- One row per login/consent flow; `state` moves forward only, by conditional UPDATEs.
CREATE TABLE IF NOT EXISTS portcullis_flow (
    login_challenge TEXT PRIMARY KEY,
    login_verifier TEXT NOT NULL UNIQUE,
    consent_challenge TEXT UNIQUE,
    consent_verifier TEXT UNIQUE,
    state BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    consent_remember BIGINT NOT NULL,
    consent_expires_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS portcullis_flow_remembered_idx ON portcullis_flow (subject, client_id, consent_remember);
CREATE INDEX IF NOT EXISTS portcullis_flow_requested_idx ON portcullis_flow (requested_at);

-- Codes, access and refresh tokens: keyed by the HMAC signature, never the token itself.
CREATE TABLE IF NOT EXISTS portcullis_token (
    signature TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    active BIGINT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS portcullis_token_request_idx ON portcullis_token (request_id);
CREATE INDEX IF NOT EXISTS portcullis_token_expiry_idx ON portcullis_token (requested_at);

-- Spent `jti`s of private_key_jwt client assertions (hex SHA-256), kept until they expire.
CREATE TABLE IF NOT EXISTS portcullis_jti (
    signature TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Logout requests (consent/types.go LogoutRequest); `state` moves forward by conditional UPDATEs.
CREATE TABLE IF NOT EXISTS portcullis_logout_request (
    challenge TEXT PRIMARY KEY,
    verifier TEXT NOT NULL UNIQUE,
    state BIGINT NOT NULL,
    data TEXT NOT NULL
);
