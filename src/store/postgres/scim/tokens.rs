//! `scim_tokens` on PostgreSQL (twin of `store/sqlite/scim/tokens.rs`): hashed, each bound to
//! one provider (and, for a multi-tenant Entra provider, to one tenant).

use tokio_postgres::Row;

use crate::store::error::Result;
use crate::store::postgres::{PgTx, get};
use crate::store::scim::{NewToken, TokenRow};

const COLUMNS: &str = "public_id, provider, created_at, expires_at, revoked_at, note, tenant";

fn read(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        public_id: get(r, 0)?,
        provider: get(r, 1)?,
        created_at: get(r, 2)?,
        expires_at: get(r, 3)?,
        revoked_at: get(r, 4)?,
        note: get(r, 5)?,
        tenant: get(r, 6)?,
    })
}

pub fn insert(tx: &PgTx<'_>, t: &NewToken<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO scim_tokens (public_id, provider, hash, created_at, expires_at, note, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &t.public_id,
            &t.provider,
            &&t.hash[..],
            &t.created_at,
            &t.expires_at,
            &t.note,
            &t.tenant,
        ],
    )?;
    Ok(())
}

pub fn by_hash(tx: &PgTx<'_>, hash: &[u8; 32]) -> Result<Option<(TokenRow, Vec<u8>)>> {
    let sql = format!("SELECT {COLUMNS}, hash FROM scim_tokens WHERE hash = $1");
    tx.query_opt(&sql, &[&&hash[..]])?
        .map(|r| Ok((read(&r)?, get(&r, 7)?)))
        .transpose()
}

pub fn list(tx: &PgTx<'_>, provider: &str) -> Result<Vec<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scim_tokens WHERE provider = $1 ORDER BY id");
    tx.query(&sql, &[&provider])?.iter().map(read).collect()
}
