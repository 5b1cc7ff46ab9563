//! Storage behind a port. The use cases read through [`Store::read`] (a consistent snapshot)
//! and write through [`Store::write`] (one transaction, acknowledged only once durable), with
//! closures over the typed operations of [`port`]; no database type crosses this boundary.
//! [`Backend`] is what an implementation provides: [`sqlite`] today (one writer thread, group
//! commit, a savepoint per job).
//!
//! The records the operations read and write live beside the port, one module per area
//! ([`users`], [`memberships`], [`scim`], [`audit`], [`keys`]); [`sessions`] adapts the
//! session operations to tower-sessions; [`cache`] keeps the hot per-request reads in memory
//! until the next commit; [`applied`] keeps the applied-config snapshot and reload outcomes.

pub mod applied;
pub mod audit;
pub mod cache;
pub mod error;
pub mod grants;
pub mod keys;
pub mod memberships;
pub mod port;
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

/// One queued write, as a backend sees it: run it inside the transaction (possibly again,
/// after a serialization failure), then tell it how the commit went.
pub trait WriteJob: Send {
    /// Run inside the transaction; `false` when the job failed and its changes must be rolled
    /// back (the rest of the transaction is unaffected).
    fn run(&mut self, tx: &dyn WriteTx) -> bool;
    /// Called once, after the transaction committed (`Ok`) or failed (`Err`, also when the
    /// job never ran because no transaction could be begun).
    fn finish(self: Box<Self>, commit: std::result::Result<(), &StoreError>);
}

/// What a storage implementation provides.
pub trait Backend: Send + Sync + 'static {
    /// Queue `job` for a write transaction; never blocks.
    fn submit(&self, job: Box<dyn WriteJob>);
    /// Run `f` against a consistent snapshot on the calling thread (a blocking one).
    fn read_blocking(&self, f: &mut dyn FnMut(&dyn ReadTx)) -> Result<()>;
    /// Where the data lives, for logs and messages (a file path, a URL without password).
    fn location(&self) -> String;
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
        self.inner.epoch.load(Ordering::Acquire)
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
        self.submit(f, None).await
    }

    /// [`Store::write`] for a job that also changes in-memory state: `undo` reverts it when
    /// the commit fails after `f` succeeded, before any later job runs.
    pub async fn write_undoable<T, E, F>(&self, f: F, undo: Undo) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&dyn WriteTx) -> std::result::Result<T, E> + Send + 'static,
    {
        self.submit(f, Some(undo)).await
    }

    async fn submit<T, E, F>(&self, f: F, undo: Option<Undo>) -> std::result::Result<T, E>
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
