//! Storage behind a port. The use cases read through [`Store::read`] (a consistent snapshot)
//! and write through [`Store::write`] (one transaction, acknowledged only once durable), with
//! closures over the typed operations of [`port`]; no database type crosses this boundary.
//! [`Backend`] is what an implementation provides: [`sqlite`] (one writer thread, group
//! commit, a savepoint per job) and [`postgres`] (a pool, one transaction per job, retried
//! after a serialization failure, shared by several replicas).
//!
//! The records the operations read and write live beside the port, one module per area
//! ([`users`], [`memberships`], [`scim`], [`audit`], [`keys`], [`grants`] for the OpenID
//! provider, [`refresh_grants`] for the sealed IdP refresh tokens); [`sessions`] adapts the
//! session operations to tower-sessions; [`cache`] keeps the hot per-request reads in memory
//! until the next commit; [`applied`] keeps the applied-config snapshot and reload outcomes.

pub mod applied;
pub mod audit;
pub mod cache;
pub mod copy;
pub mod error;
pub mod grants;
pub mod keys;
pub mod memberships;
pub mod port;
pub mod postgres;
pub mod refresh_grants;
pub mod scim;
pub mod sessions;
pub mod sqlite;
pub mod users;

pub use error::{Result, StoreError};
pub use port::{ReadTx, WriteTx};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use users::UserRecord;

/// Users kept in the per-request cache.
const USER_CACHE_CAPACITY: usize = 50_000;

/// Reverts in-memory state a job changed alongside its writes, when they were not committed.
pub type Undo = Box<dyn FnOnce() + Send>;

/// What a write job needs from the transaction it runs in. SQLite runs every job in one
/// serial order anyway; PostgreSQL picks the isolation level (and lock) from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Reads and writes that must look as if run alone (the default). PostgreSQL: READ
    /// COMMITTED where every read of an entity row (a user, a SCIM user or group, a setting)
    /// takes its row lock, so the read-modify-writes of one entity queue behind each other and
    /// each reads what the one before committed; memberships are only written under their
    /// user's lock; deadlocks are re-run. (SERIALIZABLE was measured: its predicate locks made
    /// 85% of concurrent SCIM creations fail and retry, for 64 transactions/s.)
    Isolated,
    /// Blind writes of one row that need no read isolation (session rows, the readiness
    /// marker, pruning): READ COMMITTED.
    Simple,
    /// No other write job runs meanwhile, in any process on the database (the config sync:
    /// the config in force changes inside it).
    Exclusive,
}

/// One queued write, as a backend sees it: run it inside the transaction (possibly again,
/// after a serialization failure), then tell it how the commit went.
pub trait WriteJob: Send {
    /// Run inside the transaction; `false` when the job failed and its changes must be rolled
    /// back (the rest of the transaction is unaffected).
    fn run(&mut self, tx: &dyn WriteTx) -> bool;
    /// Called once, after the transaction committed (`Ok`) or failed (`Err`, also when the
    /// job never ran because no transaction could be begun).
    fn finish(self: Box<Self>, commit: std::result::Result<(), &StoreError>);
    /// The transaction it needs.
    fn mode(&self) -> WriteMode {
        WriteMode::Isolated
    }
}

/// What a storage implementation provides.
pub trait Backend: Send + Sync + 'static {
    /// Queue `job` for a write transaction; never blocks.
    fn submit(&self, job: Box<dyn WriteJob>);
    /// Run `f` against a consistent snapshot on the calling thread (a blocking one).
    fn read_blocking(&self, f: &mut dyn FnMut(&dyn ReadTx)) -> Result<()>;
    /// Where the data lives, for logs and messages (a file path, a URL without password).
    fn location(&self) -> String;
    /// False while this process may have missed another process's commit (PostgreSQL: the
    /// notification connection is down); caches are then bypassed.
    fn coherent(&self) -> bool {
        true
    }
    /// Events other processes sent through the database (PostgreSQL notifications).
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }
    /// Run `job` once across every process on this database: `Ok(true)` when this process
    /// held the lease named `name` and ran it, `Ok(false)` when another holds it.
    fn with_lease(&self, _name: &str, job: &mut dyn FnMut()) -> Result<bool> {
        job();
        Ok(true)
    }
    /// Keep `live` on the applied config version stored in the database: before each write
    /// job, a newer version stored by another process is loaded first (PostgreSQL; SQLite has
    /// one process).
    fn follow_config(&self, _live: Arc<crate::config::LiveConfig>) {}
    /// Tell every other process on this database `payload` on `channel` (no-op for SQLite,
    /// which has one process).
    fn broadcast(&self, _channel: &str, _payload: &str) -> Result<()> {
        Ok(())
    }
}

/// Something another process on the same database said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A broadcast on `channel` (see [`Backend::broadcast`]).
    Message { channel: String, payload: String },
    /// The notification connection was lost and is back: anything may have changed.
    Reconnected,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    /// Bumped by the backend after every commit; see [`cache`].
    epoch: Arc<AtomicU64>,
    /// Users by id, for the per-request session check.
    users: cache::CommitCache<i64, Option<UserRecord>>,
}

