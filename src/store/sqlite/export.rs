//! Reading every row of a table for `teamgate migrate-db` (see [`crate::store::copy`]).

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::store::copy::{Col, Value};
use crate::store::error::{Result, StoreError};

/// Open the database at `path` read-only, checking it is a teamgate database of this version.
pub fn open(path: &Path) -> Result<Connection> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
            StoreError::Open {
                path: path.display().to_string(),
                source: Box::new(e),
            }
        })?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = i64::try_from(super::migrations::COUNT).unwrap_or(i64::MAX);
    if version != latest {
        return Err(StoreError::Corrupt(format!(
            "{} is at schema version {version}, this teamgate writes {latest}: start `teamgate serve` on it once with this version first",
            path.display()
        )));
    }
    Ok(conn)
}

/// Every row of `table`, its columns `cols` in order, in primary-key order. One read
/// transaction per call: run them all inside one (see [`with_snapshot`]).
pub fn rows(conn: &Connection, table: &str, cols: &[(&str, Col)]) -> Result<Vec<Vec<Value>>> {
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    let sql = format!("SELECT {} FROM {table} ORDER BY 1", names.join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        (0..cols.len())
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Text(v.to_string()),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Run `f` inside one read transaction (a consistent snapshot of every table).
pub fn with_snapshot<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN DEFERRED")?;
    let out = f();
    let _ = conn.execute_batch("COMMIT");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use crate::store::copy::TABLES;
    use crate::store::sqlite::SqliteBackend;

    /// `teamgate migrate-db` copies every table and every column of the current schema (a new
    /// migration must be listed in `store/copy.rs`); `session_stats` is derived (the target's
    /// triggers count the sessions as they arrive).
    #[test]
    fn the_copy_lists_every_table_and_column_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteBackend::open(&path, Arc::new(AtomicU64::new(0))).unwrap());
        let conn = super::open(&path).unwrap();
        let mut schema: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' AND name <> 'session_stats'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables {
            let mut columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .unwrap()
                .query_map([&table], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            columns.sort();
            schema.insert(table, columns);
        }
        let listed: BTreeMap<String, Vec<String>> = TABLES
            .iter()
            .map(|(table, cols)| {
                let mut names: Vec<String> = cols.iter().map(|(n, _)| (*n).to_owned()).collect();
                names.sort();
                ((*table).to_owned(), names)
            })
            .collect();
        assert_eq!(listed, schema);
    }
}
