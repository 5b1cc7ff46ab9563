//! The `oauth_grants` and `oauth_tokens` tables of teamgate's OpenID provider on PostgreSQL
//! (twin of `store/sqlite/grants.rs`): grants by the hash of their code, tokens by their own
//! hash. Revocation is a `DELETE` of the grant; the foreign keys take the tokens with it, and
//! take the grant with its session or its user.

use tokio_postgres::Row;

use super::{PgTx, get};
use crate::store::error::{Result, StoreError};
use crate::store::grants::{ClientUsage, GrantRow, NewGrant, OAuthTokenRow, TokenKind};
use crate::store::port::{GrantReads, GrantWrites};

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.session_id, g.session_generation, \
     g.code_expires_at, g.code_used_at, g.redirect_uri, g.code_challenge, g.nonce, g.scopes, \
     g.auth_time, g.expires_at, g.created_at, g.last_used_at";

fn grant_from(r: &Row, at: usize) -> Result<GrantRow> {
    Ok(GrantRow {
        id: get(r, at)?,
        client_id: get(r, at + 1)?,
        user_id: get(r, at + 2)?,
        session_id: get(r, at + 3)?,
        session_generation: get(r, at + 4)?,
        code_expires_at: get(r, at + 5)?,
        code_used_at: get(r, at + 6)?,
        redirect_uri: get(r, at + 7)?,
        code_challenge: get(r, at + 8)?,
        nonce: get(r, at + 9)?,
        scopes: get(r, at + 10)?,
        auth_time: get(r, at + 11)?,
        expires_at: get(r, at + 12)?,
        created_at: get(r, at + 13)?,
        last_used_at: get(r, at + 14)?,
    })
}

impl GrantReads for PgTx<'_> {
    fn grant_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<GrantRow>> {
        // Locked in a write job: two redemptions of one code queue, and the second sees the
        // first one's `code_used_at` (a replay, which revokes the grant).
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.code_hash = $1{}",
            self.lock_clause()
        );
        self.query_opt(&sql, &[&&code_hash[..]])?
            .map(|r| grant_from(&r, 0))
            .transpose()
    }

    fn grant(&self, id: i64) -> Result<Option<GrantRow>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.id = $1{}",
            self.lock_clause()
        );
        self.query_opt(&sql, &[&id])?
            .map(|r| grant_from(&r, 0))
            .transpose()
    }

    fn oauth_token(&self, hash: &[u8; 32]) -> Result<Option<(OAuthTokenRow, GrantRow)>> {
        // The token row locked in a write job: two uses of one refresh token queue, and the
        // second sees `used_at` (a replay).
        let lock = if self.lock_clause().is_empty() {
            ""
        } else {
            " FOR UPDATE OF t, g"
        };
        let sql = format!(
            "SELECT t.grant_id, t.kind, t.expires_at, t.used_at, {GRANT_COLUMNS}
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.hash = $1{lock}"
        );
        let Some(r) = self.query_opt(&sql, &[&&hash[..]])? else {
            return Ok(None);
        };
        let kind: String = get(&r, 1)?;
        let kind = TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("oauth_tokens.kind {kind:?}")))?;
        Ok(Some((
            OAuthTokenRow {
                grant_id: get(&r, 0)?,
                kind,
                expires_at: get(&r, 2)?,
                used_at: get(&r, 3)?,
            },
            grant_from(&r, 4)?,
        )))
    }

    fn client_usage(&self, now: i64) -> Result<Vec<ClientUsage>> {
        self.query(
            "SELECT g.client_id, MAX(g.last_used_at),
                    (SELECT COUNT(*) FROM oauth_tokens t JOIN oauth_grants h ON h.id = t.grant_id
                      WHERE h.client_id = g.client_id AND t.kind = 'refresh' AND t.used_at IS NULL
                        AND t.expires_at > $1 AND h.expires_at > $1),
                    COUNT(DISTINCT CASE WHEN g.expires_at > $1 THEN g.user_id END)
             FROM oauth_grants g GROUP BY g.client_id ORDER BY g.client_id",
            &[&now],
        )?
        .iter()
        .map(|r| {
            Ok(ClientUsage {
                client_id: get(r, 0)?,
                last_used_at: get(r, 1)?,
                active_refresh_tokens: get(r, 2)?,
                users: get(r, 3)?,
            })
        })
        .collect()
    }
}

impl GrantWrites for PgTx<'_> {
    fn insert_grant(&self, g: &NewGrant) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO oauth_grants (client_id, user_id, session_id, session_generation,
                 code_hash, code_expires_at, redirect_uri, code_challenge, nonce, scopes,
                 auth_time, expires_at, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
             RETURNING id",
            &[
                &g.client_id,
                &g.user_id,
                &g.session_id,
                &g.session_generation,
                &&g.code_hash[..],
                &g.code_expires_at,
                &g.redirect_uri,
                &g.code_challenge,
                &g.nonce,
                &g.scopes,
                &g.auth_time,
                &g.expires_at,
                &g.created_at,
            ],
        )?;
        get(&row, 0)
    }

    fn mark_code_used(&self, grant_id: i64, now: i64) -> Result<()> {
        self.execute(
            "UPDATE oauth_grants SET code_used_at = $2 WHERE id = $1",
            &[&grant_id, &now],
        )?;
        Ok(())
    }

    fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()> {
        self.execute(
            "UPDATE oauth_grants SET last_used_at = $2 WHERE id = $1",
            &[&grant_id, &now],
        )?;
        Ok(())
    }

    fn delete_grant(&self, grant_id: i64) -> Result<()> {
        self.execute("DELETE FROM oauth_grants WHERE id = $1", &[&grant_id])?;
        Ok(())
    }

    fn insert_oauth_token(
        &self,
        hash: &[u8; 32],
        grant_id: i64,
        kind: TokenKind,
        expires_at: i64,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO oauth_tokens (hash, grant_id, kind, expires_at) VALUES ($1, $2, $3, $4)",
            &[&&hash[..], &grant_id, &kind.as_str(), &expires_at],
        )?;
        Ok(())
    }

    fn mark_token_used(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
        Ok(self.execute(
            "UPDATE oauth_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL",
            &[&&hash[..], &now],
        )? == 1)
    }

    fn delete_client_grants(&self, client_id: &str) -> Result<usize> {
        let n = self.execute(
            "DELETE FROM oauth_grants WHERE client_id = $1",
            &[&client_id],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn delete_expired_grants(&self, now: i64) -> Result<usize> {
        // A grant whose code was never redeemed is dead once the code expired.
        let grants = self.execute(
            "DELETE FROM oauth_grants WHERE expires_at <= $1
                OR (code_used_at IS NULL AND code_expires_at <= $1)",
            &[&now],
        )?;
        self.execute("DELETE FROM oauth_tokens WHERE expires_at <= $1", &[&now])?;
        Ok(usize::try_from(grants).unwrap_or(usize::MAX))
    }
}