impl Store {
    /// Open (creating if needed) the SQLite database at `path`, apply pending migrations and
    /// start its writer.
    pub fn open(path: &Path) -> Result<Store> {
        let epoch = Arc::new(AtomicU64::new(0));
        let backend = sqlite::SqliteBackend::open(path, epoch.clone())?;
        Ok(Self::with_backend(Box::new(backend), epoch))
    }

    /// Open the configured database: SQLite (created if needed) or PostgreSQL (migrated under
    /// a lock, so replicas starting together migrate once).
    pub async fn open_database(database: &crate::config::Database) -> Result<Store> {
        match database {
            crate::config::Database::Sqlite(path) => Self::open(path),
            crate::config::Database::Postgres(pg) => {
                let pg = pg.clone();
                tokio::task::spawn_blocking(move || {
                    let epoch = Arc::new(AtomicU64::new(0));
                    let backend = postgres::PgBackend::open(&pg, epoch.clone())?;
                    Ok(Self::with_backend(Box::new(backend), epoch))
                })
                .await
                .map_err(|_| StoreError::WriterGone)?
            }
        }
    }

    /// [`Store::open_database`] outside any runtime (the command-line tools).
    pub fn open_database_blocking(database: &crate::config::Database) -> Result<Store> {
        match database {
            crate::config::Database::Sqlite(path) => Self::open(path),
            crate::config::Database::Postgres(pg) => {
                let epoch = Arc::new(AtomicU64::new(0));
                let backend = postgres::PgBackend::open(pg, epoch.clone())?;
                Ok(Self::with_backend(Box::new(backend), epoch))
            }
        }
    }

    /// Open the configured database for the command-line tools' reads (no writer for SQLite;
    /// PostgreSQL is shared anyway, and is not migrated from here).
    pub fn open_database_read_only(database: &crate::config::Database) -> Result<Store> {
        match database {
            crate::config::Database::Sqlite(path) => Self::open_read_only(path),
            crate::config::Database::Postgres(pg) => {
                let epoch = Arc::new(AtomicU64::new(0));
                let backend = postgres::PgBackend::open_existing(pg, epoch.clone())?;
                Ok(Self::with_backend(Box::new(backend), epoch))
            }
        }
    }

