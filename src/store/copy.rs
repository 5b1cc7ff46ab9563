//! Moving an install from SQLite to PostgreSQL (`teamgate migrate-db`): every table, row for
//! row (ids kept, so references and audit rows stay true), into an empty, migrated PostgreSQL
//! database in one transaction, then the row counts of both compared. The tables and their
//! column types are listed here once; [`super::sqlite::export`] reads them and
//! [`super::postgres::import`] writes them, so neither backend's types cross.

/// How a column is carried between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Int,
    Text,
    /// SQLite's 0/1, PostgreSQL's BOOLEAN.
    Bool,
    Blob,
    /// SQLite's JSON text, PostgreSQL's JSONB.
    Json,
}

/// One value in transit.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

use Col::{Blob, Bool, Int, Json, Text};

/// Every table, parents before children, with its columns. Mirror every migration here.
/// `session_stats` is not copied: the target's triggers count the sessions as they arrive.
pub const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "users",
        &[
            ("id", Int),
            ("public_id", Text),
            ("provider", Text),
            ("subject", Text),
            ("email", Text),
            ("email_verified", Bool),
            ("name", Text),
            ("active", Bool),
            ("session_generation", Int),
            ("claims_groups", Text),
            ("claims_groups_at", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("last_login_at", Text),
        ],
    ),
    (
        "teams",
        &[("id", Text), ("name", Text), ("updated_at", Text)],
    ),
    (
        "role_bindings",
        &[("team_id", Text), ("scope", Text), ("role", Text)],
    ),
    (
        "mappings",
        &[("provider", Text), ("group_key", Text), ("team_id", Text)],
    ),
    (
        "memberships",
        &[
            ("user_id", Int),
            ("team_id", Text),
            ("source", Text),
            ("via", Text),
            ("since", Text),
            ("confirmed_at", Text),
        ],
    ),
    (
        "audit",
        &[
            ("id", Int),
            ("at", Text),
            ("trigger", Text),
            ("request_id", Text),
            ("user_id", Int),
            ("user_label", Text),
            ("action", Text),
            ("team_id", Text),
            ("source", Text),
            ("via", Text),
            ("detail", Text),
        ],
    ),
    (
        "sessions",
        &[
            ("id", Text),
            ("user_id", Int),
            ("data", Text),
            ("expires_at", Int),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("client_ip", Text),
            ("user_agent", Text),
        ],
    ),
    ("settings", &[("key", Text), ("value", Text)]),
    (
        "scim_users",
        &[
            ("id", Int),
            ("scim_id", Text),
            ("provider", Text),
            ("user_id", Int),
            ("user_name", Text),
            ("user_name_key", Text),
            ("external_id", Text),
            ("active", Bool),
            ("doc", Json),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
            ("tenant", Text),
        ],
    ),
    (
        "scim_groups",
        &[
            ("id", Int),
            ("scim_id", Text),
            ("provider", Text),
            ("display_name", Text),
            ("display_name_key", Text),
            ("external_id", Text),
            ("doc", Json),
            ("version", Int),
            ("created_at", Text),
            ("updated_at", Text),
            ("tenant", Text),
        ],
    ),
    ("scim_members", &[("group_id", Int), ("member_id", Int)]),
    (
        "scim_tokens",
        &[
            ("id", Int),
            ("public_id", Text),
            ("provider", Text),
            ("hash", Blob),
            ("created_at", Text),
            ("expires_at", Int),
            ("revoked_at", Text),
            ("note", Text),
            ("tenant", Text),
        ],
    ),
    (
        "signing_keys",
        &[
            ("kid", Text),
            ("private_der", Blob),
            ("public_x", Text),
            ("public_y", Text),
            ("created_at", Int),
            ("retired_at", Int),
            ("publish_until", Int),
        ],
    ),
    (
        "rsa_signing_keys",
        &[
            ("kid", Text),
            ("private_der", Blob),
            ("public_n", Text),
            ("public_e", Text),
            ("created_at", Int),
            ("retired_at", Int),
            ("publish_until", Int),
        ],
    ),
    (
        "oauth_grants",
        &[
            ("id", Int),
            ("client_id", Text),
            ("user_id", Int),
            ("session_id", Text),
            ("session_generation", Int),
            ("code_hash", Blob),
            ("code_expires_at", Int),
            ("code_used_at", Int),
            ("redirect_uri", Text),
            ("code_challenge", Text),
            ("nonce", Text),
            ("scopes", Text),
            ("auth_time", Int),
            ("expires_at", Int),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
    ),
    (
        "oauth_tokens",
        &[
            ("hash", Blob),
            ("grant_id", Int),
            ("kind", Text),
            ("expires_at", Int),
            ("used_at", Int),
        ],
    ),
    (
        "refresh_grants",
        &[
            ("user_id", Int),
            ("provider", Text),
            ("issuer", Text),
            ("sub", Text),
            ("subject", Text),
            ("token", Blob),
            ("login_id", Text),
            ("interval_ms", Int),
            ("next_at", Int),
            ("until_at", Int),
            ("claimed_until", Int),
        ],
    ),
];

/// Tables whose `id` is generated: their sequences are moved past the copied ids.
pub const IDENTITY_TABLES: &[&str] = &[
    "users",
    "audit",
    "scim_users",
    "scim_groups",
    "scim_tokens",
    "oauth_grants",
];

/// Rows per table after a copy: (table, in the source, in the target).
pub type Counts = Vec<(&'static str, i64, i64)>;
