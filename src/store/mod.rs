//! SQLite storage. One writer thread owns the only write connection and commits queued jobs in
//! batches (group commit: many requests, one fsync); reads use a small pool of read-only
//! connections on the blocking thread pool. Handlers never touch SQL: they call the typed
//! functions of the table modules through [`Store::read`] and [`Store::write`].

pub mod admin_queries;
pub mod audit;
pub mod cache;
mod checkpointer;
pub mod error;
pub mod memberships;
mod migrations;
pub mod scim;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod teams;
pub mod users;
mod writer;

pub use error::{Result, StoreError};
pub use writer::Undo;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a connection waits for a lock before reporting `Busy`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Users kept in the per-request cache.
const USER_CACHE_CAPACITY: usize = 50_000;
/// Read connections kept open for reuse.
const READ_POOL_SIZE: usize = 4;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: writer::WriterHandle,
    readers: Mutex<Vec<Connection>>,
    /// Bumped by the writer after every commit; see [`cache`].
    epoch: Arc<AtomicU64>,
    /// Users by id, for the per-request session check.
    users: cache::CommitCache<i64, Option<users::UserRecord>>,
}

impl Store {
    /// Open (creating if needed) the database at `path`, apply pending migrations and start
    /// the writer thread.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: rusqlite::Error::InvalidPath(PathBuf::from(e.to_string())),
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
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
        let nudge = checkpointer::start(checkpoint_conn);
        let epoch = Arc::new(AtomicU64::new(0));
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: writer::WriterHandle::start(conn, epoch.clone(), nudge),
                readers: Mutex::new(Vec::new()),
                epoch,
                users: cache::CommitCache::new(USER_CACHE_CAPACITY),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many write batches this process has committed; read it BEFORE a read whose result
    /// is cached (see [`cache`]).
    pub fn commit_epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// A user by id, from the commit-coherent cache when nothing was written since.
    pub async fn user(&self, id: i64) -> Result<Option<users::UserRecord>> {
        let epoch = self.commit_epoch();
        if let Some(user) = self.inner.users.get(&id, epoch) {
            return Ok(user);
        }
        let user = self.read(move |conn| users::by_id(conn, id)).await?;
        self.inner.users.put(id, epoch, user.clone());
        Ok(user)
    }

    /// Run `f` inside the writer's transaction. The result is returned only after the commit
    /// that contains it is durable. If `f` fails, its own changes are rolled back (savepoint)
    /// and other jobs of the same batch are unaffected.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.submit(f, None).await
    }

    /// [`Store::write`] for a job that also changes in-memory state: `undo` reverts it, on the
    /// writer thread and before any later job runs, when the commit fails after `f` succeeded.
    pub async fn write_undoable<T, F>(&self, f: F, undo: Undo) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.submit(f, Some(undo)).await
    }

    /// Run `f` on a read connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let conn = inner.take_reader()?;
            let out = f(&conn);
            inner.put_reader(conn);
            out
        })
        .await
    }

    /// Synchronous read for command-line tools that run outside the async runtime.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.inner.take_reader()?;
        let out = f(&conn);
        self.inner.put_reader(conn);
        out
    }
}

impl Inner {
    fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
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

/// `spawn_blocking` that re-raises a panic of the closure instead of hiding it.
pub async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::WriterGone),
    }
}

/// Now, as stored in the database (RFC 3339, UTC).
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    // Whole seconds: these stamps are read by people (audit, home page); order comes from ids.
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A random opaque id: 128 bits, URL-safe base64.
pub fn random_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