    /// `teamgate migrate-db`: copy every row of the SQLite database at `from` into the empty
    /// PostgreSQL database `to` (migrated first), in one transaction, and count the rows of
    /// both. Blocks: call it outside a runtime. Stop the server on `from` first.
    pub fn copy_sqlite_to_postgres(
        from: &Path,
        to: &crate::config::PgDatabase,
    ) -> Result<copy::Counts> {
        let conn = sqlite::export::open(from)?;
        let tables = sqlite::export::with_snapshot(&conn, || {
            copy::TABLES
                .iter()
                .map(|(table, cols)| {
                    Ok(postgres::import::TableRows {
                        table,
                        cols,
                        rows: sqlite::export::rows(&conn, table, cols)?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let source: Vec<(&'static str, i64)> = copy::TABLES
            .iter()
            .zip(&tables)
            .map(|((name, _), t)| (*name, i64::try_from(t.rows.len()).unwrap_or(i64::MAX)))
            .collect();
        let target = postgres::import::import(to, tables)?;
        let counts: copy::Counts = source
            .iter()
            .zip(&target)
            .map(|((name, n), (_, m))| (*name, *n, *m))
            .collect();
        if let Some((name, n, m)) = counts.iter().find(|(_, n, m)| n != m) {
            return Err(StoreError::Corrupt(format!(
                "table {name}: {n} rows in SQLite, {m} in PostgreSQL after the copy"
            )));
        }
        Ok(counts)
    }

    /// Open an existing SQLite database for reading only (the command-line tools): no writer,
    /// no migrations, no file created.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let backend = sqlite::SqliteBackend::open_read_only(path)?;
        Ok(Self::with_backend(
            Box::new(backend),
            Arc::new(AtomicU64::new(0)),
        ))
    }

    /// A store over `backend`, which bumps `epoch` after every commit.
    pub fn with_backend(backend: Box<dyn Backend>, epoch: Arc<AtomicU64>) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                epoch,
                users: cache::CommitCache::new(USER_CACHE_CAPACITY),
            }),
        }
    }

    /// Where the data lives (for messages).
    pub fn location(&self) -> String {
        self.inner.backend.location()
    }

    /// How many write batches this process has committed; read it BEFORE a read whose result
    /// is cached (see [`cache`]).
    pub fn commit_epoch(&self) -> u64 {
        if !self.inner.backend.coherent() {
            // Commits elsewhere may go unseen: every read gets an epoch of its own, so nothing
            // cached is used again.
            return self.inner.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        }
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// See [`Backend::follow_config`].
    pub fn follow_config(&self, live: Arc<crate::config::LiveConfig>) {
        self.inner.backend.follow_config(live);
    }

    /// Events from other processes on the same database (PostgreSQL); `None` for SQLite.
    pub fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        self.inner.backend.events()
    }

    /// Tell the other processes on this database `payload` on `channel`.
    pub async fn broadcast(&self, channel: &str, payload: &str) -> Result<()> {
        let store = self.clone();
        let (channel, payload) = (channel.to_owned(), payload.to_owned());
        tokio::task::spawn_blocking(move || store.inner.backend.broadcast(&channel, &payload))
            .await
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Run `job` in this process unless another process on the same database is running the
    /// job named `name` (a lease: background jobs run once across replicas). Whether it ran.
    pub async fn with_lease<F>(&self, name: &str, job: F) -> Result<bool>
    where
        F: std::future::Future<Output = ()> + Send,
    {
        // The lease is held on a blocking thread for as long as the job runs here.
        let store = self.clone();
        let name = name.to_owned();
        let (start_tx, start_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let holder = tokio::task::spawn_blocking(move || {
            let mut start = Some(start_tx);
            store.inner.backend.with_lease(&name, &mut || {
                if let Some(start) = start.take() {
                    let _ = start.send(());
                }
                let _ = done_rx.recv();
            })
        });
        let ran = match start_rx.await {
            Ok(()) => {
                job.await;
                true
            }
            Err(_) => false,
        };
        let _ = done_tx.send(());
        match holder.await {
            Ok(Ok(_)) => Ok(ran),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// A user by id, from the commit-coherent cache when nothing was written since.
    pub async fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        let epoch = self.commit_epoch();
        if let Some(user) = self.inner.users.get(&id, epoch) {
            return Ok(user);
        }
        let user = self.read(move |tx| tx.user(id)).await?;
        self.inner.users.put(id, epoch, user.clone());
        Ok(user)
    }

    /// Run `f` inside a write transaction. The result is returned only after the commit that
    /// contains it is durable. When `f` fails, its own changes are rolled back and its error
    /// is returned as it is; other jobs sharing the transaction are unaffected. `f` may run
    /// more than once (a backend retries after a serialization failure), so it must not have
    /// effects outside `tx`.
    pub async fn write<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
    {
        self.submit(f, None, WriteMode::Isolated).await
    }

    /// [`Store::write`] with the transaction `mode` needs (see [`WriteMode`]).
    pub async fn write_with<T, E, F>(&self, mode: WriteMode, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
    {
        self.submit(f, None, mode).await
    }

    /// [`Store::write`] for a job that also changes in-memory state: `undo` reverts it when
    /// the commit fails after `f` succeeded, before any later job runs.
    pub async fn write_undoable<T, E, F>(
        &self,
        mode: WriteMode,
        f: F,
        undo: Undo,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
    {
        self.submit(f, Some(undo), mode).await
    }

    async fn submit<T, E, F>(
        &self,
        f: F,
        undo: Option<Undo>,
        mode: WriteMode,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.inner.backend.submit(Box::new(TypedJob {
            f,
            out: None,
            reply,
            undo,
            mode,
        }));
        answer.await.map_err(|_| E::from(StoreError::WriterGone))?
    }

    /// Run `f` against a consistent snapshot, off the async runtime.
    pub async fn read<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn ReadTx) -> std::result::Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.read_blocking(f)).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(E::from(StoreError::WriterGone)),
        }
    }

    /// [`Store::read`] on the calling thread, for command-line tools outside the runtime.
    pub fn read_blocking<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&dyn ReadTx) -> std::result::Result<T, E>,
    {
        let mut f = Some(f);
        let mut out = None;
        self.inner.backend.read_blocking(&mut |tx| {
            if let Some(f) = f.take() {
                out = Some(f(tx));
            }
        })?;
        out.unwrap_or_else(|| Err(E::from(StoreError::WriterGone)))
    }
}

/// A caller's closure and the channel its typed result goes back on.
struct TypedJob<T, E, F> {
    f: F,
    out: Option<std::result::Result<T, E>>,
    reply: oneshot::Sender<std::result::Result<T, E>>,
    undo: Option<Undo>,
    mode: WriteMode,
}

impl<T, E, F> WriteJob for TypedJob<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
{
    fn run(&mut self, tx: &dyn WriteTx) -> bool {
        let out = (self.f)(tx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn mode(&self) -> WriteMode {
        self.mode
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), &StoreError>) {
        let TypedJob {
            out, reply, undo, ..
        } = *self;
        let answer = match (out, commit) {
            // The job refused: its changes were rolled back whatever the commit did.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(e)) => {
                if let Some(undo) = undo {
                    undo();
                }
                Err(E::from(for_caller(e)))
            }
            (None, Err(e)) => Err(E::from(for_caller(e))),
            (None, Ok(())) => Err(E::from(StoreError::WriterGone)),
        };
        let _ = reply.send(answer);
    }
}

/// The error each job of a failed transaction reports.
fn for_caller(e: &StoreError) -> StoreError {
    match e {
        StoreError::Busy => StoreError::Busy,
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        other => StoreError::CommitFailed(other.to_string()),
    }
}
