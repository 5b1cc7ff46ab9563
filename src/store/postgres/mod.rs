//! The PostgreSQL implementation of the storage port, for several replicas on one database.
//! Every `tokio_postgres` and `deadpool` type of teamgate lives below this module.
//!
//! The port is synchronous on purpose (a write closure may be re-run; use cases see no async
//! database API), so each job runs on a blocking thread (`spawn_blocking`) that drives the
//! async client statement by statement (`Handle::block_on`):
//!
//! - a write job gets a pooled connection and one READ COMMITTED transaction in which every
//!   read of an entity row (user, SCIM user or group, setting) takes its row lock
//!   ([`WriteMode::Isolated`]: read-modify-writes of one entity queue behind each other), blind
//!   one-row writes take none, and the config sync takes an exclusive advisory lock that every
//!   other write job takes shared (so the config in force never changes under a running job, in
//!   any replica). A deadlock or serialization failure (SQLSTATE 40P01, 40001) re-runs the job
//!   in a new transaction, a bounded number of times. The job is answered only after COMMIT
//!   returned, with `synchronous_commit = on`.
//! - a read gets a pooled connection in a REPEATABLE READ READ ONLY transaction (one snapshot).
//! - after a commit that changed a cached row (users, sessions), a notification tells the other
//!   replicas before the job is answered (`notifier`: sent after the commit, one NOTIFY for
//!   every commit of its round, since a NOTIFY inside the transaction serialises commits),
//!   and they bump their commit epoch ([`listen`]); while the notification connection is
//!   down, caches are bypassed ([`super::Backend::coherent`]).
//! - migrations ([`migrations`], `sql/`) run under an advisory lock at start.
//!
//! One module per table group, mirroring `store/sqlite`: [`users`], [`memberships`],
//! [`sessions`], [`audit`], [`settings`], [`keys`], [`scim`] (with its jsonb filter twin),
//! [`grants`] (the OpenID provider's grants and tokens), [`refresh_grants`] (sealed IdP refresh
//! tokens); [`connect`] builds the pool and TLS (rustls, the crate's one TLS stack);
//! `statistics` runs `ANALYZE` while a new database fills up, before autovacuum does.

pub mod audit;
pub mod connect;
pub mod grants;
pub mod import;
pub mod keys;
pub mod listen;
pub mod memberships;
pub mod migrations;
mod notifier;
pub mod refresh_grants;
pub mod scim;
pub mod sessions;
pub mod settings;
mod statistics;
pub mod users;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::runtime::Handle;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::error::{Result, StoreError};
use super::{Backend, ReadTx, StoreEvent, WriteJob, WriteMode};
use crate::config::PgDatabase;

/// Attempts of a write job that keeps meeting serialization failures.
const MAX_ATTEMPTS: u32 = 24;
/// The advisory lock every write job takes shared and the config sync exclusive.
/// (Tests name it too: `pg_advisory_lock(8386093285548536933)` blocks every write.)
pub const WRITE_LOCK: i64 = 8386093285548536933;
/// The notification channel of commits that changed cached rows.
pub const COMMIT_CHANNEL: &str = "teamgate_commit";

/// A parameter list.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What the backend shares with its blocking threads and its listener.
struct Shared {
    pool: Pool,
    rt: Handle,
    epoch: Arc<AtomicU64>,
    /// False while the notification connection is down.
    coherent: Arc<AtomicBool>,
    /// This process's id in notifications (its own are not acted on twice).
    origin: String,
    location: String,
    events: tokio::sync::broadcast::Sender<StoreEvent>,
    /// The config in force, kept on the applied version (see [`Backend::follow_config`]).
    follow: std::sync::OnceLock<Arc<crate::config::LiveConfig>>,
    /// Held by a job while it runs again after a serialization failure: jobs that met a
    /// conflict retry one at a time in this process, so a burst on one hot row (a hundred
    /// logins of one user) drains instead of colliding again and again.
    retry_gate: std::sync::Mutex<()>,
    /// When to gather planner statistics while the tables fill up.
    statistics: statistics::Schedule,
    /// Tells the other replicas of commits that changed cached rows (serving processes only).
    notifier: std::sync::OnceLock<Arc<notifier::Notifier>>,
}

