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
