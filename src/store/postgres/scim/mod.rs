//! SCIM tables on PostgreSQL (twins of `store/sqlite/scim/`): users, groups, members, tokens,
//! and [`filter_sql`], the jsonb translation of a checked SCIM filter.

pub mod filter_sql;
pub mod groups;
pub mod tokens;
pub mod users;

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tokio_postgres::types::{Json, ToSql};

use super::{PgTx, big, get};
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

/// The tenant column's value for `realm`: '' when it has none.
pub(super) fn tenant_key(realm: &Realm) -> &str {
    realm.tenant.as_deref().unwrap_or_default()
}

/// The tenant column as stored ('' is none).
fn tenant_of(row: &tokio_postgres::Row, i: usize) -> Result<Option<String>> {
    let t: String = get(row, i)?;
    Ok(Some(t).filter(|t| !t.is_empty()))
}

/// A stored document, decoded.
fn doc(row: &tokio_postgres::Row, i: usize) -> Result<Map<String, Value>> {
    let Json(value): Json<Value> = get(row, i)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt(
            "a SCIM document is not a JSON object".into(),
        )),
    }
}

/// A SCIM table as its listings read it.
pub(super) struct Table<T> {
    name: &'static str,
    /// The columns [`Table::read`] decodes, qualified by the alias `r`.
    columns: &'static str,
    read: fn(&tokio_postgres::Row) -> Result<T>,
}

/// A page of `realm`'s rows of `table` matching `filter`, in stable id order, and the total
/// count. `limit == 0` counts without reading rows (RFC 7644 §3.4.2.4 `count=0`).
fn page<T>(
    tx: &PgTx<'_>,
    table: &Table<T>,
    realm: &Realm,
    filter: Option<&filter_sql::SqlFilter>,
    (offset, limit): (usize, usize),
) -> Result<(usize, Vec<T>)> {
    let (clause, mut args) = filter_sql::SqlFilter::clause(filter, realm);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_sql()).collect();
    // A filter makes the statement one of many: not kept in the statement cache.
    let cached = filter.is_none();
    let total: i64 = get(
        &tx.query_one_maybe_cached(
            cached,
            &format!("SELECT COUNT(*) FROM {} r WHERE {clause}", table.name),
            &params,
        )?,
        0,
    )?;
    let total = usize::try_from(total).unwrap_or(0);
    if limit == 0 {
        return Ok((total, Vec::new()));
    }
    let n = args.len();
    args.push(filter_sql::Param::Int(big(limit)));
    args.push(filter_sql::Param::Int(big(offset)));
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_sql()).collect();
    let sql = format!(
        "SELECT {} FROM {} r WHERE {clause} ORDER BY r.id LIMIT ${} OFFSET ${}",
        table.columns,
        table.name,
        n + 1,
        n + 2
    );
    let rows = tx.query_maybe_cached(cached, &sql, &params)?;
    Ok((total, rows.iter().map(table.read).collect::<Result<_>>()?))
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

