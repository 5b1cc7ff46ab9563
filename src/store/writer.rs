//! The single writer: a dedicated thread that owns the write connection. Jobs queue on a
//! channel; the thread takes every job waiting (up to a batch limit), runs each in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction, commits once, and only then answers
//! each job. Writers never contend for the lock, and concurrent requests share one fsync.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::Nudge;
use super::error::{Result, StoreError};

/// Most jobs committed together; bounds the latency one batch adds to its first job.
const MAX_BATCH: usize = 512;

/// Called after the batch's commit: `None` when it committed, else why it did not.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// Reverts in-memory state a job changed alongside its writes, when they were not committed.
pub type Undo = Box<dyn FnOnce() + Send>;
/// Runs inside the batch transaction (or gets `None` when no transaction could be begun);
/// says whether it succeeded and how to answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Completion) + Send>;

pub(super) struct WriterHandle {
    jobs: mpsc::Sender<Job>,
}

impl WriterHandle {
    /// `epoch` is bumped after every batch's commit (see [`super::cache`]); `nudge` tells the
    /// checkpointer a commit happened.
    pub(super) fn start(conn: Connection, epoch: Arc<AtomicU64>, nudge: Nudge) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("teamgate-sqlite-writer".into())
            .spawn(move || run(conn, rx, &epoch, &nudge))
            .map(|_| ())
            .unwrap_or_else(
                |e| tracing::error!(error = %e, "cannot start the SQLite writer thread"),
            );
        Self { jobs }
    }

    /// Queue `f`; `undo` runs on this thread when `f` succeeded but the batch's commit failed,
    /// before any later job.
    pub(super) async fn submit<T, F>(&self, f: F, undo: Option<Undo>) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(
            move |conn| match conn.map(f).unwrap_or(Err(StoreError::Busy)) {
                Ok(value) => (
                    true,
                    Box::new(move |commit_error: Option<&StoreError>| {
                        if let (Some(undo), Some(_)) = (undo, commit_error) {
                            undo();
                        }
                        let _ = tx.send(match commit_error {
                            None => Ok(value),
                            Some(StoreError::Busy) => Err(StoreError::Busy),
                            Some(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                        });
                    }),
                ),
                Err(e) => (false, Box::new(move |_| drop(tx.send(Err(e))))),
            },
        );
        self.jobs.send(job).map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, epoch: &AtomicU64, nudge: &Nudge) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch, epoch);
        nudge.after_commit();
    }
}

fn run_batch(conn: &Connection, batch: Vec<Job>, epoch: &AtomicU64) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = StoreError::from(e);
        tracing::error!(error = %err, "cannot begin a write transaction");
        for job in batch {
            let (_, done) = job(None);
            done(Some(&err));
        }
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "cannot open a savepoint");
            completions.push(Box::new(|_: Option<&StoreError>| {}) as Completion);
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job(Some(conn)))) {
            Ok((true, done)) => {
                let _ = conn.execute_batch("RELEASE job");
                completions.push(done);
            }
            Ok((false, done)) => {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                completions.push(done);
            }
            Err(_) => {
                // The job's sender is dropped with it, so its caller sees WriterGone.
                tracing::error!("a write job panicked; its changes were rolled back");
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let err = commit.err();
    if let Some(e) = &err {
        tracing::error!(error = %e, "commit failed; the whole batch was rolled back");
    }
    // After the commit and before anyone is answered: a cached read taken under the old
    // epoch is not used again once a caller can have seen this batch's result.
    epoch.fetch_add(1, Ordering::AcqRel);
    for done in completions {
        done(err.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::store::{Store, StoreError};

    /// A job's undo runs when the batch's commit fails (here: a deferred foreign key, checked
    /// only at COMMIT), and not when it commits.
    #[tokio::test]
    async fn undo_runs_only_when_the_commit_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .write(|conn| {
                Ok(conn.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                     CREATE TABLE child (parent INTEGER
                         REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
                )?)
            })
            .await
            .unwrap();
        let undone = Arc::new(AtomicBool::new(false));
        let flag = undone.clone();
        let failed = store
            .write_undoable(
                |conn| Ok(conn.execute("INSERT INTO child VALUES (42)", [])?),
                Box::new(move || flag.store(true, Ordering::SeqCst)),
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Corrupt(_))), "{failed:?}");
        assert!(
            undone.load(Ordering::SeqCst),
            "the failed commit ran the undo"
        );

        let kept = Arc::new(AtomicBool::new(false));
        let flag = kept.clone();
        store
            .write_undoable(
                |conn| Ok(conn.execute("INSERT INTO parent VALUES (1)", [])?),
                Box::new(move || flag.store(true, Ordering::SeqCst)),
            )
            .await
            .unwrap();
        assert!(
            !kept.load(Ordering::SeqCst),
            "a committed job is not undone"
        );
    }
}
