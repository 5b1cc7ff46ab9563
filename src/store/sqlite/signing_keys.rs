//! The `signing_keys` table: teamgate's own ES256 keys for the downstream assertion. Exactly one
//! key signs at a time; retired keys stay published until their last assertion has expired.
//! Key material is made in `crate::downstream::keys`; this module only stores and reads it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteTx;
use crate::store::error::Result;
use crate::store::port::{KeyReads, KeyWrites};

use crate::store::keys::{StoredKey, StoredRsaKey};

const COLUMNS: &str = "kid, private_der, public_x, public_y, created_at, retired_at, publish_until";

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        kid: r.get(0)?,
        private_der: r.get(1)?,
        x: r.get(2)?,
        y: r.get(3)?,
        created_at: r.get(4)?,
        retired_at: r.get(5)?,
        publish_until: r.get(6)?,
    })
}

/// The key that signs now, if any.
pub fn current(conn: &Connection) -> Result<Option<StoredKey>> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([], from_row)
        .optional()?)
}

/// Every key to publish at `now`: the signing key first, then retired keys still within their
/// publication window, newest first.
pub fn published(conn: &Connection, now: i64) -> Result<Vec<StoredKey>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR publish_until > ?1
         ORDER BY retired_at IS NOT NULL, created_at DESC, kid"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([now], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Store `key` as the signing key unless one exists; returns whether it was stored. Run in the
/// writer's transaction, so two processes starting at once still end with one signing key.
pub fn insert_if_none(conn: &Connection, key: &StoredKey) -> Result<bool> {
    if current(conn)?.is_some() {
        return Ok(false);
    }
    insert(conn, key)?;
    Ok(true)
}

/// Make `key` the signing key: the previous one is retired at `now` and stays published until
/// `previous_until`; keys whose publication window has closed are deleted. Returns the kid of
/// the retired key, if there was one.
pub fn rotate(
    conn: &Connection,
    key: &StoredKey,
    now: i64,
    previous_until: i64,
) -> Result<Option<String>> {
    let previous = current(conn)?.map(|k| k.kid);
    conn.prepare_cached(
        "UPDATE signing_keys SET retired_at = ?1, publish_until = ?2 WHERE retired_at IS NULL",
    )?
    .execute(params![now, previous_until])?;
    insert(conn, key)?;
    conn.prepare_cached("DELETE FROM signing_keys WHERE publish_until <= ?1")?
        .execute([now])?;
    Ok(previous)
}

fn insert(conn: &Connection, key: &StoredKey) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, private_der, public_x, public_y, created_at, retired_at, publish_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.kid,
        key.private_der,
        key.x,
        key.y,
        key.created_at,
        key.retired_at,
        key.publish_until
    ])?;
    Ok(())
}

const RSA_COLUMNS: &str =
    "kid, private_der, public_n, public_e, created_at, retired_at, publish_until";

fn rsa_from_row(r: &Row<'_>) -> rusqlite::Result<StoredRsaKey> {
    Ok(StoredRsaKey {
        kid: r.get(0)?,
        private_der: r.get(1)?,
        n: r.get(2)?,
        e: r.get(3)?,
        created_at: r.get(4)?,
        retired_at: r.get(5)?,
        publish_until: r.get(6)?,
    })
}

fn rsa_current(conn: &Connection) -> Result<Option<StoredRsaKey>> {
    let sql = format!("SELECT {RSA_COLUMNS} FROM rsa_signing_keys WHERE retired_at IS NULL");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([], rsa_from_row)
        .optional()?)
}

fn rsa_insert(conn: &Connection, key: &StoredRsaKey) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rsa_signing_keys (kid, private_der, public_n, public_e, created_at, retired_at, publish_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        key.kid,
        key.private_der,
        key.n,
        key.e,
        key.created_at,
        key.retired_at,
        key.publish_until
    ])?;
    Ok(())
}

impl KeyReads for SqliteTx<'_> {
    fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>> {
        published(self.conn, now)
    }

    fn published_rsa_keys(&self, now: i64) -> Result<Vec<StoredRsaKey>> {
        let sql = format!(
            "SELECT {RSA_COLUMNS} FROM rsa_signing_keys WHERE retired_at IS NULL OR publish_until > ?1
             ORDER BY retired_at IS NOT NULL, created_at DESC, kid"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([now], rsa_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl KeyWrites for SqliteTx<'_> {
    fn insert_key_if_none(&self, key: &StoredKey) -> Result<bool> {
        insert_if_none(self.conn, key)
    }

    fn rotate_key(&self, key: &StoredKey, now: i64, previous_until: i64) -> Result<Option<String>> {
        rotate(self.conn, key, now, previous_until)
    }

    fn insert_rsa_key_if_none(&self, key: &StoredRsaKey) -> Result<bool> {
        if rsa_current(self.conn)?.is_some() {
            return Ok(false);
        }
        rsa_insert(self.conn, key)?;
        Ok(true)
    }

    fn rotate_rsa_key(
        &self,
        key: &StoredRsaKey,
        now: i64,
        previous_until: i64,
    ) -> Result<Option<String>> {
        let previous = rsa_current(self.conn)?.map(|k| k.kid);
        self.conn
            .prepare_cached(
                "UPDATE rsa_signing_keys SET retired_at = ?1, publish_until = ?2 WHERE retired_at IS NULL",
            )?
            .execute(params![now, previous_until])?;
        rsa_insert(self.conn, key)?;
        self.conn
            .prepare_cached("DELETE FROM rsa_signing_keys WHERE publish_until <= ?1")?
            .execute([now])?;
        Ok(previous)
    }
}
