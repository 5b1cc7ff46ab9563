//! The `refresh_grants` table (migration 0008): sealed refresh tokens of signed-in users.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::store::error::Result;
use crate::store::port::{RefreshGrantReads, RefreshGrantWrites};
use crate::store::refresh_grants::StoredRefreshGrant;

const COLUMNS: &str =
    "user_id, provider, issuer, sub, subject, token, login_id, interval_ms, next_at, until_at";

fn read(r: &Row<'_>) -> rusqlite::Result<StoredRefreshGrant> {
    Ok(StoredRefreshGrant {
        user_id: r.get(0)?,
        provider: r.get(1)?,
        issuer: r.get(2)?,
        sub: r.get(3)?,
        subject: r.get(4)?,
        token: r.get(5)?,
        login_id: r.get(6)?,
        interval_ms: r.get(7)?,
        next_at: r.get(8)?,
        until_at: r.get(9)?,
    })
}

impl RefreshGrantReads for SqliteTx<'_> {
    fn refresh_grant_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM refresh_grants")?
            .query_row([], |r| r.get(0))?)
    }
}

impl RefreshGrantWrites for SqliteTx<'_> {
    fn put_refresh_grant(&self, g: &StoredRefreshGrant) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO refresh_grants (user_id, provider, issuer, sub, subject, token, login_id,
                                             interval_ms, next_at, until_at, claimed_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)
                 ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider,
                    issuer = excluded.issuer, sub = excluded.sub, subject = excluded.subject,
                    token = excluded.token, login_id = excluded.login_id,
                    interval_ms = excluded.interval_ms, next_at = excluded.next_at,
                    until_at = excluded.until_at, claimed_until = NULL",
            )?
            .execute(params![
                g.user_id,
                g.provider,
                g.issuer,
                g.sub,
                g.subject,
                g.token,
                g.login_id,
                g.interval_ms,
                g.next_at,
                g.until_at
            ])?;
        Ok(())
    }

    fn claim_refresh_grants(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<StoredRefreshGrant>> {
        self.conn
            .prepare_cached("DELETE FROM refresh_grants WHERE until_at <= ?1")?
            .execute([now])?;
        let sql = format!(
            "UPDATE refresh_grants SET claimed_until = ?2 WHERE user_id IN (
                 SELECT user_id FROM refresh_grants
                 WHERE next_at <= ?1 AND (claimed_until IS NULL OR claimed_until < ?1)
                 ORDER BY next_at LIMIT ?3)
             RETURNING {COLUMNS}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![now, claim_until, i64::try_from(limit).unwrap_or(i64::MAX)],
            read,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn release_refresh_grant(
        &self,
        user_id: i64,
        login_id: &str,
        token: Option<&[u8]>,
        next_at: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE refresh_grants SET token = COALESCE(?3, token), next_at = ?4,
                        claimed_until = NULL
                 WHERE user_id = ?1 AND login_id = ?2",
            )?
            .execute(params![user_id, login_id, token, next_at])?;
        Ok(())
    }

    fn drop_refresh_grant(&self, user_id: i64, login_id: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM refresh_grants WHERE user_id = ?1 AND login_id = ?2")?
            .execute(params![user_id, login_id])?;
        Ok(())
    }
}

/// The grant of `user_id`, if any (for tests and tools).
pub fn get(tx: &SqliteTx<'_>, user_id: i64) -> Result<Option<StoredRefreshGrant>> {
    let sql = format!("SELECT {COLUMNS} FROM refresh_grants WHERE user_id = ?1");
    Ok(tx
        .conn
        .prepare_cached(&sql)?
        .query_row([user_id], read)
        .optional()?)
}
