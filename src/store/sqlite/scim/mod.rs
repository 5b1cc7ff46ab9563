//! SCIM tables: provisioned users and groups, their members, and SCIM bearer tokens, and the
//! SCIM part of [`SqliteTx`]'s operations. The decisions (uniqueness answers, revival,
//! reconcile) are made by `crate::provisioning`, which calls these inside one write.
//!
//! - [`users`]: `scim_users` and the link to the login identity in `users`.
//! - [`groups`]: `scim_groups` and `scim_members`, one member row at a time.
//! - [`tokens`]: `scim_tokens`, SHA-256 hashes only.
//! - [`filter_sql`]: a checked SCIM filter translated into parameterised SQL.

pub mod filter_sql;
pub mod groups;
pub mod tokens;
pub mod users;

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::SqliteTx;
use crate::config::GroupKey;
use crate::domain::scim::ResourceType;
use crate::domain::scim::filter::Cond;
use crate::domain::tenant::qualify;
use crate::store::error::{Result, StoreError};
use crate::store::port::{ScimReads, ScimWrites};
use crate::store::scim::{
    GroupRow, GroupValues, Member, MemberRef, NewToken, Page, Realm, ScimCounts, TokenRow, UserRow,
    UserValues,
};

/// The group keys (by `key`: the group's externalId or displayName) of the SCIM groups the
/// user is a member of, qualified by the group's tenant (`domain::tenant::qualify`); `None`
/// when the user was never provisioned over SCIM. A group without an externalId is keyed by
/// its SCIM id under `GroupKey::Id`.
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
            "SELECT g.tenant, coalesce(g.external_id, g.scim_id) FROM scim_members m
             JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = ?1 ORDER BY m.group_id"
        }
        GroupKey::Name => {
            "SELECT g.tenant, g.display_name FROM scim_members m
             JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = ?1 ORDER BY m.group_id"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let keys = stmt.query_map([member], |r| {
        let tenant: String = r.get(0)?;
        let key: String = r.get(1)?;
        Ok(qualify(
            Some(tenant.as_str()).filter(|t| !t.is_empty()),
            &key,
        ))
    })?;
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

/// SCIM counts per provider, from the `scim_*` tables (migration 0002).
pub fn counts(conn: &Connection, now: i64) -> Result<BTreeMap<String, ScimCounts>> {
    let mut out: BTreeMap<String, ScimCounts> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT provider, COUNT(*), COALESCE(SUM(active), 0), MAX(updated_at) FROM scim_users GROUP BY provider",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (provider, users, active, at) = row?;
        let c = out.entry(provider).or_default();
        c.users = users;
        c.active_users = active;
        c.last_change_at = at;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT g.provider, COUNT(DISTINCT g.id), COUNT(m.member_id), MAX(g.updated_at)
         FROM scim_groups g LEFT JOIN scim_members m ON m.group_id = g.id GROUP BY g.provider",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (provider, groups, members, at) = row?;
        let c = out.entry(provider).or_default();
        c.groups = groups;
        c.memberships = members;
        if at > c.last_change_at {
            c.last_change_at = at;
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT provider, COUNT(*) FROM scim_tokens WHERE revoked_at IS NULL AND expires_at > ?1 GROUP BY provider",
    )?;
    let rows = stmt.query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (provider, n) = row?;
        out.entry(provider).or_default().live_tokens = n;
    }
    Ok(out)
}

fn translated(
    rt: ResourceType,
    filter: Option<&Cond>,
    realm: &Realm,
) -> Result<Option<filter_sql::SqlFilter>> {
    filter
        .map(|cond| {
            filter_sql::translate(rt, cond, realm).map_err(|e| StoreError::Unsupported(e.0))
        })
        .transpose()
}

