//! Writing the rows `teamgate migrate-db` read from SQLite (see [`crate::store::copy`]) into an
//! empty, migrated PostgreSQL database: one transaction, ids kept, sequences moved past them.

use tokio_postgres::types::ToSql;

use super::{PgBackend, classify, corrupt};
use crate::config::PgDatabase;
use crate::store::copy::{Col, IDENTITY_TABLES, Value};
use crate::store::error::{Result, StoreError};

/// One table's rows.
pub struct TableRows<'a> {
    pub table: &'a str,
    pub cols: &'a [(&'a str, Col)],
    pub rows: Vec<Vec<Value>>,
}

fn param(v: &Value, col: Col) -> Result<Box<dyn ToSql + Sync + Send>> {
    let bad = |what: &str| StoreError::Corrupt(format!("a {what} column holds {v:?}"));
    Ok(match (col, v) {
        (Col::Int, Value::Null) => Box::new(None::<i64>),
        (Col::Int, Value::Int(i)) => Box::new(*i),
        (Col::Text, Value::Null) => Box::new(None::<String>),
        (Col::Text, Value::Text(t)) => Box::new(t.clone()),
        (Col::Text, Value::Int(i)) => Box::new(i.to_string()),
        (Col::Bool, Value::Null) => Box::new(None::<bool>),
        (Col::Bool, Value::Int(i)) => Box::new(*i != 0),
        (Col::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (Col::Blob, Value::Blob(b)) => Box::new(b.clone()),
        (Col::Json, Value::Text(t)) => Box::new(
            serde_json::from_str::<serde_json::Value>(t)
                .map_err(|e| StoreError::Corrupt(format!("a JSON document does not parse: {e}")))?,
        ),
        (Col::Int, _) => return Err(bad("integer")),
        (Col::Text, _) => return Err(bad("text")),
        (Col::Bool, _) => return Err(bad("boolean")),
        (Col::Blob, _) => return Err(bad("blob")),
        (Col::Json, _) => return Err(bad("JSON")),
    })
}

/// Migrate `db` (creating the schema) and copy `tables` into it; refused unless every table
/// is empty. Returns the row count of each table afterwards. Blocks: call it outside a runtime.
pub fn import(db: &PgDatabase, tables: Vec<TableRows<'_>>) -> Result<Vec<(String, i64)>> {
    let backend = PgBackend::open_existing_or_migrate(db)?;
    let shared = &backend.shared;
    let conn = shared.connection()?;
    let rt = &shared.rt;
    let count = |table: &str| -> Result<i64> {
        let row = rt
            .block_on(conn.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]))
            .map_err(|e| classify(&e))?;
        row.try_get(0).map_err(corrupt)
    };
    for t in &tables {
        if count(t.table)? > 0 {
            return Err(StoreError::Conflict(format!(
                "the PostgreSQL database is not empty (table {} has rows); migrate into a new database",
                t.table
            )));
        }
    }
    rt.block_on(conn.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE"))
        .map_err(|e| classify(&e))?;
    let copied = (|| -> Result<()> {
        for t in &tables {
            let names: Vec<&str> = t.cols.iter().map(|(n, _)| *n).collect();
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                t.table,
                names.join(", "),
                placeholders.join(", ")
            );
            let stmt = rt.block_on(conn.prepare(&sql)).map_err(|e| classify(&e))?;
            for row in &t.rows {
                let params = row
                    .iter()
                    .zip(t.cols)
                    .map(|(v, (_, col))| param(v, *col))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                rt.block_on(conn.execute(&stmt, &refs)).map_err(|e| {
                    StoreError::Corrupt(format!("copying {}: {}", t.table, classify(&e)))
                })?;
            }
        }
        for table in IDENTITY_TABLES {
            rt.block_on(conn.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )))
            .map_err(|e| classify(&e))?;
        }
        Ok(())
    })();
    match copied {
        Ok(()) => rt
            .block_on(conn.batch_execute("COMMIT"))
            .map_err(|e| StoreError::CommitFailed(classify(&e).to_string()))?,
        Err(e) => {
            let _ = rt.block_on(conn.batch_execute("ROLLBACK"));
            return Err(e);
        }
    }
    tables
        .iter()
        .map(|t| Ok((t.table.to_owned(), count(t.table)?)))
        .collect()
}