pub struct PgBackend {
    shared: Arc<Shared>,
    /// A runtime of our own when opened outside one (the command-line tools).
    own_runtime: Option<tokio::runtime::Runtime>,
    listener: Option<tokio::task::JoinHandle<()>>,
    /// The task sending this process's commit notifications (serving processes only).
    notifying: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        if let Some(notifying) = self.notifying.take() {
            notifying.abort();
        }
        if let Some(rt) = self.own_runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PgBackend {
    /// Connect, apply pending migrations (under an advisory lock) and start listening for
    /// other replicas' commits, which bump `epoch` like this process's own. Blocks: call it
    /// where blocking is allowed (a blocking thread, or outside any runtime).
    pub fn open(db: &PgDatabase, epoch: Arc<AtomicU64>) -> Result<PgBackend> {
        Self::open_with(db, epoch, true)
    }

    /// Connect to an already migrated database (the command-line tools): no migration, no
    /// listener.
    pub fn open_existing(db: &PgDatabase, epoch: Arc<AtomicU64>) -> Result<PgBackend> {
        Self::open_with(db, epoch, false)
    }

    /// Connect and migrate, without listening (`teamgate migrate-db`).
    pub fn open_existing_or_migrate(db: &PgDatabase) -> Result<PgBackend> {
        let mut backend = Self::open_with(db, Arc::new(AtomicU64::new(0)), true)?;
        if let Some(listener) = backend.listener.take() {
            listener.abort();
        }
        Ok(backend)
    }

    fn open_with(db: &PgDatabase, epoch: Arc<AtomicU64>, serve: bool) -> Result<PgBackend> {
        let (rt, own_runtime) = match Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Open {
                        path: db.describe(),
                        source: Box::new(e),
                    })?;
                (runtime.handle().clone(), Some(runtime))
            }
        };
        let pool = connect::pool(db)?;
        let location = db.describe();
        let (events, _) = tokio::sync::broadcast::channel(256);
        let shared = Arc::new(Shared {
            pool,
            rt,
            epoch,
            coherent: Arc::new(AtomicBool::new(!serve)),
            origin: crate::domain::ids::random_id(),
            location,
            events,
            follow: std::sync::OnceLock::new(),
            retry_gate: std::sync::Mutex::new(()),
            statistics: statistics::Schedule::default(),
            notifier: std::sync::OnceLock::new(),
        });
        // Fail fast and clearly when the server is not there.
        let setup = || -> Result<()> {
            let conn = shared.connection()?;
            if serve {
                migrations::apply(&shared.rt, &conn)
            } else {
                migrations::check(&shared.rt, &conn)
            }
        };
        setup().map_err(|e| match e {
            StoreError::Unavailable(why) => StoreError::Open {
                path: shared.location.clone(),
                source: why.into(),
            },
            other => other,
        })?;
        let listener =
            serve.then(|| listen::start(&shared.rt, db.clone(), listen::Sink::from(&shared)));
        // Without it (the command-line tools), a commit notifies inside its transaction.
        let notifying = serve.then(|| {
            let (notifier, task) =
                notifier::Notifier::start(&shared.rt, shared.pool.clone(), shared.origin.clone());
            let _ = shared.notifier.set(notifier);
            task
        });
        Ok(PgBackend {
            shared,
            own_runtime,
            listener,
            notifying,
        })
    }
}

impl Shared {
    /// A pooled connection (blocking).
    fn connection(&self) -> Result<Object> {
        self.rt
            .block_on(self.pool.get())
            .map_err(|e| StoreError::Unavailable(connect::pool_error(&e)))
    }

