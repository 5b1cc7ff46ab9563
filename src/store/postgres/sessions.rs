//! The `sessions` table on PostgreSQL (twin of `store/sqlite/sessions.rs`).

use super::{PgTx, get};
use crate::store::error::Result;
use crate::store::port::{SessionReads, SessionWrites};

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
}

impl SessionWrites for PgTx<'_> {
    fn insert_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
    ) -> Result<bool> {
        // A new id: nobody has it cached (a miss is not cached past the next commit anyway).
        Ok(self.execute(
            "INSERT INTO sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&id_hash, &user_id, &data, &expires_at],
        )? == 1)
    }

    fn save_session(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.changed_cached_rows();
        self.execute(
            "INSERT INTO sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
             expires_at = excluded.expires_at",
            &[&id_hash, &user_id, &data, &expires_at],
        )?;
        Ok(())
    }

    fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.changed_cached_rows();
        self.execute("DELETE FROM sessions WHERE id = $1", &[&id_hash])?;
        Ok(())
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
