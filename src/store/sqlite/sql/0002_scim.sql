-- SCIM 2.0 provisioning (RFC 7643/7644): users, groups, members and bearer tokens.

-- One row per provisioned user. `doc` is the resource exactly as the IdP sent it (canonical
-- attribute names, values untouched; no id, meta, password or groups). The columns beside it are
-- copies kept for indexes and filters. `user_id` links to the login identity: the `users` row
-- with (provider, subject = externalId), or subject "scim:<scim_id>" when no externalId was sent.
CREATE TABLE scim_users (
    id            INTEGER PRIMARY KEY,
    scim_id       TEXT    NOT NULL UNIQUE,
    provider      TEXT    NOT NULL,
    user_id       INTEGER NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    user_name     TEXT    NOT NULL,
    -- userName folded to lower case (full Unicode, in Rust): uniqueness and filters are
    -- case-insensitive (RFC 7643 §4.1.1) and still use the index.
    user_name_key TEXT    NOT NULL,
    external_id   TEXT,
    active        INTEGER NOT NULL,
    doc           TEXT    NOT NULL,
    -- Bumped on every change; the weak ETag is W/"<version>" (RFC 7644 §3.14).
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (provider, user_name_key);
-- No index on external_id: `externalId eq` goes through users (provider, subject), which is the
-- same value for every user that has one.
-- Paging walks a provider's rows in id order: stable while rows are added (K1).
CREATE INDEX scim_users_provider ON scim_users (provider, id);

CREATE TABLE scim_groups (
    id               INTEGER PRIMARY KEY,
    scim_id          TEXT    NOT NULL UNIQUE,
    provider         TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    -- Unique per provider, case-insensitively, like the team mappings that may name it.
    display_name_key TEXT    NOT NULL,
    external_id      TEXT,
    doc              TEXT    NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (provider, display_name_key);
CREATE INDEX scim_groups_external_id ON scim_groups (provider, external_id);
CREATE INDEX scim_groups_provider ON scim_groups (provider, id);

-- Group membership, one row per (group, member): adding or removing one member is one indexed
-- row whatever the group's size; reading a user's groups uses the second index.
CREATE TABLE scim_members (
    group_id  INTEGER NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    member_id INTEGER NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX scim_members_member ON scim_members (member_id, group_id);

-- Bearer tokens of `teamgate scim-token create PROVIDER`. Only the SHA-256 of a token is kept:
-- a copy of the database holds no usable credential. Several live tokens per provider allow
-- rotation with overlap (RFC 7644 §7.4).
CREATE TABLE scim_tokens (
    id         INTEGER PRIMARY KEY,
    public_id  TEXT    NOT NULL UNIQUE,
    provider   TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    -- Unix seconds.
    expires_at INTEGER NOT NULL,
    revoked_at TEXT,
    note       TEXT
);
CREATE INDEX scim_tokens_provider ON scim_tokens (provider, id);
