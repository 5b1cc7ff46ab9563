//! Numbered schema migrations embedded in the binary and applied in order at start; the
//! database's `user_version` records how many have run.

use rusqlite::Connection;

use crate::store::error::{Result, StoreError};

/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("sql/0001_init.sql"),
    include_str!("sql/0002_scim.sql"),
    include_str!("sql/0003_signing_keys.sql"),
    include_str!("sql/0004_pending_sessions.sql"),
    include_str!("sql/0005_scim_tenants.sql"),
    include_str!("sql/0006_session_details.sql"),
    include_str!("sql/0007_provider.sql"),
    include_str!("sql/0008_refresh_grants.sql"),
];

/// How many migrations this binary has.
pub const COUNT: usize = MIGRATIONS.len();

pub(super) fn apply(conn: &mut Connection) -> Result<()> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let done = usize::try_from(done).unwrap_or(usize::MAX);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {done}, newer than this teamgate ({}); use a newer binary",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}
