//! `scim_users`: provisioned users, and their link to the login identity (`users`), keyed by
//! (provider, subject) where the subject is the SCIM externalId (Entra `oid`, Okta user id).

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Map;

use super::filter_sql::SqlFilter;
use super::{conflict, decode, encode};
use crate::store::error::Result;
use crate::store::scim::{MemberRef, Realm, UserRow, UserValues, fold};

const COLUMNS: &str = "r.id, r.scim_id, r.provider, r.user_id, r.external_id, r.active, r.doc, r.version, r.created_at, r.updated_at, r.tenant";

fn read(r: &Row<'_>) -> rusqlite::Result<(UserRow, String)> {
    Ok((
        UserRow {
            pk: r.get(0)?,
            scim_id: r.get(1)?,
            provider: r.get(2)?,
            tenant: Some(r.get::<_, String>(10)?).filter(|t| !t.is_empty()),
            user_id: r.get(3)?,
            external_id: r.get(4)?,
            active: r.get(5)?,
            doc: Map::new(),
            version: r.get(7)?,
            created_at: r.get(8)?,
            updated_at: r.get(9)?,
        },
        r.get(6)?,
    ))
}

fn finish((mut row, doc): (UserRow, String)) -> Result<UserRow> {
    row.doc = decode(&doc)?;
    Ok(row)
}

fn one(conn: &Connection, where_: &str, p: impl rusqlite::Params) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scim_users r WHERE {where_}");
    conn.prepare_cached(&sql)?
        .query_row(p, read)
        .optional()?
        .map(finish)
        .transpose()
}

/// The tenant column's value for `realm`: '' when it has none.
pub(super) fn tenant_key(realm: &Realm) -> &str {
    realm.tenant.as_deref().unwrap_or_default()
}

/// The user `scim_id` of `realm`; another provider's or tenant's user is not found (security
/// cases 78, J1).
pub fn get(conn: &Connection, realm: &Realm, scim_id: &str) -> Result<Option<UserRow>> {
    one(
        conn,
        "r.scim_id = ?1 AND r.provider = ?2 AND r.tenant = ?3",
        params![scim_id, realm.provider, tenant_key(realm)],
    )
}

/// The user whose userName equals `user_name` case-insensitively.
pub fn by_user_name(conn: &Connection, realm: &Realm, user_name: &str) -> Result<Option<UserRow>> {
    one(
        conn,
        "r.provider = ?1 AND r.tenant = ?2 AND r.user_name_key = ?3",
        params![realm.provider, tenant_key(realm), fold(user_name)],
    )
}

/// Users of `realm` without an externalId whose userName or one of whose emails equals
/// `email` case-insensitively (emails compared with NOCASE, then exactly by the caller).
/// Only a login's first sign-in with `match_by_email` asks, so a scan of the realm's users
/// without externalId is acceptable.
pub fn by_email(conn: &Connection, realm: &Realm, email: &str) -> Result<Vec<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_users r
         WHERE r.provider = ?1 AND r.tenant = ?2 AND r.external_id IS NULL
           AND (r.user_name_key = ?3 OR EXISTS (
                SELECT 1 FROM json_each(r.doc, '$.emails') e
                WHERE json_extract(e.value, '$.value') = ?4 COLLATE NOCASE))
         ORDER BY r.id LIMIT 10"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![realm.provider, tenant_key(realm), fold(email), email],
        read,
    )?;
    rows.map(|r| finish(r?)).collect()
}

/// The SCIM user linked to login identity `user_id`.
pub fn by_user_id(conn: &Connection, user_id: i64) -> Result<Option<UserRow>> {
    one(conn, "r.user_id = ?1", params![user_id])
}

pub fn insert(
    conn: &Connection,
    realm: &Realm,
    scim_id: &str,
    user_id: i64,
    v: &UserValues<'_>,
    now: &str,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO scim_users (scim_id, provider, user_id, user_name, user_name_key, external_id,
                                 active, doc, version, created_at, updated_at, tenant)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10)",
    )?
    .execute(params![
        scim_id,
        realm.provider,
        user_id,
        v.user_name,
        fold(v.user_name),
        v.external_id,
        v.active,
        encode(v.doc)?,
        now,
        tenant_key(realm)
    ])
    .map_err(|e| conflict(e, "userName or externalId already provisioned"))?;
    Ok(conn.last_insert_rowid())
}

/// Replace a user's values and bump its version.
pub fn update(conn: &Connection, pk: i64, v: &UserValues<'_>, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE scim_users SET user_name = ?2, user_name_key = ?3, external_id = ?4, active = ?5,
                doc = ?6, version = version + 1, updated_at = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        pk,
        v.user_name,
        fold(v.user_name),
        v.external_id,
        v.active,
        encode(v.doc)?,
        now
    ])
    .map_err(|e| conflict(e, "userName already provisioned"))?;
    Ok(())
}

/// Point a SCIM user at another login identity (its externalId was set, changed or removed).
pub fn relink(conn: &Connection, pk: i64, user_id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE scim_users SET user_id = ?2 WHERE id = ?1")?
        .execute(params![pk, user_id])
        .map_err(|e| conflict(e, "externalId already provisioned"))?;
    Ok(())
}

/// Delete a SCIM user; its memberships go with it (foreign key cascade).
pub fn delete(conn: &Connection, pk: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM scim_users WHERE id = ?1")?
        .execute([pk])?;
    Ok(())
}

/// A page of `provider`'s users matching `filter`, in stable id order, and the total count.
/// `limit == 0` counts without reading rows (RFC 7644 §3.4.2.4 `count=0`).
pub fn list(
    conn: &Connection,
    realm: &Realm,
    filter: Option<&SqlFilter>,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<UserRow>)> {
    let (clause, mut args) = SqlFilter::clause(filter, realm);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM scim_users r WHERE {clause}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    if limit == 0 {
        return Ok((usize::try_from(total).unwrap_or(0), Vec::new()));
    }
    args.push(rusqlite::types::Value::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX),
    ));
    args.push(rusqlite::types::Value::Integer(
        i64::try_from(offset).unwrap_or(i64::MAX),
    ));
    let sql =
        format!("SELECT {COLUMNS} FROM scim_users r WHERE {clause} ORDER BY r.id LIMIT ? OFFSET ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), read)?;
    let rows = rows.map(|r| finish(r?)).collect::<Result<Vec<_>>>()?;
    Ok((usize::try_from(total).unwrap_or(0), rows))
}

/// A user's row id and login identity, by SCIM id (to resolve a group member).
pub fn resolve(conn: &Connection, realm: &Realm, scim_id: &str) -> Result<Option<MemberRef>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id FROM scim_users WHERE scim_id = ?1 AND provider = ?2 AND tenant = ?3",
        )?
        .query_row(params![scim_id, realm.provider, tenant_key(realm)], |r| {
            Ok(MemberRef {
                member: r.get(0)?,
                user_id: r.get(1)?,
            })
        })
        .optional()?)
}

/// Login identities of SCIM users (any provider) whose folded userName is `folded`.
pub fn identities_by_user_name(conn: &Connection, folded: &str) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM scim_users WHERE user_name_key = ?1 ORDER BY id")?;
    let ids = stmt.query_map([folded], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// The groups a user is a direct member of: (SCIM id, displayName), for its `groups` attribute.
pub fn groups(conn: &Connection, pk: i64) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.scim_id, g.display_name FROM scim_members m JOIN scim_groups g ON g.id = m.group_id
         WHERE m.member_id = ?1 ORDER BY m.group_id",
    )?;
    let rows = stmt.query_map([pk], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
