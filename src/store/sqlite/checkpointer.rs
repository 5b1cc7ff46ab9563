//! WAL checkpoints, mostly off the writer thread. Left to SQLite alone, the commit that
//! crosses the `wal_autocheckpoint` size copies every frame written since the last checkpoint
//! back into the database file and fsyncs it before it returns, so every request in that batch
//! waits for it (the p99 of SCIM user creation). Here this thread runs a PASSIVE checkpoint
//! (never blocks the writer or readers) on its own connection after commits, at most every
//! [`MIN_INTERVAL`], so the database file keeps up with the WAL.
//!
//! That alone does not bound the WAL: SQLite starts the log over only when a write begins
//! after every frame was copied back, which under a steady stream of commits never happens
//! (measured: a 3.4 GB WAL for 100,000 SCIM creations), and a RESTART checkpoint from this
//! thread starves behind the writer. So the writer keeps SQLite's automatic checkpoint at
//! [`WRITER_CHECKPOINT_AT`] pages: it runs right after a commit, on the writer thread, with
//! only the frames written since this thread's last pass left to copy, and the next write
//! starts the log over; `journal_size_limit` then trims the file.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints of this thread: bounds their cost (each fsyncs the
/// database file) under a stream of commits.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// WAL size, in pages (4 KiB), at which the writer checkpoints after its commit (16 MiB).
pub(super) const WRITER_CHECKPOINT_AT: i64 = 4096;

/// Size the WAL file is cut back to when the log starts over (`PRAGMA journal_size_limit`).
pub(super) const WAL_SIZE_LIMIT: i64 = 32 * 1024 * 1024;

/// The writer's side: a nudge after each commit. Never blocks.
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    pub(super) fn after_commit(&self) {
        // Full: a nudge is already pending. Disconnected: the thread could not start; the
        // writer's own checkpoint still bounds the WAL, only less cheaply.
        let _ = self.0.try_send(());
    }
}

/// Start the checkpoint thread on `conn` (a read-write connection to the same database).
pub(super) fn start(conn: Connection) -> Nudge {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("teamgate-sqlite-checkpoint".into())
        .spawn(move || run(&conn, &rx))
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the WAL checkpoint thread"));
    Nudge(tx)
}

/// Until the writer (the only sender) is gone: wait for a commit, checkpoint, rest.
fn run(conn: &Connection, nudges: &Receiver<()>) {
    while nudges.recv().is_ok() {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries it");
        }
        std::thread::sleep(MIN_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::store::{Store, WriteTx};

    /// A value of `len` bytes that no page can share with another (random hex).
    fn blob(len: i64) -> String {
        let len = usize::try_from(len).unwrap();
        let mut out = String::with_capacity(len);
        while out.len() < len {
            out.push_str(&format!("{:032x}", rand::random::<u128>()));
        }
        out.truncate(len);
        out
    }

    /// Under a steady stream of commits (eight writers, no pause) the WAL file stays bounded:
    /// with this thread's PASSIVE checkpoints alone it held every frame written, 96 MiB here
    /// (3.4 GB in the SCIM benchmark).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_commits_keeps_the_wal_bounded() {
        const WRITERS: usize = 8;
        const ROWS_EACH: usize = 384;
        const ROW: i64 = 32 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let wal = dir.path().join("t.db-wal");
        let store = Store::open(&path).unwrap();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                let mut largest = 0;
                for row in 0..ROWS_EACH {
                    let key = format!("blob-{writer}-{row}");
                    store
                        .write(move |tx: &dyn WriteTx| tx.set_setting(&key, &blob(ROW)))
                        .await
                        .unwrap();
                    largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
                }
                largest
            }));
        }
        let mut largest = 0;
        for task in tasks {
            largest = largest.max(task.await.unwrap());
        }
        let written = (WRITERS * ROWS_EACH) as u64 * ROW as u64;
        assert!(
            largest < written * 3 / 4,
            "the WAL reached {largest} bytes for {written} bytes written"
        );
    }

    /// With automatic checkpoints off on the writer, only this thread moves committed pages
    /// into the database file while the store is open.
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_while_the_store_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        store
            .write(|tx: &dyn WriteTx| {
                for row in 0..64 {
                    tx.set_setting(&format!("blob-{row}"), &blob(16384))?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while size() < before + 1_000_000 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            size() >= before + 1_000_000,
            "the database file stayed at {} bytes (was {before})",
            size()
        );
    }
}
