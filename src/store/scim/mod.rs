//! SCIM tables: provisioned users and groups, their members, and SCIM bearer tokens. The
//! functions here are small and typed; the decisions (uniqueness answers, revival, reconcile)
//! are made by `crate::scim::service`, which calls them inside one write transaction.
//!
//! - [`users`]: `scim_users` and the link to the login identity in `users`.
//! - [`groups`]: `scim_groups` and `scim_members`, one member row at a time.
//! - [`tokens`]: `scim_tokens`, SHA-256 hashes only.
//! - [`filter_sql`]: a checked SCIM filter translated into parameterised SQL.

pub mod filter_sql;
pub mod groups;
pub mod tokens;
pub mod users;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::error::{Result, StoreError};
use crate::config::GroupKey;

/// The group keys (by `key`: the group's externalId or displayName) of the SCIM groups the
/// user is a member of; `None` when the user was never provisioned over SCIM. A group without
/// an externalId is keyed by its SCIM id under `GroupKey::Id`.
pub fn groups_of_user(
    conn: &Connection,
    user_id: i64,
    key: GroupKey,
) -> Result<Option<Vec<String>>> {
    let member: Option<i64> = conn
        .prepare_cached("SELECT id FROM scim_users WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?;
    let Some(member) = member else {
        return Ok(None);
    };
    let sql = match key {
        GroupKey::Id => {
            "SELECT coalesce(g.external_id, g.scim_id) FROM scim_members m
             JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = ?1 ORDER BY m.group_id"
        }
        GroupKey::Name => {
            "SELECT g.display_name FROM scim_members m
             JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = ?1 ORDER BY m.group_id"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let keys = stmt.query_map([member], |r| r.get(0))?;
    Ok(Some(keys.collect::<rusqlite::Result<_>>()?))
}

/// Encode a stored document.
fn encode(doc: &Map<String, Value>) -> Result<String> {
    Ok(serde_json::to_string(doc)?)
}

/// Decode a stored document.
fn decode(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text)? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt(
            "a SCIM document is not a JSON object".into(),
        )),
    }
}

/// A unique index refusing a row is a conflict (409), not an internal error.
fn conflict(e: rusqlite::Error, what: &str) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(what.to_owned()),
        _ => StoreError::from(e),
    }
}

/// Case folding of unique names (userName, group displayName): full Unicode lower case, done
/// here rather than with SQLite's ASCII-only NOCASE.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests;
