//! `scim_users` on PostgreSQL (twin of `store/sqlite/scim/users.rs`).

use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::{doc, tenant_key, tenant_of};
use crate::store::error::Result;
use crate::store::postgres::{Params, PgTx, get};
use crate::store::scim::{Realm, UserRow, UserValues, fold};

const COLUMNS: &str = "r.id, r.scim_id, r.provider, r.user_id, r.external_id, r.active, r.doc, r.version, r.created_at, r.updated_at, r.tenant";

/// The table as listings read it.
pub(super) const TABLE: super::Table<UserRow> = super::Table {
    name: "scim_users",
    columns: COLUMNS,
    read,
};

fn read(r: &Row) -> Result<UserRow> {
    Ok(UserRow {
        pk: get(r, 0)?,
        scim_id: get(r, 1)?,
        provider: get(r, 2)?,
        tenant: tenant_of(r, 10)?,
        user_id: get(r, 3)?,
        external_id: get(r, 4)?,
        active: get(r, 5)?,
        doc: doc(r, 6)?,
        version: get(r, 7)?,
        created_at: get(r, 8)?,
        updated_at: get(r, 9)?,
    })
}

pub fn one(tx: &PgTx<'_>, where_: &str, params: Params<'_>) -> Result<Option<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_users r WHERE {where_}{}",
        tx.lock_clause()
    );
    tx.query_opt(&sql, params)?.as_ref().map(read).transpose()
}

/// Users of `realm` without an externalId whose userName or one of whose emails equals
/// `email` case-insensitively (emails compared with `lower()`, then exactly by the caller).
/// Only a login's first sign-in with `match_by_email` asks, so a scan of the realm's users
/// without externalId is acceptable.
pub fn by_email(tx: &PgTx<'_>, realm: &Realm, email: &str) -> Result<Vec<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_users r
         WHERE r.provider = $1 AND r.tenant = $2 AND r.external_id IS NULL
           AND (r.user_name_key = $3 OR EXISTS (
                SELECT 1 FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(r.doc -> 'emails') = 'array'
                         THEN r.doc -> 'emails' ELSE '[]'::jsonb END) e
                WHERE jsonb_typeof(e -> 'value') = 'string' AND lower(e ->> 'value') = lower($4)))
         ORDER BY r.id LIMIT 10"
    );
    tx.query(
        &sql,
        &[&realm.provider, &tenant_key(realm), &fold(email), &email],
    )?
    .iter()
    .map(read)
    .collect()
}

pub fn insert(
    tx: &PgTx<'_>,
    realm: &Realm,
    scim_id: &str,
    user_id: i64,
    v: &UserValues<'_>,
    now: &str,
) -> Result<i64> {
    let row = tx
        .query_unique(
            "INSERT INTO scim_users (scim_id, provider, user_id, user_name, user_name_key, external_id,
                                     active, doc, version, created_at, updated_at, tenant)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10) RETURNING id",
            &[
                &scim_id,
                &realm.provider,
                &user_id,
                &v.user_name,
                &fold(v.user_name),
                &v.external_id,
                &v.active,
                &Json(v.doc),
                &now,
                &tenant_key(realm),
            ],
            "userName or externalId already provisioned",
        )?
        .ok_or_else(|| crate::store::StoreError::Corrupt("INSERT returned no id".into()))?;
    get(&row, 0)
}

pub fn update(tx: &PgTx<'_>, pk: i64, v: &UserValues<'_>, now: &str) -> Result<()> {
    tx.execute_unique(
        "UPDATE scim_users SET user_name = $2, user_name_key = $3, external_id = $4, active = $5,
                doc = $6, version = version + 1, updated_at = $7
         WHERE id = $1",
        &[
            &pk,
            &v.user_name,
            &fold(v.user_name),
            &v.external_id,
            &v.active,
            &Json(v.doc),
            &now,
        ],
        "userName already provisioned",
    )?;
    Ok(())
}