    fn run_job(&self, mut job: Box<dyn WriteJob>) {
        let mode = job.mode();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let _single_file = (attempt > 1).then(|| match self.retry_gate.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            });
            match self.attempt(&mut *job, mode) {
                Attempt::Committed { notify } => {
                    // After the commit, before anyone is answered (see `store::cache`).
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    if notify && let Some(notifier) = self.notifier.get() {
                        notifier.committed_and_wait();
                    }
                    job.finish(Ok(()));
                    if self.statistics.committed() {
                        statistics::gather(&self.rt, &self.pool);
                    }
                    return;
                }
                Attempt::Refused => {
                    job.finish(Ok(()));
                    return;
                }
                Attempt::Panicked => {
                    tracing::error!("a write job panicked; its transaction was rolled back");
                    return;
                }
                Attempt::Retry(why) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, why, "write transaction retried");
                    backoff(attempt);
                }
                Attempt::Retry(why) => {
                    tracing::warn!(attempts = attempt, why, "write transaction gave up");
                    job.finish(Err(&StoreError::Busy));
                    return;
                }
                Attempt::Failed(e) => {
                    tracing::error!(error = %e, "write transaction failed");
                    job.finish(Err(&e));
                    return;
                }
            }
        }
    }

    fn attempt(&self, job: &mut dyn WriteJob, mode: WriteMode) -> Attempt {
        let conn = match self.connection() {
            Ok(c) => c,
            Err(e) => return Attempt::Failed(e),
        };
        // Isolated and Simple end with the shared lock's SELECT, which `attempt_in` extends by
        // a column.
        let begin = match mode {
            WriteMode::Isolated => {
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared(8386093285548536933)"
            }
            WriteMode::Simple => {
                "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared(8386093285548536933)"
            }
            // Alone: every other write job waits on the shared lock.
            WriteMode::Exclusive => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        if mode == WriteMode::Exclusive
            && let Err(e) = self
                .rt
                // The config sync waits for the jobs in flight, however long they take (a
                // replica starting while another syncs waits for it too).
                .block_on(conn.batch_execute(
                    "SET lock_timeout = 0; SELECT pg_advisory_lock(8386093285548536933); RESET lock_timeout",
                ))
        {
            return Attempt::Failed(classify(&e));
        }
        // Waiting on a lock longer than this is `Busy` (503 with Retry-After), as SQLite's
        // busy timeout.
        let outcome = self.attempt_in(&conn, begin, mode, job);
        if mode == WriteMode::Exclusive {
            // Released after the commit or rollback; a lost connection releases it anyway.
            let _ = self
                .rt
                .block_on(conn.batch_execute("SELECT pg_advisory_unlock(8386093285548536933)"));
        }
        outcome
    }

    fn attempt_in(
        &self,
        conn: &Object,
        begin: &str,
        mode: WriteMode,
        job: &mut dyn WriteJob,
    ) -> Attempt {
        // In the same round trip and the same statement as the shared lock (so no config sync
        // runs until this transaction ends): the applied config version.
        let follow = self.follow.get().filter(|_| mode != WriteMode::Exclusive);
        let sql = match follow {
            Some(_) => format!(
                "{begin}, (SELECT value FROM settings WHERE key = '{}')",
                super::applied::VERSION_KEY
            ),
            None => begin.to_owned(),
        };
        let stored_version = match self.rt.block_on(conn.simple_query(&sql)) {
            Ok(messages) => messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) if follow.is_some() => {
                    r.get(1).and_then(|v| v.parse::<u64>().ok())
                }
                _ => None,
            }),
            Err(e) => {
                let _ = self.rt.block_on(conn.batch_execute("ROLLBACK"));
                return if retryable(&e) {
                    Attempt::Retry("begin")
                } else {
                    Attempt::Failed(classify(&e))
                };
            }
        };
        let tx = PgTx::new(conn, &self.rt, mode == WriteMode::Isolated);
        if let (Some(live), Some(stored)) = (follow, stored_version)
            && stored > live.version()
        {
            // Another replica applied a newer config: run this job under it, as that replica's
            // own jobs do.
            match super::applied::load_text(&tx) {
                Ok(Some(applied)) => {
                    if let Err(why) = super::applied::follow(&applied, live) {
                        tracing::error!(%why, "cannot switch to the applied config");
                        live.set_file_differs(Some(why));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = self.rt.block_on(conn.batch_execute("ROLLBACK"));
                    return Attempt::Failed(e);
                }
            }
        }
        let ran = catch_unwind(AssertUnwindSafe(|| job.run(&tx)));
        let retry = tx.retry.get();
        let notify = tx.changed_cached.get();
        let rollback = || {
            let _ = self.rt.block_on(conn.batch_execute("ROLLBACK"));
        };
        match ran {
            Err(_) => {
                rollback();
                Attempt::Panicked
            }
            Ok(_) if retry => {
                rollback();
                Attempt::Retry("serialization failure")
            }
            Ok(false) => {
                rollback();
                Attempt::Refused
            }
            Ok(true) => {
                // A serving process tells the other replicas after the commit (see
                // `notifier`); a command-line tool's few commits notify in the transaction.
                let commit = if notify && self.notifier.get().is_none() {
                    format!("NOTIFY {COMMIT_CHANNEL}, '{}'; COMMIT", self.origin)
                } else {
                    "COMMIT".to_owned()
                };
                match tx.commit(&commit) {
                    Ok(()) => Attempt::Committed { notify },
                    Err(e) => {
                        rollback();
                        if retryable(&e) {
                            Attempt::Retry("commit")
                        } else {
                            Attempt::Failed(StoreError::CommitFailed(classify(&e).to_string()))
                        }
                    }
                }
            }
        }
    }
}

