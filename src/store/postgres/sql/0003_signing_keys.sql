-- The PostgreSQL twin of the SQLite migration 0003.
CREATE TABLE signing_keys (
    kid           TEXT   PRIMARY KEY,
    private_der   BYTEA  NOT NULL,
    public_x      TEXT   NOT NULL,
    public_y      TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    publish_until BIGINT,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL))
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((true)) WHERE retired_at IS NULL;
