//! The `oauth_grants` and `oauth_tokens` tables of teamgate's OpenID provider: grants by the
//! hash of their code, tokens by their own hash. Revocation is a `DELETE` of the grant; the
//! foreign keys take the tokens with it, and take the grant with its session or its user.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::store::error::{Result, StoreError};
use crate::store::grants::{ClientUsage, GrantRow, NewGrant, OAuthTokenRow, TokenKind};
use crate::store::port::{GrantReads, GrantWrites};

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.session_id, g.session_generation, \
     g.code_expires_at, g.code_used_at, g.redirect_uri, g.code_challenge, g.nonce, g.scopes, \
     g.auth_time, g.expires_at, g.created_at, g.last_used_at";

fn grant_from(r: &Row<'_>, at: usize) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(at)?,
        client_id: r.get(at + 1)?,
        user_id: r.get(at + 2)?,
        session_id: r.get(at + 3)?,
        session_generation: r.get(at + 4)?,
        code_expires_at: r.get(at + 5)?,
        code_used_at: r.get(at + 6)?,
        redirect_uri: r.get(at + 7)?,
        code_challenge: r.get(at + 8)?,
        nonce: r.get(at + 9)?,
        scopes: r.get(at + 10)?,
        auth_time: r.get(at + 11)?,
        expires_at: r.get(at + 12)?,
        created_at: r.get(at + 13)?,
        last_used_at: r.get(at + 14)?,
    })
}

impl GrantReads for SqliteTx<'_> {
    fn grant_by_code(&self, code_hash: &[u8; 32]) -> Result<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.code_hash = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([&code_hash[..]], |r| grant_from(r, 0))
            .optional()?)
    }

    fn grant(&self, id: i64) -> Result<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| grant_from(r, 0))
            .optional()?)
    }

    fn oauth_token(&self, hash: &[u8; 32]) -> Result<Option<(OAuthTokenRow, GrantRow)>> {
        let sql = format!(
            "SELECT t.grant_id, t.kind, t.expires_at, t.used_at, {GRANT_COLUMNS}
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.hash = ?1"
        );
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row([&hash[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    grant_from(r, 4)?,
                ))
            })
            .optional()?;
        let Some((grant_id, kind, expires_at, used_at, grant)) = row else {
            return Ok(None);
        };
        let kind = TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("oauth_tokens.kind {kind:?}")))?;
        Ok(Some((
            OAuthTokenRow {
                grant_id,
                kind,
                expires_at,
                used_at,
            },
            grant,
        )))
    }

    fn client_usage(&self, now: i64) -> Result<Vec<ClientUsage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT g.client_id, MAX(g.last_used_at),
                    (SELECT COUNT(*) FROM oauth_tokens t JOIN oauth_grants h ON h.id = t.grant_id
                      WHERE h.client_id = g.client_id AND t.kind = 'refresh' AND t.used_at IS NULL
                        AND t.expires_at > ?1 AND h.expires_at > ?1),
                    COUNT(DISTINCT CASE WHEN g.expires_at > ?1 THEN g.user_id END)
             FROM oauth_grants g GROUP BY g.client_id ORDER BY g.client_id",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok(ClientUsage {
                client_id: r.get(0)?,
                last_used_at: r.get(1)?,
                active_refresh_tokens: r.get(2)?,
                users: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl GrantWrites for SqliteTx<'_> {
    fn insert_grant(&self, g: &NewGrant) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO oauth_grants (client_id, user_id, session_id, session_generation,
                     code_hash, code_expires_at, redirect_uri, code_challenge, nonce, scopes,
                     auth_time, expires_at, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
            )?
            .execute(params![
                g.client_id,
                g.user_id,
                g.session_id,
                g.session_generation,
                &g.code_hash[..],
                g.code_expires_at,
                g.redirect_uri,
                g.code_challenge,
                g.nonce,
                g.scopes,
                g.auth_time,
                g.expires_at,
                g.created_at
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn mark_code_used(&self, grant_id: i64, now: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE oauth_grants SET code_used_at = ?2 WHERE id = ?1")?
            .execute(params![grant_id, now])?;
        Ok(())
    }

    fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE oauth_grants SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![grant_id, now])?;
        Ok(())
    }

    fn delete_grant(&self, grant_id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM oauth_grants WHERE id = ?1")?
            .execute([grant_id])?;
        Ok(())
    }

    fn insert_oauth_token(
        &self,
        hash: &[u8; 32],
        grant_id: i64,
        kind: TokenKind,
        expires_at: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO oauth_tokens (hash, grant_id, kind, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&hash[..], grant_id, kind.as_str(), expires_at])?;
        Ok(())
    }

    fn mark_token_used(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE oauth_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
            )?
            .execute(params![&hash[..], now])?
            == 1)
    }

    fn delete_client_grants(&self, client_id: &str) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM oauth_grants WHERE client_id = ?1")?
            .execute([client_id])?)
    }

    fn delete_expired_grants(&self, now: i64) -> Result<usize> {
        // A grant whose code was never redeemed is dead once the code expired.
        let grants = self
            .conn
            .prepare_cached(
                "DELETE FROM oauth_grants WHERE expires_at <= ?1
                    OR (code_used_at IS NULL AND code_expires_at <= ?1)",
            )?
            .execute([now])?;
        self.conn
            .prepare_cached("DELETE FROM oauth_tokens WHERE expires_at <= ?1")?
            .execute([now])?;
        Ok(grants)
    }
}