enum Attempt {
    /// Committed; `notify` when rows other replicas may have cached changed.
    Committed {
        notify: bool,
    },
    /// The job failed; its own error goes back to its caller.
    Refused,
    Panicked,
    Retry(&'static str),
    Failed(StoreError),
}

/// Sleep a little before another attempt: a random part of a window that doubles with each
/// attempt (1 ms, 2 ms, ... capped at 64 ms), so conflicting jobs stop meeting.
fn backoff(attempt: u32) {
    let window = 1u64 << attempt.min(6);
    let ms = rand::random_range(0..=window);
    std::thread::sleep(Duration::from_millis(ms));
}

/// A serialization failure or deadlock: the transaction is worth re-running.
fn retryable(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// A PostgreSQL error, classified: serialization failures and deadlocks are [`StoreError::Busy`]
/// (the caller re-runs the job), a broken connection [`StoreError::Unavailable`].
pub fn classify(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if retryable(e) || *code == SqlState::LOCK_NOT_AVAILABLE {
            return StoreError::Busy;
        }
        if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *code == SqlState::UNTRANSLATABLE_CHARACTER
        {
            return StoreError::Unstorable(
                "PostgreSQL text cannot hold a NUL character (U+0000)".into(),
            );
        }
        if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            return StoreError::Unavailable(db.message().to_owned());
        }
        return StoreError::Database(format!("{} ({})", db.message(), code.code()).into());
    }
    if e.is_closed() {
        return StoreError::Unavailable("the connection to PostgreSQL is closed".into());
    }
    StoreError::Unavailable(connect::error_chain(e))
}

impl Backend for PgBackend {
    fn submit(&self, job: Box<dyn WriteJob>) {
        let shared = self.shared.clone();
        self.shared.rt.spawn_blocking(move || shared.run_job(job));
    }

    fn read_blocking(&self, f: &mut dyn FnMut(&dyn ReadTx)) -> Result<()> {
        let conn = self.shared.connection()?;
        let rt = &self.shared.rt;
        let tx = PgTx::new(&conn, rt, false);
        // One snapshot for everything `f` reads; BEGIN travels with its first statement.
        tx.defer_begin(Box::pin(
            conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        ));
        f(&tx);
        let began = tx.began.get();
        drop(tx);
        if began {
            // Nothing to commit; ending it only releases the snapshot, so nobody waits for
            // it: the connection goes back to the pool when it is done.
            rt.spawn(async move {
                let _ = conn.batch_execute("COMMIT").await;
            });
        }
        Ok(())
    }

    fn location(&self) -> String {
        self.shared.location.clone()
    }

