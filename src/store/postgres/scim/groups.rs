//! `scim_groups` on PostgreSQL (twin of `store/sqlite/scim/groups.rs`).

use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::{doc, tenant_key, tenant_of};
use crate::store::error::Result;
use crate::store::postgres::{Params, PgTx, get};
use crate::store::scim::{GroupRow, GroupValues, Realm, fold};

const COLUMNS: &str = "r.id, r.scim_id, r.provider, r.display_name, r.external_id, r.doc, r.version, r.created_at, r.updated_at, r.tenant";

/// The table as listings read it.
pub(super) const TABLE: super::Table<GroupRow> = super::Table {
    name: "scim_groups",
    columns: COLUMNS,
    read,
};

fn read(r: &Row) -> Result<GroupRow> {
    Ok(GroupRow {
        pk: get(r, 0)?,
        scim_id: get(r, 1)?,
        provider: get(r, 2)?,
        tenant: tenant_of(r, 9)?,
        display_name: get(r, 3)?,
        external_id: get(r, 4)?,
        doc: doc(r, 5)?,
        version: get(r, 6)?,
        created_at: get(r, 7)?,
        updated_at: get(r, 8)?,
    })
}

pub fn one(tx: &PgTx<'_>, where_: &str, params: Params<'_>) -> Result<Option<GroupRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scim_groups r WHERE {where_}{}",
        tx.lock_clause()
    );
    tx.query_opt(&sql, params)?.as_ref().map(read).transpose()
}

pub fn insert(
    tx: &PgTx<'_>,
    realm: &Realm,
    scim_id: &str,
    v: &GroupValues<'_>,
    now: &str,
) -> Result<i64> {
    let row = tx
        .query_unique(
            "INSERT INTO scim_groups (scim_id, provider, display_name, display_name_key, external_id, doc,
                                      version, created_at, updated_at, tenant)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, $8) RETURNING id",
            &[
                &scim_id,
                &realm.provider,
                &v.display_name,
                &fold(v.display_name),
                &v.external_id,
                &Json(v.doc),
                &now,
                &tenant_key(realm),
            ],
            "displayName already provisioned",
        )?
        .ok_or_else(|| crate::store::StoreError::Corrupt("INSERT returned no id".into()))?;
    get(&row, 0)
}

pub fn update(tx: &PgTx<'_>, pk: i64, v: &GroupValues<'_>, now: &str) -> Result<()> {
    tx.execute_unique(
        "UPDATE scim_groups SET display_name = $2, display_name_key = $3, external_id = $4, doc = $5,
                version = version + 1, updated_at = $6
         WHERE id = $1",
        &[
            &pk,
            &v.display_name,
            &fold(v.display_name),
            &v.external_id,
            &Json(v.doc),
            &now,
        ],
        "displayName already provisioned",
    )?;
    Ok(())
}
