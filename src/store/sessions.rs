//! The `sessions` table behind tower-sessions: our own [`SessionStore`] so that sessions live
//! in the same SQLite file and are indexed by user (revocation needs that). Session ids are
//! stored as SHA-256 hashes, so a copy of the database holds no live cookie.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use std::sync::Arc;

use super::Store;
use super::cache::CommitCache;
use super::error::{Result, StoreError};

/// The key in session data under which the signed-in user is kept (see `crate::session`).
pub const AUTH_KEY: &str = "auth";

fn hash_id(id: &Id) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user id a record belongs to, when it is a signed-in session.
fn user_of(record: &Record) -> Option<i64> {
    record.data.get(AUTH_KEY)?.get("user_id")?.as_i64()
}

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

#[derive(Clone)]
pub struct SqliteSessionStore {
    store: Store,
    /// Session rows by hashed id (data, expiry), coherent with commits (see [`super::cache`]):
    /// a signed-in request reads nothing from the database until something is written.
    rows: Arc<CommitCache<String, Option<(String, i64)>>>,
}

/// Session rows kept in the per-request cache.
const ROW_CACHE_CAPACITY: usize = 50_000;

impl std::fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteSessionStore")
    }
}

impl SqliteSessionStore {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            rows: Arc::new(CommitCache::new(ROW_CACHE_CAPACITY)),
        }
    }
}

fn backend(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let user = user_of(record);
        let expires = record.expiry_date.unix_timestamp();
        let mut id = record.id;
        // Ids are 128 random bits, but a collision must still never join two sessions.
        let id = self
            .store
            .write(move |conn| {
                loop {
                    let inserted = conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO sessions (id, user_id, data, expires_at) VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![hash_id(&id), user, data, expires])?;
                    if inserted == 1 {
                        return Ok(id);
                    }
                    id = Id::default();
                }
            })
            .await
            .map_err(backend)?;
        record.id = id;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let user = user_of(record);
        let expires = record.expiry_date.unix_timestamp();
        let id = hash_id(&record.id);
        self.store
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO sessions (id, user_id, data, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
                     expires_at = excluded.expires_at",
                )?
                .execute(params![id, user, data, expires])?;
                Ok(())
            })
            .await
            .map_err(backend)
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = *session_id;
        let hashed = hash_id(&id);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let epoch = self.store.commit_epoch();
        let row = match self.rows.get(&hashed, epoch) {
            Some(row) => row,
            None => {
                let key = hashed.clone();
                let row: Option<(String, i64)> = self
                    .store
                    .read(move |conn| {
                        Ok(conn
                            .prepare_cached("SELECT data, expires_at FROM sessions WHERE id = ?1")?
                            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?)
                    })
                    .await
                    .map_err(backend)?;
                self.rows.put(hashed, epoch, row.clone());
                row
            }
        };
        let Some((data, expires)) = row.filter(|(_, expires)| *expires >= now) else {
            return Ok(None);
        };
        Ok(Some(Record {
            id,
            data: serde_json::from_str(&data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(expires)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = hash_id(session_id);
        self.store
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
                    .execute([id])?;
                Ok(())
            })
            .await
            .map_err(backend)
    }
}
