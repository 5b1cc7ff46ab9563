//! The `sessions` table: tower-sessions records by the SHA-256 of their id, indexed by user.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteTx;
use crate::store::error::Result;
use crate::store::port::{SessionReads, SessionWrites};
use crate::store::sessions::{SessionDetails, StoredSession};

/// Revoke every session of a user: bump the generation (so a session minted before stops
/// working even if its row survived somewhere) and delete the rows.
pub fn revoke_user(conn: &Connection, user_id: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET session_generation = session_generation + 1 WHERE id = ?1",
    )?
    .execute([user_id])?;
    conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// Delete expired session rows; returns how many.
pub fn delete_expired(conn: &Connection, now_unix: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")?
        .execute([now_unix])?)
}

/// Number of live session rows of a user.
pub fn count_for_user(conn: &Connection, user_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM sessions WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))?)
}

impl SessionReads for SqliteTx<'_> {
    fn session(&self, id_hash: &str) -> Result<Option<(String, i64)>> {
        Ok(self
            .conn
            .prepare_cached("SELECT data, expires_at FROM sessions WHERE id = ?1")?
            .query_row([id_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn session_count(&self, user_id: i64) -> Result<i64> {
        count_for_user(self.conn, user_id)
    }

    fn pending_session_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT pending FROM session_stats WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<StoredSession>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, created_at, last_seen_at, client_ip, user_agent, expires_at FROM sessions
             WHERE user_id = ?1 AND expires_at >= ?2
             ORDER BY last_seen_at DESC, created_at DESC, id",
        )?;
        let rows = stmt.query_map(params![user_id, now], |r| {
            Ok(StoredSession {
                id_hash: r.get(0)?,
                details: SessionDetails {
                    created_at: r.get(1)?,
                    last_seen_at: r.get(2)?,
                    client_ip: r.get(3)?,
                    user_agent: r.get(4)?,
                },
                expires_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl SessionWrites for SqliteTx<'_> {
    fn insert_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
        d: &SessionDetails,
    ) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO sessions
                 (id, user_id, data, expires_at, created_at, last_seen_at, client_ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id_hash,
                user_id,
                data,
                expires_at,
                d.created_at,
                d.last_seen_at,
                d.client_ip,
                d.user_agent
            ])?
            == 1)
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
        // a revocation) and saves it afterwards must not bring the row back. `created_at` is
        // the row's own and stays.
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE sessions SET user_id = ?2, data = ?3, expires_at = ?4,
                 last_seen_at = ?5, client_ip = ?6, user_agent = ?7 WHERE id = ?1",
            )?
            .execute(params![
                id_hash,
                user_id,
                data,
                expires_at,
                d.last_seen_at,
                d.client_ip,
                d.user_agent
            ])?
            == 1)
    }

    fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
            .execute([id_hash])?;
        Ok(())
    }

    fn cap_pending_sessions(&self, cap: usize) -> Result<usize> {
        // The count comes from `session_stats` (kept by triggers), the oldest from the partial
        // index `sessions_pending` (named: the planner would otherwise take `sessions_user`
        // and sort every pre-login row): no scan, whatever the number of rows.
        let pending: i64 = self
            .conn
            .prepare_cached("SELECT pending FROM session_stats WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        let excess = pending - i64::try_from(cap).unwrap_or(i64::MAX);
        if excess <= 0 {
            return Ok(0);
        }
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM sessions WHERE id IN (
                     SELECT id FROM sessions INDEXED BY sessions_pending
                     WHERE user_id IS NULL ORDER BY expires_at LIMIT ?1)",
            )?
            .execute([excess])?)
    }

    fn delete_expired_sessions(&self, now: i64) -> Result<usize> {
        delete_expired(self.conn, now)
    }

    fn revoke_user_sessions(&self, user_id: i64) -> Result<()> {
        revoke_user(self.conn, user_id)
    }
}
