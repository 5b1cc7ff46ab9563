//! The append-only audit log: one row per membership added or removed and per notable event,
//! naming what triggered it (a login, a SCIM request, a config reload...).

use rusqlite::{Connection, params};
use serde::Serialize;

use super::error::Result;

/// What caused a change, carried down to every audit row it writes.
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    /// `login`, `scim`, `config`, `admin` or `cli`.
    pub kind: &'static str,
    /// The HTTP request id, when there is one.
    pub request_id: Option<String>,
    /// A short human description (the SCIM method and path, the config file...).
    pub detail: Option<String>,
}

impl Trigger {
    pub fn new(kind: &'static str, request_id: Option<String>, detail: Option<String>) -> Self {
        Self {
            kind,
            request_id,
            detail,
        }
    }
}

/// One audit row to write.
#[derive(Debug, Default)]
pub struct Entry<'a> {
    pub user_id: Option<i64>,
    pub user_label: Option<&'a str>,
    pub action: &'a str,
    pub team: Option<&'a str>,
    pub source: Option<&'a str>,
    pub via: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub fn record(conn: &Connection, at: &str, trigger: &Trigger, e: &Entry<'_>) -> Result<()> {
    let detail = match (e.detail, &trigger.detail) {
        (Some(d), _) => Some(d.to_owned()),
        (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    };
    conn.prepare_cached(
        "INSERT INTO audit (at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        at,
        trigger.kind,
        trigger.request_id,
        e.user_id,
        e.user_label,
        e.action,
        e.team,
        e.source,
        e.via,
        detail
    ])?;
    Ok(())
}

/// An audit row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub trigger: String,
    pub request_id: Option<String>,
    pub user_id: Option<i64>,
    pub user_label: Option<String>,
    pub action: String,
    pub team: Option<String>,
    pub source: Option<String>,
    pub via: Option<String>,
    pub detail: Option<String>,
}

/// The audit rows about one user, oldest first.
pub fn for_user(conn: &Connection, user_id: i64) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail
         FROM audit WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([user_id], row_to_audit)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn row_to_audit(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at: r.get(1)?,
        trigger: r.get(2)?,
        request_id: r.get(3)?,
        user_id: r.get(4)?,
        user_label: r.get(5)?,
        action: r.get(6)?,
        team: r.get(7)?,
        source: r.get(8)?,
        via: r.get(9)?,
        detail: r.get(10)?,
    })
}
