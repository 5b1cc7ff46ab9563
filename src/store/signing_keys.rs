//! The `signing_keys` table: teamgate's own ES256 keys for the downstream assertion. Exactly one
//! key signs at a time; retired keys stay published until their last assertion has expired.
//! Key material is made in `crate::downstream::keys`; this module only stores and reads it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::Result;

/// One stored key.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The public point's coordinates, base64url without padding.
    pub x: String,
    pub y: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When a newer key took over signing; `None` for the signing key.
    pub retired_at: Option<i64>,
    /// Until when a retired key stays in the JWKS.
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    // The private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

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
