-- The PostgreSQL twin of the SQLite migration 0008.
-- Refresh grants of signed-in users (IdP quirk E7), shared by replicas: the refresh token is
-- encrypted (AES-256-GCM, key from server.secret_key_*), never stored in clear.
CREATE TABLE refresh_grants (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT   NOT NULL,
    issuer        TEXT   NOT NULL,
    sub           TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    -- nonce (12 bytes) || ciphertext || tag (16 bytes)
    token         BYTEA  NOT NULL,
    -- Which login stored it (a newer login replaces the grant; a re-evaluation in flight then
    -- must not put the old one back).
    login_id      TEXT   NOT NULL,
    interval_ms   BIGINT NOT NULL,
    -- Unix milliseconds.
    next_at       BIGINT NOT NULL,
    until_at      BIGINT NOT NULL,
    -- Set while one replica re-evaluates it; another may take it over after this.
    claimed_until BIGINT
);
CREATE INDEX refresh_grants_next ON refresh_grants (next_at);
