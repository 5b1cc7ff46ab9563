//! Numbered schema migrations for PostgreSQL, the twins of `store/sqlite/sql/` (same number,
//! same tables and indexes), applied in order at start under an advisory lock, so replicas
//! starting together migrate once. `teamgate_schema` records how many have run.

use deadpool_postgres::Object;
use tokio::runtime::Handle;

use super::classify;
use crate::store::error::{Result, StoreError};

/// Append only: never edit a migration that has shipped. Mirror every SQLite migration.
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

/// The advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7467_6d69_6772_6174;

fn version(rt: &Handle, conn: &Object) -> Result<usize> {
    let exists = rt
        .block_on(conn.query_one("SELECT to_regclass('teamgate_schema') IS NOT NULL", &[]))
        .map_err(|e| classify(&e))?;
    let exists: bool = exists
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if !exists {
        return Ok(0);
    }
    let row = rt
        .block_on(conn.query_one("SELECT version FROM teamgate_schema", &[]))
        .map_err(|e| classify(&e))?;
    let v: i32 = row
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(usize::try_from(v).unwrap_or(0))
}

fn too_new(done: usize) -> StoreError {
    StoreError::Corrupt(format!(
        "the database is at schema version {done}, newer than this teamgate ({}); use a newer binary",
        MIGRATIONS.len()
    ))
}

/// Apply every pending migration, one transaction each, under the migration lock.
pub(super) fn apply(rt: &Handle, conn: &Object) -> Result<()> {
    let exec = |sql: &str| {
        rt.block_on(conn.batch_execute(sql))
            .map_err(|e| classify(&e))
    };
    // Another replica may be migrating: wait for it, however long it takes.
    exec(&format!(
        "SET lock_timeout = 0; SELECT pg_advisory_lock({MIGRATION_LOCK}); RESET lock_timeout"
    ))?;
    let outcome = (|| {
        let done = version(rt, conn)?;
        if done > MIGRATIONS.len() {
            return Err(too_new(done));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let n = i + 1;
            let bump = if i == 0 {
                format!(
                    "CREATE TABLE teamgate_schema (version INTEGER NOT NULL); INSERT INTO teamgate_schema VALUES ({n});"
                )
            } else {
                format!("UPDATE teamgate_schema SET version = {n};")
            };
            exec(&format!("BEGIN; {sql}\n; {bump} COMMIT"))
                .inspect_err(|_| {
                    let _ = rt.block_on(conn.batch_execute("ROLLBACK"));
                })
                .map_err(|e| StoreError::Corrupt(format!("migration {n} failed: {e}")))?;
            tracing::info!(migration = n, "PostgreSQL schema migrated");
        }
        Ok(())
    })();
    let _ = exec(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    outcome
}

/// Check that the schema is this binary's (the command-line tools do not migrate).
pub(super) fn check(rt: &Handle, conn: &Object) -> Result<()> {
    match version(rt, conn)? {
        0 => Err(StoreError::Corrupt(
            "the database has no teamgate schema; start `teamgate serve` once to create it".into(),
        )),
        done if done > MIGRATIONS.len() => Err(too_new(done)),
        _ => Ok(()),
    }
}
