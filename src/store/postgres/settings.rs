//! The `settings` table on PostgreSQL (twin of `store/sqlite/settings.rs`).

use super::{PgTx, get};
use crate::store::error::Result;
use crate::store::port::{SettingReads, SettingWrites};

impl SettingReads for PgTx<'_> {
    fn setting(&self, key: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT value FROM settings WHERE key = $1{}",
            self.lock_clause()
        );
        self.query_opt(&sql, &[&key])?
            .map(|r| get(&r, 0))
            .transpose()
    }
}

impl SettingWrites for PgTx<'_> {
    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn insert_setting_if_absent(&self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )?;
        Ok(())
    }
}
