//! The `sessions` table on PostgreSQL (twin of `store/sqlite/sessions.rs`).

use super::{PgTx, big, get};
use crate::store::error::Result;
use crate::store::port::{SessionReads, SessionWrites};
use crate::store::sessions::{SessionDetails, StoredSession};

impl PgTx<'_> {
    /// How many sessions have no signed-in user: the sum of the counter rows the triggers of
    /// migration 0004 keep.
    fn pending_sessions(&self) -> Result<i64> {
        get(
            &self.query_one(
                "SELECT COALESCE(SUM(pending), 0)::bigint FROM session_stats",
                &[],
            )?,
            0,
        )
    }
}

impl SessionReads for PgTx<'_> {
    fn session(&self, id_hash: &str) -> Result<Option<(String, i64)>> {
        self.query_opt(
            "SELECT data, expires_at FROM sessions WHERE id = $1",
            &[&id_hash],
        )?
        .map(|r| Ok((get(&r, 0)?, get(&r, 1)?)))
        .transpose()
    }

    fn session_count(&self, user_id: i64) -> Result<i64> {
        get(
            &self.query_one(
                "SELECT COUNT(*) FROM sessions WHERE user_id = $1",
                &[&user_id],
            )?,
            0,
        )
    }

    fn pending_session_count(&self) -> Result<i64> {
        self.pending_sessions()
    }

    fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<StoredSession>> {
        // SQLite sorts NULL first ascending, so last descending; PostgreSQL's default is the
        // opposite: NULLS LAST keeps the same order.
        self.query(
            "SELECT id, created_at, last_seen_at, client_ip, user_agent, expires_at FROM sessions
             WHERE user_id = $1 AND expires_at >= $2
             ORDER BY last_seen_at DESC NULLS LAST, created_at DESC NULLS LAST, id",
            &[&user_id, &now],
        )?
        .iter()
        .map(|r| {
            Ok(StoredSession {
                id_hash: get(r, 0)?,
                details: SessionDetails {
                    created_at: get(r, 1)?,
                    last_seen_at: get(r, 2)?,
                    client_ip: get(r, 3)?,
                    user_agent: get(r, 4)?,
                },
                expires_at: get(r, 5)?,
            })
        })
        .collect()
    }
}

impl SessionWrites for PgTx<'_> {
    fn insert_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
        d: &SessionDetails,
    ) -> Result<bool> {
        // A new id: nobody has it cached (a miss is not cached past the next commit anyway).
        Ok(self.execute(
            "INSERT INTO sessions
                 (id, user_id, data, expires_at, created_at, last_seen_at, client_ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO NOTHING",
            &[
                &id_hash,
                &user_id,
                &data,
                &expires_at,
                &d.created_at,
                &d.last_seen_at,
                &d.client_ip,
                &d.user_agent,
            ],
        )? == 1)
    }

    fn save_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
        d: &SessionDetails,
    ) -> Result<bool> {
        // An UPDATE, never an upsert: a request that loaded the session before a sign-out (or
        // a revocation, on any replica) and saves it afterwards must not bring the row back.
        // `created_at` is the row's own and stays.
        let saved = self.execute(
            "UPDATE sessions SET user_id = $2, data = $3, expires_at = $4,
                    last_seen_at = $5, client_ip = $6, user_agent = $7
             WHERE id = $1",
            &[
                &id_hash,
                &user_id,
                &data,
                &expires_at,
                &d.last_seen_at,
                &d.client_ip,
                &d.user_agent,
            ],
        )? == 1;
        if saved {
            self.changed_cached_rows();
        }
        Ok(saved)
    }

    fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.changed_cached_rows();
        self.execute("DELETE FROM sessions WHERE id = $1", &[&id_hash])?;
        Ok(())
    }

    fn cap_pending_sessions(&self, cap: usize) -> Result<usize> {
        // The count from the counter rows, the oldest from the partial index
        // `sessions_pending`: no scan, whatever the number of rows.
        let excess = self.pending_sessions()? - big(cap);
        if excess <= 0 {
            return Ok(0);
        }
        let n = self.execute(
            "DELETE FROM sessions WHERE id IN (
                 SELECT id FROM sessions WHERE user_id IS NULL ORDER BY expires_at LIMIT $1)",
            &[&excess],
        )?;
        if n > 0 {
            // Another replica may hold one of them in its session cache.
            self.changed_cached_rows();
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn delete_expired_sessions(&self, now: i64) -> Result<usize> {
        // Expired rows are refused by their expiry already; no cache needs telling.
        let n = self.execute("DELETE FROM sessions WHERE expires_at < $1", &[&now])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn revoke_user_sessions(&self, user_id: i64) -> Result<()> {
        self.changed_cached_rows();
        self.execute(
            "UPDATE users SET session_generation = session_generation + 1 WHERE id = $1",
            &[&user_id],
        )?;
        self.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
        Ok(())
    }
}
