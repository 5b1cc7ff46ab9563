//! The single writer: a dedicated thread that owns the write connection. Jobs queue on a
//! channel; the thread takes every job waiting (up to a batch limit), runs each in its own
//! savepoint inside one `BEGIN IMMEDIATE` transaction, commits once, and only then answers
//! each job. Writers never contend for the lock, and concurrent requests share one fsync.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;

use super::SqliteTx;
use super::checkpointer::Nudge;
use crate::store::WriteJob;
use crate::store::error::StoreError;

/// Most jobs committed together; bounds the latency one batch adds to its first job.
const MAX_BATCH: usize = 512;

pub(super) struct WriterHandle {
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
}

impl WriterHandle {
    /// `epoch` is bumped after every batch's commit (see [`crate::store::cache`]); `nudge`
    /// tells the checkpointer a commit happened.
    pub(super) fn start(conn: Connection, epoch: Arc<AtomicU64>, nudge: Nudge) -> Self {
        let (jobs, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        std::thread::Builder::new()
            .name("teamgate-sqlite-writer".into())
            .spawn(move || run(conn, rx, &epoch, &nudge))
            .map(|_| ())
            .unwrap_or_else(
                |e| tracing::error!(error = %e, "cannot start the SQLite writer thread"),
            );
        Self { jobs }
    }

    /// Queue `job`. Its `finish` runs on the writer thread after the batch's commit, before
    /// any later job: an undo it carries reverts in-memory state before anything else runs.
    pub(super) fn submit(&self, job: Box<dyn WriteJob>) {
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            job.finish(Err(&StoreError::WriterGone));
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn WriteJob>>, epoch: &AtomicU64, nudge: &Nudge) {
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

fn run_batch(conn: &Connection, batch: Vec<Box<dyn WriteJob>>, epoch: &AtomicU64) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = StoreError::from(e);
        tracing::error!(error = %err, "cannot begin a write transaction");
        for job in batch {
            job.finish(Err(&err));
        }
        return;
    }
    let tx = SqliteTx::new(conn);
    let mut ran = Vec::with_capacity(batch.len());
    for mut job in batch {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "cannot open a savepoint");
            job.finish(Err(&StoreError::from(e)));
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job.run(&tx))) {
            Ok(true) => {
                let _ = conn.execute_batch("RELEASE job");
                ran.push(job);
            }
            Ok(false) => {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                ran.push(job);
            }
            Err(_) => {
                // The job's reply channel is dropped with it, so its caller sees WriterGone.
                tracing::error!("a write job panicked; its changes were rolled back");
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(e) = &commit {
        tracing::error!(error = %e, "commit failed; the whole batch was rolled back");
    }
    // After the commit and before anyone is answered: a cached read taken under the old
    // epoch is not used again once a caller can have seen this batch's result.
    epoch.fetch_add(1, Ordering::AcqRel);
    for job in ran {
        job.finish(commit.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::store::{Store, StoreError, WriteTx};

    /// A job's undo runs when the batch's commit fails (here: a deferred foreign key, checked
    /// only at COMMIT, broken by a trigger on the settings table), and not when it commits.
    #[tokio::test]
    async fn undo_runs_only_when_the_commit_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (parent INTEGER
                     REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                 CREATE TRIGGER orphan AFTER INSERT ON settings WHEN NEW.key = 'orphan'
                 BEGIN INSERT INTO child VALUES (42); END;",
            )
            .unwrap();
        let undone = Arc::new(AtomicBool::new(false));
        let flag = undone.clone();
        let failed = store
            .write_undoable(
                crate::store::WriteMode::Isolated,
                |tx: &dyn WriteTx| tx.set_setting("orphan", "x"),
                Box::new(move || flag.store(true, Ordering::SeqCst)),
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::CommitFailed(_))),
            "{failed:?}"
        );
        assert!(
            undone.load(Ordering::SeqCst),
            "the failed commit ran the undo"
        );

        let kept = Arc::new(AtomicBool::new(false));
        let flag = kept.clone();
        store
            .write_undoable(
                crate::store::WriteMode::Isolated,
                |tx: &dyn WriteTx| tx.set_setting("fine", "x"),
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