    fn coherent(&self) -> bool {
        self.shared.coherent.load(Ordering::Acquire)
    }

    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        Some(self.shared.events.subscribe())
    }

    fn with_lease(&self, name: &str, job: &mut dyn FnMut()) -> Result<bool> {
        let conn = self.shared.connection()?;
        let rt = &self.shared.rt;
        let key = lease_key(name);
        let row = rt
            .block_on(conn.query_one("SELECT pg_try_advisory_lock($1)", &[&key]))
            .map_err(|e| classify(&e))?;
        let held: bool = row.try_get(0).map_err(corrupt)?;
        if !held {
            return Ok(false);
        }
        job();
        let _ = rt.block_on(conn.query_one("SELECT pg_advisory_unlock($1)", &[&key]));
        Ok(true)
    }

    fn follow_config(&self, live: Arc<crate::config::LiveConfig>) {
        let _ = self.shared.follow.set(live);
    }

    fn broadcast(&self, channel: &str, payload: &str) -> Result<()> {
        let conn = self.shared.connection()?;
        self.shared
            .rt
            .block_on(conn.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]))
            .map_err(|e| classify(&e))?;
        Ok(())
    }
}

/// The advisory-lock key of a lease: the first 8 bytes of the SHA-256 of its name.
fn lease_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("teamgate lease {name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The operations of the port on one connection inside its transaction.
pub struct PgTx<'c> {
    conn: &'c Object,
    rt: &'c Handle,
    /// Set when a statement met a serialization failure or deadlock: the job is re-run.
    retry: Cell<bool>,
    /// Set when a row other processes may have cached (users, sessions) changed.
    changed_cached: Cell<bool>,
    /// Reads of entity rows lock them (see [`WriteMode::Isolated`]).
    locking: bool,
    /// A BEGIN not sent yet: it goes with the first statement.
    pending_begin: std::cell::RefCell<Option<PendingBegin<'c>>>,
    /// Whether a deferred BEGIN was sent.
    began: Cell<bool>,
    /// Writes whose results nobody reads, not sent yet: they go with the next statement.
    later: std::cell::RefCell<Vec<Later<'c>>>,
}

type PendingBegin<'c> =
    std::pin::Pin<Box<dyn Future<Output = std::result::Result<(), tokio_postgres::Error>> + 'c>>;
type Later<'c> =
    std::pin::Pin<Box<dyn Future<Output = std::result::Result<u64, tokio_postgres::Error>> + 'c>>;
/// An owned parameter of a statement sent later.
pub type OwnedParam = Box<dyn ToSql + Sync + Send>;

impl<'c> PgTx<'c> {
    fn new(conn: &'c Object, rt: &'c Handle, locking: bool) -> Self {
        Self {
            conn,
            rt,
            retry: Cell::new(false),
            changed_cached: Cell::new(false),
            locking,
            pending_begin: std::cell::RefCell::new(None),
            began: Cell::new(false),
            later: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// ` FOR UPDATE` in a locking write transaction, nothing elsewhere: appended to the reads
    /// of one entity row.
    pub fn lock_clause(&self) -> &'static str {
        if self.locking { " FOR UPDATE" } else { "" }
    }

    fn fail(&self, e: &tokio_postgres::Error) -> StoreError {
        let err = classify(e);
        if retryable(e) {
            self.retry.set(true);
        }
        if let Some(db) = e.as_db_error()
            && *db.code() == SqlState::IN_FAILED_SQL_TRANSACTION
        {
            // An earlier error was swallowed; only a new attempt can go on.
            self.retry.set(true);
        }
        err
    }

    /// A failed unique index is a conflict (SCIM 409), not an internal error.
    fn conflict(&self, e: &tokio_postgres::Error, what: &str) -> StoreError {
        match e.as_db_error() {
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
                StoreError::Conflict(what.to_owned())
            }
            _ => self.fail(e),
        }
    }

