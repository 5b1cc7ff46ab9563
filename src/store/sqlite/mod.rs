//! The SQLite implementation of the storage port. One writer thread owns the only write
//! connection and commits queued jobs in batches (group commit: many requests, one fsync), a
//! savepoint per job; reads use a small pool of read-only connections, each read inside one
//! read transaction (a consistent snapshot). Every `rusqlite` type of teamgate lives below
//! this module.
//!
//! - [`writer`]: the writer thread; [`checkpointer`]: WAL checkpoints off the writer.
//! - [`migrations`] and `sql/`: the numbered schema.
//! - one module per table group holding its SQL and its part of [`SqliteTx`]'s operations:
//!   [`users`], [`memberships`], [`teams`], [`sessions`], [`audit`], [`settings`],
//!   [`signing_keys`], [`scim`] (with its filter translation), [`grants`] (the OpenID
//!   provider's grants and tokens), [`refresh_grants`] (sealed IdP refresh tokens); [`export`]
//!   reads every table for `teamgate migrate-db`.

pub mod audit;
mod checkpointer;
pub mod export;
pub mod grants;
pub mod memberships;
pub mod migrations;
pub mod refresh_grants;
pub mod scim;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod teams;
pub mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::{Result, StoreError};
use super::{Backend, ReadTx, WriteJob};

/// How long a connection waits for a lock before reporting `Busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open for reuse.
const READ_POOL_SIZE: usize = 4;

/// The operations of the port on one SQLite connection (the writer's, inside its
/// transaction, or a reader's, inside a read transaction).
pub struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }
}

pub struct SqliteBackend {
    path: PathBuf,
    /// `None` for a read-only store (the command-line tools).
    writer: Option<writer::WriterHandle>,
    readers: Mutex<Vec<Connection>>,
    /// `PRAGMA synchronous` of every connection that writes, as handed to its thread (the
    /// durability test reads it).
    #[cfg(test)]
    synchronous: Vec<(&'static str, i64)>,
}

impl SqliteBackend {
    /// Open (creating if needed) the database at `path`, apply pending migrations and start
    /// the writer thread, which bumps `epoch` after every commit.
    pub fn open(path: &Path, epoch: Arc<AtomicU64>) -> Result<SqliteBackend> {
        private_file(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        let open_err = |source: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(source),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        // WAL is a property of the file; set once by the writer.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // A 2xx acknowledged to an IdP must survive power loss; group commit pays for it.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // The writer's page cache (the default is 2 MB): random keys (GUID externalIds, user
        // names, public ids) spread inserts over every index page, and past the cache each
        // insert re-reads its page. 16 MB holds the hot indexes of 100,000 users (measured).
        conn.pragma_update(None, "cache_size", -16_384)
            .map_err(open_err)?;
        migrations::apply(&mut conn)?;
        // Checkpoints run mostly on their own thread and connection; the writer's own only
        // bounds the WAL (see `checkpointer`).
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpointer::WRITER_CHECKPOINT_AT,
        )
        .map_err(open_err)?;
        let checkpoint_conn = Connection::open(path).map_err(open_err)?;
        configure(&checkpoint_conn).map_err(open_err)?;
        checkpoint_conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        for c in [&conn, &checkpoint_conn] {
            c.pragma_update(None, "journal_size_limit", checkpointer::WAL_SIZE_LIMIT)
                .map_err(open_err)?;
        }
        #[cfg(test)]
        let synchronous = {
            let level = |c: &Connection| -> i64 {
                c.pragma_query_value(None, "synchronous", |r| r.get(0))
                    .unwrap_or(-1)
            };
            vec![
                ("writer", level(&conn)),
                ("checkpointer", level(&checkpoint_conn)),
            ]
        };
        let nudge = checkpointer::start(checkpoint_conn);
        Ok(SqliteBackend {
            path: path.to_owned(),
            writer: Some(writer::WriterHandle::start(conn, epoch, nudge)),
            readers: Mutex::new(Vec::new()),
            #[cfg(test)]
            synchronous,
        })
    }

