-- Users seen through any source. (provider, subject) is the stable identity: the OIDC `sub`
-- (Entra: the `oid` claim), equal to the SCIM externalId of the same person.
CREATE TABLE users (
    id                 INTEGER PRIMARY KEY,
    public_id          TEXT    NOT NULL UNIQUE,
    provider           TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    email              TEXT,
    email_verified     INTEGER NOT NULL DEFAULT 0,
    name               TEXT,
    active             INTEGER NOT NULL DEFAULT 1,
    -- Bumped to revoke every session minted before (deprovisioning, sign out everywhere).
    session_generation INTEGER NOT NULL DEFAULT 0,
    -- JSON array of group keys from the last login; NULL when never seen.
    claims_groups      TEXT,
    claims_groups_at   TEXT,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    last_login_at      TEXT,
    UNIQUE (provider, subject)
);
CREATE INDEX users_email ON users (email COLLATE NOCASE);

-- Teams, their role bindings and group mappings: a copy of the config file, synced at start
-- and on reload.
CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE role_bindings (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    scope   TEXT NOT NULL,
    role    TEXT NOT NULL,
    PRIMARY KEY (team_id, scope, role)
);
CREATE TABLE mappings (
    provider  TEXT NOT NULL,
    group_key TEXT NOT NULL,
    team_id   TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (provider, group_key, team_id)
);

-- Who is in which team, from which source, through which group.
CREATE TABLE memberships (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id      TEXT    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    source       TEXT    NOT NULL,
    via          TEXT    NOT NULL DEFAULT '',
    since        TEXT    NOT NULL,
    confirmed_at TEXT    NOT NULL,
    PRIMARY KEY (user_id, team_id, source, via)
);
CREATE INDEX memberships_team ON memberships (team_id);

-- Append-only: one row per membership added or removed, and other notable events.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT    NOT NULL,
    trigger    TEXT    NOT NULL,   -- login | scim | config | admin | cli
    request_id TEXT,
    user_id    INTEGER,
    user_label TEXT,
    action     TEXT    NOT NULL,   -- membership.add | membership.remove | ...
    team_id    TEXT,
    source     TEXT,
    via        TEXT,
    detail     TEXT
);
CREATE INDEX audit_user ON audit (user_id, at);
CREATE INDEX audit_team ON audit (team_id, at);
CREATE INDEX audit_at ON audit (at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- tower-sessions records, indexed by user for revocation.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    data       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Key-value facts about this installation (demo IdP key, and so on).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
