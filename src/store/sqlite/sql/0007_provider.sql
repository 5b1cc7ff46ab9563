-- teamgate as an OpenID provider for applications (issue 15).

-- teamgate's RS256 keys, beside the ES256 ones of signing_keys: ID tokens are RS256 by default
-- (the algorithm every OpenID relying party accepts). Same life cycle: one key signs at a time,
-- a retired key stays published until the last token it signed has expired.
CREATE TABLE rsa_signing_keys (
    -- RFC 7638 JWK thumbprint (SHA-256, base64url).
    kid           TEXT    PRIMARY KEY,
    -- PKCS#8 DER of the private key.
    private_der   BLOB    NOT NULL,
    -- The public modulus and exponent, base64url (RFC 7518 §6.3.1).
    public_n      TEXT    NOT NULL,
    public_e      TEXT    NOT NULL,
    -- Unix seconds.
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER,
    CHECK ((retired_at IS NULL) = (publish_until IS NULL))
);
CREATE UNIQUE INDEX rsa_signing_keys_one_current ON rsa_signing_keys ((1)) WHERE retired_at IS NULL;

-- One authorization of a client by a signed-in user: the authorization code and everything the
-- token endpoint must check it against. The grant belongs to the teamgate session it was made
-- in: when that session ends (sign-out, expiry, deprovisioning, sign out everywhere) the grant
-- and every token issued under it go with it, through the foreign keys.
CREATE TABLE oauth_grants (
    id                 INTEGER PRIMARY KEY,
    client_id          TEXT    NOT NULL,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sessions.id: the SHA-256 of the session id.
    session_id         TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The user's session generation when the grant was made; a bump revokes the grant.
    session_generation INTEGER NOT NULL,
    -- SHA-256 of the authorization code; the code itself is never stored.
    code_hash          BLOB    NOT NULL UNIQUE,
    code_expires_at    INTEGER NOT NULL,
    -- When the code was redeemed (a second redemption is a replay and revokes the grant).
    code_used_at       INTEGER,
    redirect_uri       TEXT    NOT NULL,
    -- RFC 7636 S256 challenge, when the client sent one.
    code_challenge     TEXT,
    nonce              TEXT,
    -- Space-separated granted scopes.
    scopes             TEXT    NOT NULL,
    -- When the user authenticated (the session's login), unix seconds.
    auth_time          INTEGER NOT NULL,
    -- No token of the grant outlives this (the session's absolute lifetime).
    expires_at         INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL
);
CREATE INDEX oauth_grants_session ON oauth_grants (session_id);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
CREATE INDEX oauth_grants_expiry ON oauth_grants (expires_at);

-- Access and refresh tokens, by the SHA-256 of their value.
CREATE TABLE oauth_tokens (
    hash       BLOB    PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at INTEGER NOT NULL,
    -- A refresh token is used once: the rotation sets this, and a second use revokes the grant.
    used_at    INTEGER
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