impl ScimReads for SqliteTx<'_> {
    fn scim_user(&self, realm: &Realm, scim_id: &str) -> Result<Option<UserRow>> {
        users::get(self.conn, realm, scim_id)
    }

    fn scim_user_by_name(&self, realm: &Realm, user_name: &str) -> Result<Option<UserRow>> {
        users::by_user_name(self.conn, realm, user_name)
    }

    fn scim_users_by_email(&self, realm: &Realm, email: &str) -> Result<Vec<UserRow>> {
        users::by_email(self.conn, realm, email)
    }

    fn scim_user_of_identity(&self, user_id: i64) -> Result<Option<UserRow>> {
        users::by_user_id(self.conn, user_id)
    }

    fn identities_by_scim_user_name(&self, folded: &str) -> Result<Vec<i64>> {
        users::identities_by_user_name(self.conn, folded)
    }

    fn scim_users_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<UserRow>> {
        let sql = translated(ResourceType::User, filter, realm)?;
        let (total, items) = users::list(self.conn, realm, sql.as_ref(), offset, limit)?;
        Ok(Page { total, items })
    }

    fn scim_groups_of_member(&self, member: i64) -> Result<Vec<(String, String)>> {
        users::groups(self.conn, member)
    }

    fn scim_member(&self, realm: &Realm, scim_id: &str) -> Result<Option<MemberRef>> {
        users::resolve(self.conn, realm, scim_id)
    }

    fn scim_group_keys_of_user(&self, user_id: i64, key: GroupKey) -> Result<Option<Vec<String>>> {
        groups_of_user(self.conn, user_id, key)
    }

    fn scim_group(&self, realm: &Realm, scim_id: &str) -> Result<Option<GroupRow>> {
        groups::get(self.conn, realm, scim_id)
    }

    fn scim_group_by_name(&self, realm: &Realm, name: &str) -> Result<Option<GroupRow>> {
        groups::by_display_name(self.conn, realm, name)
    }

    fn scim_groups_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<GroupRow>> {
        let sql = translated(ResourceType::Group, filter, realm)?;
        let (total, items) = groups::list(self.conn, realm, sql.as_ref(), offset, limit)?;
        Ok(Page { total, items })
    }

    fn scim_members(&self, group: i64) -> Result<Vec<Member>> {
        groups::members(self.conn, group)
    }

    fn scim_member_refs(&self, group: i64) -> Result<Vec<MemberRef>> {
        groups::member_identities(self.conn, group)
    }

    fn scim_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenRow, Vec<u8>)>> {
        tokens::by_hash(self.conn, hash)
    }

    fn scim_tokens(&self, provider: &str) -> Result<Vec<TokenRow>> {
        tokens::list(self.conn, provider)
    }

    fn scim_counts(&self, now: i64) -> Result<BTreeMap<String, ScimCounts>> {
        counts(self.conn, now)
    }
}

impl ScimWrites for SqliteTx<'_> {
    fn insert_scim_user(
        &self,
        realm: &Realm,
        scim_id: &str,
        user_id: i64,
        values: &UserValues<'_>,
        now: &str,
    ) -> Result<i64> {
        users::insert(self.conn, realm, scim_id, user_id, values, now)
    }

    fn update_scim_user(&self, pk: i64, values: &UserValues<'_>, now: &str) -> Result<()> {
        users::update(self.conn, pk, values, now)
    }

    fn relink_scim_user(&self, pk: i64, user_id: i64) -> Result<()> {
        users::relink(self.conn, pk, user_id)
    }

    fn delete_scim_user(&self, pk: i64) -> Result<()> {
        users::delete(self.conn, pk)
    }

    fn insert_scim_group(
        &self,
        realm: &Realm,
        scim_id: &str,
        values: &GroupValues<'_>,
        now: &str,
    ) -> Result<i64> {
        groups::insert(self.conn, realm, scim_id, values, now)
    }

    fn update_scim_group(&self, pk: i64, values: &GroupValues<'_>, now: &str) -> Result<()> {
        groups::update(self.conn, pk, values, now)
    }

    fn touch_scim_group(&self, pk: i64, now: &str) -> Result<()> {
        groups::touch(self.conn, pk, now)
    }

    fn delete_scim_group(&self, pk: i64) -> Result<()> {
        groups::delete(self.conn, pk)
    }

    fn add_scim_member(&self, group: i64, member: i64) -> Result<bool> {
        groups::add_member(self.conn, group, member)
    }

    fn remove_scim_member(&self, group: i64, member: i64) -> Result<bool> {
        groups::remove_member(self.conn, group, member)
    }

    fn remove_all_scim_members(&self, group: i64) -> Result<usize> {
        groups::remove_all_members(self.conn, group)
    }

    fn insert_scim_token(&self, token: &NewToken<'_>) -> Result<()> {
        tokens::insert(self.conn, token)
    }

    fn revoke_scim_token(&self, provider: &str, public_id: &str, now: &str) -> Result<bool> {
        tokens::revoke(self.conn, provider, public_id, now)
    }
}

#[cfg(test)]
mod tests;
