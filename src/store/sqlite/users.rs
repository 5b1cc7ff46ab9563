//! The `users` table: people seen through a login or a SCIM push, keyed by (provider,
//! subject), with the groups their last login carried.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteTx;
use crate::store::error::{Result, StoreError};
use crate::store::port::{UserReads, UserWrites};
use crate::store::users::{Linked, LoginProfile, NewIdentity, Profile, UserRecord};

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

/// Create or update the user a login describes; returns the stored user.
pub fn upsert_from_login(conn: &Connection, p: &LoginProfile, now: &str) -> Result<UserRecord> {
    let groups = p
        .claims_groups
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let public_id = crate::domain::ids::random_id();
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

/// The login identity (provider, subject), created when new. An existing identity keeps its
/// email and name: linking never rewrites what a login established (security case 74); only
/// `active` follows here (a later SCIM change of the name or email goes through
/// [`set_profile`], security case J5). A SCIM email is never marked verified.
pub fn link_identity(conn: &Connection, who: &NewIdentity<'_>, now: &str) -> Result<Linked> {
    let created: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO users (public_id, provider, subject, email, email_verified, name, active,
                                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?7)
             ON CONFLICT (provider, subject) DO NOTHING
             RETURNING id",
        )?
        .query_row(
            params![
                crate::domain::ids::random_id(),
                who.provider,
                who.subject,
                who.email,
                who.name,
                who.active,
                now
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(user_id) = created {
        return Ok(Linked {
            user_id,
            created: true,
        });
    }
    let user_id = conn
        .prepare_cached(
            "UPDATE users SET active = ?3, updated_at = ?4 WHERE provider = ?1 AND subject = ?2
             RETURNING id",
        )?
        .query_row(params![who.provider, who.subject, who.active, now], |r| {
            r.get(0)
        })?;
    Ok(Linked {
        user_id,
        created: false,
    })
}

/// Set the login identity's `active` flag; true when it changed.
pub fn set_identity_active(
    conn: &Connection,
    user_id: i64,
    active: bool,
    now: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE users SET active = ?2, updated_at = ?3 WHERE id = ?1 AND active <> ?2",
        )?
        .execute(params![user_id, active, now])?
        > 0)
}

/// Give identity `user_id` another subject; `Conflict` when another identity has it.
pub fn rekey(conn: &Connection, user_id: i64, subject: &str, now: &str) -> Result<()> {
    conn.prepare_cached("UPDATE users SET subject = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![user_id, subject, now])
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => {
                StoreError::Conflict("the subject belongs to another identity".into())
            }
            _ => StoreError::from(e),
        })?;
    Ok(())
}

/// Set the identity's name and email (with whether the email is verified).
pub fn set_profile(conn: &Connection, user_id: i64, p: &Profile, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET name = ?2, email = ?3, email_verified = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![user_id, p.name, p.email, p.email_verified, now])?;
    Ok(())
}

/// One page of users, optionally those whose email, name or subject contains `search`;
/// returns the page and how many users match in all.
pub fn users_page(
    conn: &Connection,
    search: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<(Vec<UserRecord>, i64)> {
    let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let filter = "(?1 IS NULL OR email LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\'
                   OR subject LIKE ?1 ESCAPE '\\' OR public_id = ?2)";
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))?
        .query_row(params![pattern, search], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id FROM users WHERE {filter} ORDER BY email COLLATE NOCASE, id LIMIT ?3 OFFSET ?4"
    ))?;
    let ids: Vec<i64> = stmt
        .query_map(
            params![
                pattern,
                search,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(user) = by_id(conn, id)? {
            out.push(user);
        }
    }
    Ok((out, total))
}

impl UserReads for SqliteTx<'_> {
    fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        by_id(self.conn, id)
    }

    fn user_by_subject(&self, provider: &str, subject: &str) -> Result<Option<UserRecord>> {
        by_subject(self.conn, provider, subject)
    }

    fn find_users(&self, key: &str) -> Result<Vec<UserRecord>> {
        find(self.conn, key)
    }

    fn user_ids(&self) -> Result<Vec<i64>> {
        all_ids(self.conn)
    }

    fn users_page(
        &self,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<UserRecord>, i64)> {
        users_page(self.conn, search, limit, offset)
    }
}

impl UserWrites for SqliteTx<'_> {
    fn upsert_login_user(&self, profile: &LoginProfile, now: &str) -> Result<UserRecord> {
        upsert_from_login(self.conn, profile, now)
    }

    fn link_identity(&self, identity: &NewIdentity<'_>, now: &str) -> Result<Linked> {
        link_identity(self.conn, identity, now)
    }

    fn set_user_active(&self, user_id: i64, active: bool, now: &str) -> Result<bool> {
        set_identity_active(self.conn, user_id, active, now)
    }

    fn rekey_user(&self, user_id: i64, subject: &str, now: &str) -> Result<()> {
        rekey(self.conn, user_id, subject, now)
    }

    fn set_user_profile(&self, user_id: i64, profile: &Profile, now: &str) -> Result<()> {
        set_profile(self.conn, user_id, profile, now)
    }
}