impl ScimReads for PgTx<'_> {
    fn scim_user(&self, realm: &Realm, scim_id: &str) -> Result<Option<UserRow>> {
        users::one(
            self,
            "r.scim_id = $1 AND r.provider = $2 AND r.tenant = $3",
            &[&scim_id, &realm.provider, &tenant_key(realm)],
        )
    }

    fn scim_user_by_name(&self, realm: &Realm, user_name: &str) -> Result<Option<UserRow>> {
        let folded = crate::store::scim::fold(user_name);
        users::one(
            self,
            "r.provider = $1 AND r.tenant = $2 AND r.user_name_key = $3",
            &[&realm.provider, &tenant_key(realm), &folded],
        )
    }

    fn scim_users_by_email(&self, realm: &Realm, email: &str) -> Result<Vec<UserRow>> {
        users::by_email(self, realm, email)
    }

    fn scim_user_of_identity(&self, user_id: i64) -> Result<Option<UserRow>> {
        users::one(self, "r.user_id = $1", &[&user_id])
    }

    fn identities_by_scim_user_name(&self, folded: &str) -> Result<Vec<i64>> {
        self.query(
            "SELECT user_id FROM scim_users WHERE user_name_key = $1 ORDER BY id",
            &[&folded],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn scim_users_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<UserRow>> {
        let sql = translated(ResourceType::User, filter, realm)?;
        let (total, items) = page(self, &users::TABLE, realm, sql.as_ref(), (offset, limit))?;
        Ok(Page { total, items })
    }

    fn scim_groups_of_member(&self, member: i64) -> Result<Vec<(String, String)>> {
        self.query(
            "SELECT g.scim_id, g.display_name FROM scim_members m JOIN scim_groups g ON g.id = m.group_id
             WHERE m.member_id = $1 ORDER BY m.group_id",
            &[&member],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn scim_member(&self, realm: &Realm, scim_id: &str) -> Result<Option<MemberRef>> {
        self.query_opt(
            "SELECT id, user_id FROM scim_users WHERE scim_id = $1 AND provider = $2 AND tenant = $3",
            &[&scim_id, &realm.provider, &tenant_key(realm)],
        )?
        .map(|r| {
            Ok(MemberRef {
                member: get(&r, 0)?,
                user_id: get(&r, 1)?,
            })
        })
        .transpose()
    }

    fn scim_group_keys_of_user(&self, user_id: i64, key: GroupKey) -> Result<Option<Vec<String>>> {
        let Some(member) =
            self.query_opt("SELECT id FROM scim_users WHERE user_id = $1", &[&user_id])?
        else {
            return Ok(None);
        };
        let member: i64 = get(&member, 0)?;
        let sql = match key {
            GroupKey::Id => {
                "SELECT g.tenant, coalesce(g.external_id, g.scim_id) FROM scim_members m
                 JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = $1 ORDER BY m.group_id"
            }
            GroupKey::Name => {
                "SELECT g.tenant, g.display_name FROM scim_members m
                 JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id = $1 ORDER BY m.group_id"
            }
        };
        // Each key qualified by its group's tenant (`domain::tenant::qualify`).
        Ok(Some(
            self.query(sql, &[&member])?
                .iter()
                .map(|r| {
                    let key: String = get(r, 1)?;
                    Ok(qualify(tenant_of(r, 0)?.as_deref(), &key))
                })
                .collect::<Result<_>>()?,
        ))
    }

    fn scim_group(&self, realm: &Realm, scim_id: &str) -> Result<Option<GroupRow>> {
        groups::one(
            self,
            "r.scim_id = $1 AND r.provider = $2 AND r.tenant = $3",
            &[&scim_id, &realm.provider, &tenant_key(realm)],
        )
    }

    fn scim_group_by_name(&self, realm: &Realm, name: &str) -> Result<Option<GroupRow>> {
        let folded = crate::store::scim::fold(name);
        groups::one(
            self,
            "r.provider = $1 AND r.tenant = $2 AND r.display_name_key = $3",
            &[&realm.provider, &tenant_key(realm), &folded],
        )
    }

    fn scim_groups_page(
        &self,
        realm: &Realm,
        filter: Option<&Cond>,
        offset: usize,
        limit: usize,
    ) -> Result<Page<GroupRow>> {
        let sql = translated(ResourceType::Group, filter, realm)?;
        let (total, items) = page(self, &groups::TABLE, realm, sql.as_ref(), (offset, limit))?;
        Ok(Page { total, items })
    }

    fn scim_members(&self, group: i64) -> Result<Vec<Member>> {
        self.query(
            "SELECT u.scim_id,
                    CASE WHEN jsonb_typeof(u.doc -> 'displayName') = 'string'
                         THEN u.doc ->> 'displayName' END
             FROM scim_members m JOIN scim_users u ON u.id = m.member_id
             WHERE m.group_id = $1 ORDER BY m.member_id",
            &[&group],
        )?
        .iter()
        .map(|r| {
            Ok(Member {
                scim_id: get(r, 0)?,
                display: get(r, 1)?,
            })
        })
        .collect()
    }

    fn scim_member_refs(&self, group: i64) -> Result<Vec<MemberRef>> {
        self.query(
            "SELECT m.member_id, u.user_id FROM scim_members m JOIN scim_users u ON u.id = m.member_id
             WHERE m.group_id = $1",
            &[&group],
        )?
        .iter()
        .map(|r| {
            Ok(MemberRef {
                member: get(r, 0)?,
                user_id: get(r, 1)?,
            })
        })
        .collect()
    }

    fn scim_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenRow, Vec<u8>)>> {
        tokens::by_hash(self, hash)
    }

    fn scim_tokens(&self, provider: &str) -> Result<Vec<TokenRow>> {
        tokens::list(self, provider)
    }

    fn scim_counts(&self, now: i64) -> Result<BTreeMap<String, ScimCounts>> {
        let mut out: BTreeMap<String, ScimCounts> = BTreeMap::new();
        for r in self.query(
            "SELECT provider, COUNT(*), COUNT(*) FILTER (WHERE active), MAX(updated_at)
             FROM scim_users GROUP BY provider",
            &[],
        )? {
            let c = out.entry(get(&r, 0)?).or_default();
            c.users = get(&r, 1)?;
            c.active_users = get(&r, 2)?;
            c.last_change_at = get(&r, 3)?;
        }
        for r in self.query(
            "SELECT g.provider, COUNT(DISTINCT g.id), COUNT(m.member_id), MAX(g.updated_at)
             FROM scim_groups g LEFT JOIN scim_members m ON m.group_id = g.id GROUP BY g.provider",
            &[],
        )? {
            let c = out.entry(get(&r, 0)?).or_default();
            c.groups = get(&r, 1)?;
            c.memberships = get(&r, 2)?;
            let at: Option<String> = get(&r, 3)?;
            if at > c.last_change_at {
                c.last_change_at = at;
            }
        }
        for r in self.query(
            "SELECT provider, COUNT(*) FROM scim_tokens
             WHERE revoked_at IS NULL AND expires_at > $1 GROUP BY provider",
            &[&now],
        )? {
            out.entry(get(&r, 0)?).or_default().live_tokens = get(&r, 1)?;
        }
        Ok(out)
    }
}

impl ScimWrites for PgTx<'_> {
    fn insert_scim_user(
        &self,
        realm: &Realm,
        scim_id: &str,
        user_id: i64,
        values: &UserValues<'_>,
        now: &str,
    ) -> Result<i64> {
        users::insert(self, realm, scim_id, user_id, values, now)
    }

    fn update_scim_user(&self, pk: i64, values: &UserValues<'_>, now: &str) -> Result<()> {
        users::update(self, pk, values, now)
    }

    fn relink_scim_user(&self, pk: i64, user_id: i64) -> Result<()> {
        self.execute_unique(
            "UPDATE scim_users SET user_id = $2 WHERE id = $1",
            &[&pk, &user_id],
            "externalId already provisioned",
        )?;
        Ok(())
    }

    fn delete_scim_user(&self, pk: i64) -> Result<()> {
        self.execute("DELETE FROM scim_users WHERE id = $1", &[&pk])?;
        Ok(())
    }

    fn insert_scim_group(
        &self,
        realm: &Realm,
        scim_id: &str,
        values: &GroupValues<'_>,
        now: &str,
    ) -> Result<i64> {
        groups::insert(self, realm, scim_id, values, now)
    }

    fn update_scim_group(&self, pk: i64, values: &GroupValues<'_>, now: &str) -> Result<()> {
        groups::update(self, pk, values, now)
    }

    fn touch_scim_group(&self, pk: i64, now: &str) -> Result<()> {
        self.execute(
            "UPDATE scim_groups SET version = version + 1, updated_at = $2 WHERE id = $1",
            &[&pk, &now],
        )?;
        Ok(())
    }

    fn delete_scim_group(&self, pk: i64) -> Result<()> {
        self.execute("DELETE FROM scim_groups WHERE id = $1", &[&pk])?;
        Ok(())
    }

    fn add_scim_member(&self, group: i64, member: i64) -> Result<bool> {
        Ok(self.execute(
            "INSERT INTO scim_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&group, &member],
        )? > 0)
    }

    fn remove_scim_member(&self, group: i64, member: i64) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM scim_members WHERE group_id = $1 AND member_id = $2",
            &[&group, &member],
        )? > 0)
    }

    fn remove_all_scim_members(&self, group: i64) -> Result<usize> {
        let n = self.execute("DELETE FROM scim_members WHERE group_id = $1", &[&group])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn insert_scim_token(&self, token: &NewToken<'_>) -> Result<()> {
        tokens::insert(self, token)
    }

    fn revoke_scim_token(&self, provider: &str, public_id: &str, now: &str) -> Result<bool> {
        Ok(self.execute(
            "UPDATE scim_tokens SET revoked_at = $3
             WHERE provider = $1 AND public_id = $2 AND revoked_at IS NULL",
            &[&provider, &public_id, &now],
        )? > 0)
    }
}
