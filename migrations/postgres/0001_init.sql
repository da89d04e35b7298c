CREATE TABLE IF NOT EXISTS portcullis_client (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS portcullis_jwk (
    pk BIGSERIAL PRIMARY KEY,
    set_id TEXT NOT NULL,
    kid TEXT NOT NULL,
    keydata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (set_id, kid)
);
