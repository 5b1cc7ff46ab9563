-- teamgate's own signing keys for the downstream assertion (ES256, P-256). One key signs at a
-- time (retired_at IS NULL); a retired key stays published in /.well-known/jwks.json until
-- publish_until, when the last assertion it can have signed has expired.
CREATE TABLE signing_keys (
    -- RFC 7638 JWK thumbprint (SHA-256, base64url).
    kid           TEXT    PRIMARY KEY,
    -- PKCS#8 DER of the private key.
    private_der   BLOB    NOT NULL,
    -- The public point, base64url (RFC 7518 §6.2.1.2-3).
    public_x      TEXT    NOT NULL,
    public_y      TEXT    NOT NULL,
    -- Unix seconds.
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL))
);
-- At most one key signs: the index holds one row per distinct value of a constant expression.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((1)) WHERE retired_at IS NULL;
