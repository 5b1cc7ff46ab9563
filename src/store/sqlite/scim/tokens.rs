//! `scim_tokens`: SCIM bearer tokens, stored as SHA-256 hashes, each bound to one provider
//! (and, for a multi-tenant Entra provider, to one tenant), with an expiry and a revocation
//! time.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::store::error::Result;
use crate::store::scim::{NewToken, TokenRow};

fn read(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        public_id: r.get(0)?,
        provider: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        revoked_at: r.get(4)?,
        note: r.get(5)?,
        tenant: r.get(6)?,
    })
}

const COLUMNS: &str = "public_id, provider, created_at, expires_at, revoked_at, note, tenant";

pub fn insert(conn: &Connection, t: &NewToken<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO scim_tokens (public_id, provider, hash, created_at, expires_at, note, tenant)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        t.public_id,
        t.provider,
        &t.hash[..],
        t.created_at,
        t.expires_at,
        t.note,
        t.tenant
    ])?;
    Ok(())
}

/// The token whose hash is `hash`, with the stored hash for a constant-time re-check.
pub fn by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<(TokenRow, Vec<u8>)>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, hash FROM scim_tokens WHERE hash = ?1"
        ))?
        .query_row([&hash[..]], |r| Ok((read(r)?, r.get(7)?)))
        .optional()?)
}

/// Every token of `provider`, oldest first.
pub fn list(conn: &Connection, provider: &str) -> Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM scim_tokens WHERE provider = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([provider], read)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revoke token `public_id` of `provider`; false when there is no such live token.
pub fn revoke(conn: &Connection, provider: &str, public_id: &str, now: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE scim_tokens SET revoked_at = ?3 WHERE provider = ?1 AND public_id = ?2 AND revoked_at IS NULL",
        )?
        .execute(params![provider, public_id, now])?
        > 0)
}