    /// Open an existing database for reading only: the command-line tools never take the
    /// write lock (the running server's writer owns it), create the file, or run migrations.
    pub fn open_read_only(path: &Path) -> Result<SqliteBackend> {
        let backend = SqliteBackend {
            path: path.to_owned(),
            writer: None,
            readers: Mutex::new(Vec::new()),
            #[cfg(test)]
            synchronous: Vec::new(),
        };
        let conn = backend.take_reader().map_err(|e| match e {
            StoreError::Database(source) => StoreError::Open {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(from_sqlite)?;
        if version == 0 {
            return Err(StoreError::Corrupt(format!(
                "{} is not a teamgate database (no schema); start `teamgate serve` once to create it",
                path.display()
            )));
        }
        backend.put_reader(conn);
        Ok(backend)
    }

    fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(from_sqlite)?;
                configure(&conn).map_err(from_sqlite)?;
                Ok(conn)
            }
        }
    }

    fn put_reader(&self, conn: Connection) {
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < READ_POOL_SIZE
        {
            pool.push(conn);
        }
    }
}

impl Backend for SqliteBackend {
    fn submit(&self, job: Box<dyn WriteJob>) {
        match &self.writer {
            Some(writer) => writer.submit(job),
            None => job.finish(Err(&StoreError::Unavailable(
                "the database was opened read-only".into(),
            ))),
        }
    }

    fn read_blocking(&self, f: &mut dyn FnMut(&dyn ReadTx)) -> Result<()> {
        let conn = self.take_reader()?;
        // One read transaction: everything `f` reads comes from one snapshot even while the
        // writer commits. It has nothing to commit; ending it only releases the snapshot.
        conn.execute_batch("BEGIN DEFERRED").map_err(from_sqlite)?;
        f(&SqliteTx::new(&conn));
        let _ = conn.execute_batch("COMMIT");
        self.put_reader(conn);
        Ok(())
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// The database holds the assertion signing key, the demo IdP's key, CSRF tokens and PKCE
/// verifiers: only teamgate's user may read it. A directory teamgate creates is made `0700`
/// and a new database file `0600` before SQLite opens it (SQLite gives its `-wal` and `-shm`
/// files the database file's mode). An existing file readable by others is left as it is,
/// with a warning: changing an operator's file modes behind their back would surprise them.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    let Ok(meta) = std::fs::metadata(&file) else {
                        continue;
                    };
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        tracing::warn!(
                            path = %file.display(),
                            mode = %format!("{mode:o}"),
                            "a database file can be read by other users; it holds signing keys \
                             and login secrets: chmod 600 it"
                        );
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every write job runs in a savepoint; its sub-journal otherwise spills to a temp file
    // past 64 KiB, a pwrite per page (measured: a sixth of the writer's time under SCIM load).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // rusqlite caches 16 statements by default; a SCIM request alone uses more, and a miss
    // re-parses the SQL (measured: another sixth of the writer's time).
    conn.set_prepared_statement_cache_capacity(256);
    // Without the query-planner stability guarantee, SQLite re-prepares (parses and plans
    // again) any statement whose plan might depend on a bound value, e.g. `WHERE user_id = ?1
    // ORDER BY ...`, on every execution; with no statistics there is nothing to gain from it.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// A rusqlite error, classified: busy and locked are [`StoreError::Busy`]. Lets `?` turn
/// rusqlite results into store results throughout this module.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

fn from_sqlite(e: rusqlite::Error) -> StoreError {
    StoreError::from(e)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::SqliteBackend;

    /// `PRAGMA synchronous` values: 2 is FULL, 3 EXTRA.
    const FULL: i64 = 2;

    /// A write is acknowledged only once durable (ARCHITECTURE.md, "one transaction per
    /// change"): every connection that writes (the writer's commits, the checkpointer's copies
    /// into the database file) syncs FULL or stronger; WAL's default NORMAL could lose the
    /// last commits on power loss.
    #[test]
    fn every_connection_that_writes_is_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            SqliteBackend::open(&dir.path().join("t.db"), Arc::new(AtomicU64::new(0))).unwrap();
        let names: Vec<&str> = backend.synchronous.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["writer", "checkpointer"]);
        for (name, level) in &backend.synchronous {
            assert!(
                *level >= FULL,
                "the {name} connection runs synchronous={level}"
            );
        }
    }

    /// The database file is created 0600 and a directory teamgate creates 0700, before
    /// SQLite opens the file (it gives `-wal` and `-shm` the database's mode).
    #[cfg(unix)]
    #[test]
    fn a_new_database_and_its_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/t.db");
        let _backend = SqliteBackend::open(&path, Arc::new(AtomicU64::new(0))).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }
}
