//! `scim_groups` and `scim_members`. Members are changed one row at a time through the
//! primary key (group, member), so a change costs the same for any group size; nothing here
//! reads a member list except the functions whose job is to return one.

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Map;

use super::filter_sql::SqlFilter;
use super::users::tenant_key;
use super::{conflict, decode, encode};
use crate::store::error::Result;
use crate::store::scim::{GroupRow, GroupValues, Member, MemberRef, Realm, fold};

const COLUMNS: &str = "r.id, r.scim_id, r.provider, r.display_name, r.external_id, r.doc, r.version, r.created_at, r.updated_at, r.tenant";

fn read(r: &Row<'_>) -> rusqlite::Result<(GroupRow, String)> {
    Ok((
        GroupRow {
            pk: r.get(0)?,
            scim_id: r.get(1)?,
            provider: r.get(2)?,
            tenant: Some(r.get::<_, String>(9)?).filter(|t| !t.is_empty()),
            display_name: r.get(3)?,
            external_id: r.get(4)?,
            doc: Map::new(),
            version: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
        },
        r.get(5)?,
    ))
}

fn finish((mut row, doc): (GroupRow, String)) -> Result<GroupRow> {
    row.doc = decode(&doc)?;
    Ok(row)
}

/// The group `scim_id` of `realm`; another provider's or tenant's group is not found.
pub fn get(conn: &Connection, realm: &Realm, scim_id: &str) -> Result<Option<GroupRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_groups r WHERE r.scim_id = ?1 AND r.provider = ?2 AND r.tenant = ?3"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![scim_id, realm.provider, tenant_key(realm)], read)
        .optional()?
        .map(finish)
        .transpose()
}

/// The group whose displayName equals `name` case-insensitively.
pub fn by_display_name(conn: &Connection, realm: &Realm, name: &str) -> Result<Option<GroupRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_groups r WHERE r.provider = ?1 AND r.tenant = ?2 AND r.display_name_key = ?3"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![realm.provider, tenant_key(realm), fold(name)], read)
        .optional()?
        .map(finish)
        .transpose()
}

pub fn insert(
    conn: &Connection,
    realm: &Realm,
    scim_id: &str,
    v: &GroupValues<'_>,
    now: &str,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO scim_groups (scim_id, provider, display_name, display_name_key, external_id, doc,
                                  version, created_at, updated_at, tenant)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?8)",
    )?
    .execute(params![
        scim_id,
        realm.provider,
        v.display_name,
        fold(v.display_name),
        v.external_id,
        encode(v.doc)?,
        now,
        tenant_key(realm)
    ])
    .map_err(|e| conflict(e, "displayName already provisioned"))?;
    Ok(conn.last_insert_rowid())
}

/// Replace a group's values and bump its version.
pub fn update(conn: &Connection, pk: i64, v: &GroupValues<'_>, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE scim_groups SET display_name = ?2, display_name_key = ?3, external_id = ?4, doc = ?5,
                version = version + 1, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![pk, v.display_name, fold(v.display_name), v.external_id, encode(v.doc)?, now])
    .map_err(|e| conflict(e, "displayName already provisioned"))?;
    Ok(())
}

/// Bump a group's version after a member change; one row, whatever the group's size.
pub fn touch(conn: &Connection, pk: i64, now: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE scim_groups SET version = version + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![pk, now])?;
    Ok(())
}

pub fn delete(conn: &Connection, pk: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM scim_groups WHERE id = ?1")?
        .execute([pk])?;
    Ok(())
}

/// A page of `provider`'s groups matching `filter`, in stable id order, and the total count.
pub fn list(
    conn: &Connection,
    realm: &Realm,
    filter: Option<&SqlFilter>,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<GroupRow>)> {
    let (clause, mut args) = SqlFilter::clause(filter, realm);
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM scim_groups r WHERE {clause}"
        ))?
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
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_groups r WHERE {clause} ORDER BY r.id LIMIT ? OFFSET ?"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), read)?;
    let rows = rows.map(|r| finish(r?)).collect::<Result<Vec<_>>>()?;
    Ok((usize::try_from(total).unwrap_or(0), rows))
}

/// Add one member; false when it already was one.
pub fn add_member(conn: &Connection, group: i64, member: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("INSERT OR IGNORE INTO scim_members (group_id, member_id) VALUES (?1, ?2)")?
        .execute(params![group, member])?
        > 0)
}

/// Remove one member; false when it was not one.
pub fn remove_member(conn: &Connection, group: i64, member: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM scim_members WHERE group_id = ?1 AND member_id = ?2")?
        .execute(params![group, member])?
        > 0)
}

/// Every member of a group, for rendering it. Only called when `members` is wanted.
pub fn members(conn: &Connection, group: i64) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.scim_id,
                CASE WHEN json_type(u.doc, '$.displayName') = 'text' THEN json_extract(u.doc, '$.displayName') END
         FROM scim_members m
         JOIN scim_users u ON u.id = m.member_id WHERE m.group_id = ?1 ORDER BY m.member_id",
    )?;
    let rows = stmt.query_map([group], |r| {
        Ok(Member {
            scim_id: r.get(0)?,
            display: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (member row id, login identity) of every member: for operations that affect them all
/// (replacing the member list, deleting or renaming a mapped group).
pub fn member_identities(conn: &Connection, group: i64) -> Result<Vec<MemberRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.member_id, u.user_id FROM scim_members m JOIN scim_users u ON u.id = m.member_id
         WHERE m.group_id = ?1",
    )?;
    let rows = stmt.query_map([group], |r| {
        Ok(MemberRef {
            member: r.get(0)?,
            user_id: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Remove every member of a group.
pub fn remove_all_members(conn: &Connection, group: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM scim_members WHERE group_id = ?1")?
        .execute([group])?)
}
