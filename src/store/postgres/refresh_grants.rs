//! The `refresh_grants` table on PostgreSQL (twin of `store/sqlite/refresh_grants.rs`). Claims skip
//! rows another replica holds locked, so each due grant is re-evaluated by one replica.

use tokio_postgres::Row;

use super::{PgTx, big, get};
use crate::store::error::Result;
use crate::store::port::{RefreshGrantReads, RefreshGrantWrites};
use crate::store::refresh_grants::StoredRefreshGrant;

const COLUMNS: &str =
    "user_id, provider, issuer, sub, subject, token, login_id, interval_ms, next_at, until_at";

fn read(r: &Row) -> Result<StoredRefreshGrant> {
    Ok(StoredRefreshGrant {
        user_id: get(r, 0)?,
        provider: get(r, 1)?,
        issuer: get(r, 2)?,
        sub: get(r, 3)?,
        subject: get(r, 4)?,
        token: get(r, 5)?,
        login_id: get(r, 6)?,
        interval_ms: get(r, 7)?,
        next_at: get(r, 8)?,
        until_at: get(r, 9)?,
    })
}

impl RefreshGrantReads for PgTx<'_> {
    fn refresh_grant_count(&self) -> Result<i64> {
        get(
            &self.query_one("SELECT COUNT(*) FROM refresh_grants", &[])?,
            0,
        )
    }
}

impl RefreshGrantWrites for PgTx<'_> {
    fn put_refresh_grant(&self, g: &StoredRefreshGrant) -> Result<()> {
        self.execute(
            "INSERT INTO refresh_grants (user_id, provider, issuer, sub, subject, token, login_id,
                                         interval_ms, next_at, until_at, claimed_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)
             ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider,
                issuer = excluded.issuer, sub = excluded.sub, subject = excluded.subject,
                token = excluded.token, login_id = excluded.login_id,
                interval_ms = excluded.interval_ms, next_at = excluded.next_at,
                until_at = excluded.until_at, claimed_until = NULL",
            &[
                &g.user_id,
                &g.provider,
                &g.issuer,
                &g.sub,
                &g.subject,
                &g.token,
                &g.login_id,
                &g.interval_ms,
                &g.next_at,
                &g.until_at,
            ],
        )?;
        Ok(())
    }

    fn claim_refresh_grants(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<StoredRefreshGrant>> {
        self.execute("DELETE FROM refresh_grants WHERE until_at <= $1", &[&now])?;
        let sql = format!(
            "UPDATE refresh_grants SET claimed_until = $2 WHERE user_id IN (
                 SELECT user_id FROM refresh_grants
                 WHERE next_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
                 ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        );
        self.query(&sql, &[&now, &claim_until, &big(limit)])?
            .iter()
            .map(read)
            .collect()
    }

    fn release_refresh_grant(
        &self,
        user_id: i64,
        login_id: &str,
        token: Option<&[u8]>,
        next_at: i64,
    ) -> Result<()> {
        self.execute(
            "UPDATE refresh_grants SET token = COALESCE($3, token), next_at = $4,
                    claimed_until = NULL
             WHERE user_id = $1 AND login_id = $2",
            &[&user_id, &login_id, &token, &next_at],
        )?;
        Ok(())
    }

    fn drop_refresh_grant(&self, user_id: i64, login_id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM refresh_grants WHERE user_id = $1 AND login_id = $2",
            &[&user_id, &login_id],
        )?;
        Ok(())
    }
}