    pub fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.drive(async {
            let st = self.conn.prepare_cached(sql).await?;
            self.conn.query(&st, params).await
        })
        .map_err(|e| self.fail(&e))
    }

    pub fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let mut rows = self.query(sql, params)?;
        Ok(if rows.is_empty() {
            None
        } else {
            Some(rows.swap_remove(0))
        })
    }

    pub fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))
    }

    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.drive(async {
            let st = self.conn.prepare_cached(sql).await?;
            self.conn.execute(&st, params).await
        })
        .map_err(|e| self.fail(&e))
    }

    /// [`PgTx::execute`] where a unique index refusing the row means `what` is taken.
    pub fn execute_unique(&self, sql: &str, params: Params<'_>, what: &str) -> Result<u64> {
        self.drive(async {
            let st = self.conn.prepare_cached(sql).await?;
            self.conn.execute(&st, params).await
        })
        .map_err(|e| self.conflict(&e, what))
    }

    /// [`PgTx::query_opt`] where a unique index refusing the row means `what` is taken.
    pub fn query_unique(&self, sql: &str, params: Params<'_>, what: &str) -> Result<Option<Row>> {
        self.drive(async {
            let st = self.conn.prepare_cached(sql).await?;
            self.conn.query_opt(&st, params).await
        })
        .map_err(|e| self.conflict(&e, what))
    }

    /// [`PgTx::query`], or [`PgTx::query_dynamic`] when `cached` is false.
    pub fn query_maybe_cached(
        &self,
        cached: bool,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>> {
        if cached {
            self.query(sql, params)
        } else {
            self.query_dynamic(sql, params)
        }
    }

    pub fn query_one_maybe_cached(
        &self,
        cached: bool,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row> {
        self.query_maybe_cached(cached, sql, params)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))
    }

    /// A statement built at run time (filters): prepared without the cache.
    pub fn query_dynamic(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.drive(self.conn.query(sql, params))
            .map_err(|e| self.fail(&e))
    }

    /// A write whose result nobody reads (an audit row, a membership row the reconcile
    /// decided): it goes out with the transaction's next statement or its COMMIT, in the same
    /// round trip and in order. Should it fail, that statement's call (or the commit) fails
    /// with its error, and the transaction is rolled back as for any failed statement.
    pub fn execute_later(&self, sql: &'static str, params: Vec<OwnedParam>) -> Result<()> {
        // Prepared now (a cache hit but the first time, and not a reason to send the writes
        // waiting before it): when the batch goes out, this statement's messages are sent at
        // its first poll, ahead of the next statement's.
        let statement = self
            .rt
            .block_on(self.conn.prepare_cached(sql))
            .map_err(|e| self.fail(&e))?;
        let conn = self.conn;
        self.later.borrow_mut().push(Box::pin(async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            conn.execute(&statement, &refs).await
        }));
        Ok(())
    }

    /// Run one statement's future to completion on this blocking thread. A deferred BEGIN
    /// and the writes sent later go first, in the same round trip (the connection keeps
    /// their order); the first error among them is the answer.
    fn drive<T>(
        &self,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> std::result::Result<T, tokio_postgres::Error> {
        let begin = self.pending_begin.borrow_mut().take();
        let later = std::mem::take(&mut *self.later.borrow_mut());
        if begin.is_none() && later.is_empty() {
            return self.rt.block_on(fut);
        }
        if begin.is_some() {
            self.began.set(true);
        }
        self.rt.block_on(async move {
            let begin = async {
                match begin {
                    Some(begin) => begin.await,
                    None => Ok(()),
                }
            };
            let (begun, sent, out) =
                tokio::join!(begin, futures_util::future::join_all(later), fut);
            begun?;
            for result in sent {
                result?;
            }
            out
        })
    }

    /// Commit (with whatever else `sql` says): the writes sent later go first.
    fn commit(&self, sql: &str) -> std::result::Result<(), tokio_postgres::Error> {
        self.drive(self.conn.batch_execute(sql))
    }

    /// Send `begin` with the first statement rather than on its own (reads: one round trip
    /// less).
    fn defer_begin(&self, begin: PendingBegin<'c>) {
        *self.pending_begin.borrow_mut() = Some(begin);
    }

    /// Note that a row other replicas may have cached changed in this transaction.
    pub fn changed_cached_rows(&self) {
        self.changed_cached.set(true);
    }
}

/// A column, decoded or reported as corrupt.
pub fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(corrupt)
}

/// `usize` limits and offsets as PostgreSQL's BIGINT.
pub fn big(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
