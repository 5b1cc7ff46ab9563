//! The `users` table: people seen through a login or a SCIM push, keyed by (provider,
//! subject), with the groups their last login carried.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::error::{Result, StoreError};

/// A stored user.
#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub id: i64,
    /// The stable opaque id given to applications (`X-Teamgate-User`, assertion `sub`).
    pub public_id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub active: bool,
    pub session_generation: i64,
    /// Group keys from the last login; `None` when never known.
    pub claims_groups: Option<Vec<String>>,
    pub claims_groups_at: Option<String>,
    pub last_login_at: Option<String>,
}

impl UserRecord {
    /// What to call the user in logs and audit rows.
    pub fn label(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.provider, self.subject))
    }
}

const COLUMNS: &str = "id, public_id, provider, subject, email, email_verified, name, active,
    session_generation, claims_groups, claims_groups_at, last_login_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(UserRecord, Option<String>)> {
    Ok((
        UserRecord {
            id: r.get(0)?,
            public_id: r.get(1)?,
            provider: r.get(2)?,
            subject: r.get(3)?,
            email: r.get(4)?,
            email_verified: r.get(5)?,
            name: r.get(6)?,
            active: r.get(7)?,
            session_generation: r.get(8)?,
            claims_groups: None,
            claims_groups_at: r.get(10)?,
            last_login_at: r.get(11)?,
        },
        r.get(9)?,
    ))
}

fn decode_one((mut user, groups): (UserRecord, Option<String>)) -> Result<UserRecord> {
    user.claims_groups = groups.map(|g| serde_json::from_str(&g)).transpose()?;
    Ok(user)
}

fn decode(row: Option<(UserRecord, Option<String>)>) -> Result<Option<UserRecord>> {
    row.map(decode_one).transpose()
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    decode(
        conn.prepare_cached(&sql)?
            .query_row([id], from_row)
            .optional()?,
    )
}

pub fn by_subject(conn: &Connection, provider: &str, subject: &str) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE provider = ?1 AND subject = ?2");
    decode(
        conn.prepare_cached(&sql)?
            .query_row(params![provider, subject], from_row)
            .optional()?,
    )
}

/// Users whose email, public id or `provider:subject` equals `key` (case-insensitive email).
pub fn find(conn: &Connection, key: &str) -> Result<Vec<UserRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE email = ?1 COLLATE NOCASE OR public_id = ?1
         OR provider || ':' || subject = ?1 ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([key], from_row)?;
    rows.map(|r| decode_one(r?)).collect()
}

pub fn all_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM users ORDER BY id")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// What a successful login tells us about the user.
#[derive(Debug, Clone)]
pub struct LoginProfile {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// `None`: membership could not be resolved (e.g. Graph failed): keep what is stored.
    pub claims_groups: Option<Vec<String>>,
}

/// Create or update the user a login describes; returns the stored user.
pub fn upsert_from_login(conn: &Connection, p: &LoginProfile, now: &str) -> Result<UserRecord> {
    let groups = p
        .claims_groups
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let public_id = super::random_id();
    conn.prepare_cached(
        "INSERT INTO users (public_id, provider, subject, email, email_verified, name,
                            claims_groups, claims_groups_at, created_at, updated_at, last_login_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?7 IS NULL THEN NULL ELSE ?8 END, ?8, ?8, ?8)
         ON CONFLICT (provider, subject) DO UPDATE SET
            email = excluded.email,
            email_verified = excluded.email_verified,
            name = excluded.name,
            claims_groups = COALESCE(excluded.claims_groups, users.claims_groups),
            claims_groups_at = COALESCE(excluded.claims_groups_at, users.claims_groups_at),
            updated_at = excluded.updated_at,
            last_login_at = excluded.last_login_at",
    )?
    .execute(params![
        public_id,
        p.provider,
        p.subject,
        p.email,
        p.email_verified,
        p.name,
        groups,
        now
    ])?;
    by_subject(conn, &p.provider, &p.subject)?.ok_or(StoreError::NotFound)
}
