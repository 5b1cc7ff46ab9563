//! The `settings` table: small key-value facts about this installation (the demo IdP's key,
//! the applied-config snapshot, the last reload's outcome).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteTx;
use crate::store::error::Result;
use crate::store::port::{SettingReads, SettingWrites};

pub fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// Insert or replace `key`.
pub fn set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// Insert `key` unless it is already there (a racing writer that came first wins).
pub fn insert_if_absent(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

impl SettingReads for SqliteTx<'_> {
    fn setting(&self, key: &str) -> Result<Option<String>> {
        get(self.conn, key)
    }
}

impl SettingWrites for SqliteTx<'_> {
    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        set(self.conn, key, value)
    }

    fn insert_setting_if_absent(&self, key: &str, value: &str) -> Result<()> {
        insert_if_absent(self.conn, key, value)
    }
}
