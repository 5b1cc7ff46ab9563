//! Browser sessions in the database, behind tower-sessions: our own [`SessionStore`] over the
//! session operations of the port, so sessions live beside everything else and are indexed by
//! user (revocation needs that). Session ids are stored as SHA-256 hashes, so a copy of the
//! database holds no live cookie.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::Store;
use super::cache::CommitCache;
use super::error::StoreError;
use crate::domain::Clock;

/// The key in session data under which the signed-in user is kept (see `crate::web::session`).
pub const AUTH_KEY: &str = "auth";

/// Session rows kept in the per-request cache.
const ROW_CACHE_CAPACITY: usize = 50_000;

/// The `sessions.id` of a session: the SHA-256 of its id, hex.
pub fn hash_id(id: &Id) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user id a record belongs to, when it is a signed-in session.
fn user_of(record: &Record) -> Option<i64> {
    record.data.get(AUTH_KEY)?.get("user_id")?.as_i64()
}

#[derive(Clone)]
pub struct DbSessionStore {
    store: Store,
    /// Decides which rows have expired.
    clock: Clock,
    /// Session rows by hashed id (data, expiry), coherent with commits (see [`super::cache`]):
    /// a signed-in request reads nothing from the database until something is written.
    rows: Arc<CommitCache<String, Option<(String, i64)>>>,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            clock,
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
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let user = user_of(record);
        let expires = record.expiry_date.unix_timestamp();
        let first = record.id;
        // Ids are 128 random bits, but a collision must still never join two sessions.
        let id = self
            .store
            .write(move |tx| {
                let mut id = first;
                while !tx.insert_session(&hash_id(&id), user, &data, expires)? {
                    id = Id::default();
                }
                Ok::<_, StoreError>(id)
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
            .write(move |tx| tx.save_session(&id, user, &data, expires))
            .await
            .map_err(backend)
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = *session_id;
        let hashed = hash_id(&id);
        let now = self.clock.unix();
        let epoch = self.store.commit_epoch();
        let row = match self.rows.get(&hashed, epoch) {
            Some(row) => row,
            None => {
                let key = hashed.clone();
                let row = self
                    .store
                    .read(move |tx| tx.session(&key))
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
            .write(move |tx| tx.delete_session(&id))
            .await
            .map_err(backend)
    }
}
