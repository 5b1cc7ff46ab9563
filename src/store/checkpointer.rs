//! WAL checkpoints off the writer thread. Left to SQLite, the commit that crosses the
//! `wal_autocheckpoint` size copies the whole WAL back into the database file and fsyncs it
//! before it returns, so every request in that batch waits for it (the p99 of SCIM user
//! creation). Instead the writer runs with automatic checkpoints off and nudges this thread
//! after each commit; it runs a PASSIVE checkpoint (never blocks the writer or readers) on its
//! own connection at most every [`MIN_INTERVAL`]. Once a checkpoint has copied every frame and
//! no reader still needs them, the writer's next transaction starts the WAL over from the top,
//! so the file stays bounded as before.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints: bounds their cost under a stream of commits, while
/// the WAL between two stays small (a few thousand pages at the highest write rates).
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// The writer's side: a nudge after each commit. Never blocks.
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    pub(super) fn after_commit(&self) {
        // Full: a nudge is already pending. Disconnected: the thread could not start; SQLite's
        // own checkpoint when the database is closed still bounds the WAL.
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
        if let Err(e) = checkpoint(conn) {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries it");
        }
        std::thread::sleep(MIN_INTERVAL);
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copy back what no reader still needs. Returns the WAL's
/// size and the frames now in the database, in pages.
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::store::Store;

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
            .write(|conn| {
                conn.execute_batch("CREATE TABLE blobs (b BLOB)")?;
                for _ in 0..64 {
                    conn.execute("INSERT INTO blobs VALUES (zeroblob(16384))", [])?;
                }
                Ok(())
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
