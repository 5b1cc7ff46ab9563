//! Telling the other replicas that cached rows changed, without serialising commits.
//!
//! PostgreSQL holds one database-wide lock from a notifying transaction's pre-commit until its
//! end, WAL flush included, so transactions that NOTIFY commit one at a time and never share a
//! flush: with the NOTIFY inside every login's transaction, logins on PostgreSQL topped out at
//! 446/s, 7.5 ms per COMMIT. So a write job that changed cached rows (users, sessions) commits
//! plain and then waits here: one task sends `NOTIFY teamgate_commit` in a transaction of its
//! own for every job that committed before it started, and the jobs are answered once the
//! notification covering their commit is sent. Answers keep their order with the
//! notification (a replica told of a deprovisioning before the IdP is told "done"), and one
//! NOTIFY serves every commit of its round.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::runtime::Handle;

use super::COMMIT_CHANNEL;

/// How long a job waits for its notification before it is answered anyway (the other
/// replicas' caches still expire: `store::cache`'s two seconds).
const WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Rounds {
    /// Commits that asked for a notification, counted.
    asked: u64,
    /// Every commit up to this count is covered by a sent notification.
    sent: u64,
}

/// The notification rounds of one process.
pub(super) struct Notifier {
    rounds: Mutex<Rounds>,
    done: Condvar,
    wake: tokio::sync::Notify,
}

impl Notifier {
    /// Start the task that sends the notifications of `origin` on connections from `pool`
    /// (abort it with the backend).
    pub(super) fn start(
        rt: &Handle,
        pool: Pool,
        origin: String,
    ) -> (Arc<Notifier>, tokio::task::JoinHandle<()>) {
        let notifier = Arc::new(Notifier {
            rounds: Mutex::new(Rounds::default()),
            done: Condvar::new(),
            wake: tokio::sync::Notify::new(),
        });
        let sql = format!("NOTIFY {COMMIT_CHANNEL}, '{origin}'");
        let n = notifier.clone();
        let task = rt.spawn(async move {
            loop {
                n.wake.notified().await;
                loop {
                    let (target, sent) = {
                        let rounds = n.lock();
                        (rounds.asked, rounds.sent)
                    };
                    if target == sent {
                        break;
                    }
                    let outcome = match pool.get().await {
                        Ok(conn) => conn.batch_execute(&sql).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(why) = outcome {
                        // The others' caches expire on their own; say so and move on.
                        tracing::warn!(%why, "could not notify the other replicas of a commit");
                    }
                    n.lock().sent = target;
                    n.done.notify_all();
                }
            }
        });
        (notifier, task)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rounds> {
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a commit that changed cached rows: block until a notification sent after it has
    /// gone out (at most [`WAIT`]). Call on a blocking thread.
    pub(super) fn committed_and_wait(&self) {
        let mine = {
            let mut rounds = self.lock();
            rounds.asked += 1;
            rounds.asked
        };
        self.wake.notify_one();
        let rounds = self.lock();
        let (rounds, waited) = self
            .done
            .wait_timeout_while(rounds, WAIT, |r| r.sent < mine)
            .unwrap_or_else(|p| p.into_inner());
        drop(rounds);
        if waited.timed_out() {
            tracing::warn!("answered before the other replicas were notified of the commit");
        }
    }
}
