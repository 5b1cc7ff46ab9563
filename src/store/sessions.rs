//! Browser sessions in the database, behind tower-sessions: our own [`SessionStore`] over the
//! session operations of the port, so sessions live beside everything else and are indexed by
//! user (revocation needs that). Session ids are stored as SHA-256 hashes, so a copy of the
//! database holds no live cookie.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::cache::CommitCache;
use super::error::StoreError;
use super::{Store, WriteMode};
use crate::domain::Clock;

/// The key in session data under which the signed-in user is kept (see `crate::web::session`).
pub const AUTH_KEY: &str = "auth";

/// Session rows kept in the per-request cache.
const ROW_CACHE_CAPACITY: usize = 50_000;

/// Seconds a session without a signed-in user (a login in flight: state, nonce, PKCE verifier,
/// return URL) is kept. tower-sessions gives every record two weeks; a login is started and
/// finished within minutes, so a pre-login row lives at most this long past its last write.
pub const PRE_LOGIN_TTL: i64 = 600;

/// Most sessions without a signed-in user kept at once; beyond it the oldest are deleted in
/// the write that adds one. Bounds what a flood of cookieless `/login` requests can store
/// (with the per-address rate limit of `/login` in front of it).
pub const MAX_PRE_LOGIN_SESSIONS: usize = 10_000;

/// Largest encoded session data written (bytes). Nothing teamgate keeps comes near it (the
/// pending-login list keeps itself under 8 KiB); it backstops the size of every row.
pub const MAX_SESSION_DATA: usize = 16 * 1024;

/// The `sessions.id` of a session: the SHA-256 of its id, hex.
pub fn hash_id(id: &Id) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user id a record belongs to, when it is a signed-in session.
fn user_of(record: &Record) -> Option<i64> {
    record.data.get(AUTH_KEY)?.get("user_id")?.as_i64()
}

/// What an administrator sees of a session: copied into columns from the signed-in
/// session's data (`login_at`, `last_seen`, `client_ip`, `user_agent`) on every save.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionDetails {
    /// Unix seconds.
    pub created_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionDetails {
    fn of(record: &Record) -> Self {
        let Some(auth) = record.data.get(AUTH_KEY) else {
            return Self::default();
        };
        let text = |key: &str| auth.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            created_at: auth.get("login_at").and_then(|v| v.as_i64()),
            last_seen_at: auth.get("last_seen").and_then(|v| v.as_i64()),
            client_ip: text("client_ip"),
            user_agent: text("user_agent"),
        }
    }
}

/// One stored session of a user, as the admin page and `teamgate sessions list` show it.
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// The SHA-256 of the session id, as stored: never shown (see [`public_handle`]).
    pub id_hash: String,
    pub details: SessionDetails,
    /// Unix seconds.
    pub expires_at: i64,
}

impl StoredSession {
    /// The session's public handle.
    pub fn handle(&self) -> String {
        public_handle(&self.id_hash)
    }
}

/// A short public name of a session, for admins to tell sessions apart and end one: 12
/// base64url characters of a second hash of the stored hash, so it reveals nothing of the
/// session id nor of what is stored, and cannot be turned into a cookie.
pub fn public_handle(id_hash: &str) -> String {
    use base64::Engine as _;
    let digest = Sha256::digest(format!("teamgate session handle:{id_hash}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9])
}

#[derive(Clone)]
pub struct DbSessionStore {
    store: Store,
    /// Decides which rows have expired.
    clock: Clock,
    /// Session rows by hashed id (data, expiry), coherent with commits (see [`super::cache`]):
    /// a signed-in request reads nothing from the database until something is written.
    rows: Arc<CommitCache<String, Option<(String, i64)>>>,
    /// [`MAX_PRE_LOGIN_SESSIONS`], smaller in tests.
    pre_login_cap: usize,
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
            pre_login_cap: MAX_PRE_LOGIN_SESSIONS,
        }
    }

    /// The same store keeping at most `cap` pre-login sessions.
    pub fn with_pre_login_cap(mut self, cap: usize) -> Self {
        self.pre_login_cap = cap;
        self
    }

    /// The expiry to store: a pre-login record lives [`PRE_LOGIN_TTL`] at most.
    fn expiry_of(&self, record: &Record, user: Option<i64>) -> i64 {
        let expires = record.expiry_date.unix_timestamp();
        match user {
            Some(_) => expires,
            None => expires.min(self.clock.unix() + PRE_LOGIN_TTL),
        }
    }
}

fn backend(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    if data.len() > MAX_SESSION_DATA {
        return Err(session_store::Error::Encode(format!(
            "session data of {} bytes is over the {MAX_SESSION_DATA}-byte limit",
            data.len()
        )));
    }
    Ok(data)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let user = user_of(record);
        let details = SessionDetails::of(record);
        let expires = self.expiry_of(record, user);
        let first = record.id;
        let cap = self.pre_login_cap;
        // Ids are 128 random bits, but a collision must still never join two sessions.
        let id = self
            .store
            .write_with(WriteMode::Simple, move |tx| {
                let mut id = first;
                while !tx.insert_session(&hash_id(&id), user, &data, expires, &details)? {
                    id = Id::default();
                }
                if user.is_none() {
                    tx.cap_pending_sessions(cap)?;
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
        let details = SessionDetails::of(record);
        let expires = self.expiry_of(record, user);
        let id = hash_id(&record.id);
        // Only an existing row is updated: when it was deleted since this request loaded it
        // (a sign-out or revocation won the race), the session stays ended.
        self.store
            .write_with(WriteMode::Simple, move |tx| {
                tx.save_session(&id, user, &data, expires, &details)
            })
            .await
            .map(|_| ())
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
            .write_with(WriteMode::Simple, move |tx| tx.delete_session(&id))
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    /// A record as tower-sessions makes it: two weeks of expiry, `data` as given.
    fn record(data: serde_json::Value) -> Record {
        let data: HashMap<String, serde_json::Value> = serde_json::from_value(data).unwrap();
        Record {
            id: Id::default(),
            data,
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::weeks(2),
        }
    }

    fn signed_in(user_id: i64) -> Record {
        record(serde_json::json!({ AUTH_KEY: { "user_id": user_id, "csrf": "x" } }))
    }

    fn pending() -> Record {
        record(serde_json::json!({ "pending_logins": [{ "state": "s" }] }))
    }

    async fn row(store: &Store, id: &Id) -> Option<(String, i64)> {
        let hashed = hash_id(id);
        store.read(move |tx| tx.session(&hashed)).await.unwrap()
    }

    async fn user(store: &Store) -> i64 {
        store
            .write(|tx| {
                tx.upsert_login_user(
                    &crate::store::users::LoginProfile {
                        provider: "p".into(),
                        subject: "s".into(),
                        email: None,
                        email_verified: false,
                        name: None,
                        claims_groups: None,
                    },
                    "2026-01-01T00:00:00.000Z",
                )
            })
            .await
            .map(|u| u.id)
            .unwrap()
    }

    #[tokio::test]
    async fn a_session_deleted_after_a_request_loaded_it_is_not_brought_back_by_its_save() {
        let (_dir, store) = store();
        let sessions = DbSessionStore::new(store.clone(), Clock::system());
        let user_id = user(&store).await;
        let mut created = signed_in(user_id);
        sessions.create(&mut created).await.unwrap();
        // A request loads the session (and will refresh its last_seen)...
        let mut loaded = sessions.load(&created.id).await.unwrap().unwrap();
        // ...meanwhile POST /logout deletes it...
        sessions.delete(&created.id).await.unwrap();
        // ...then the first request saves what it loaded.
        loaded
            .data
            .insert("touched".into(), serde_json::json!(true));
        sessions.save(&loaded).await.unwrap();
        assert_eq!(row(&store, &created.id).await, None, "the row came back");
        assert!(sessions.load(&created.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_pre_login_session_is_stored_for_minutes_not_weeks() {
        let (_dir, store) = store();
        let clock = Clock::system();
        let sessions = DbSessionStore::new(store.clone(), clock.clone());
        let mut record = pending();
        sessions.create(&mut record).await.unwrap();
        let (_, expires) = row(&store, &record.id).await.unwrap();
        assert!(
            expires <= clock.unix() + PRE_LOGIN_TTL,
            "expires in {} s",
            expires - clock.unix()
        );
        // Saved again (a second /login in the same browser): still minutes.
        sessions.save(&record).await.unwrap();
        let (_, expires) = row(&store, &record.id).await.unwrap();
        assert!(expires <= clock.unix() + PRE_LOGIN_TTL);
        // Once signed in, the row follows the session's own lifetime.
        let user_id = user(&store).await;
        let mut signed = signed_in(user_id);
        sessions.create(&mut signed).await.unwrap();
        let (_, expires) = row(&store, &signed.id).await.unwrap();
        assert!(expires > clock.unix() + 86_400);
    }

    #[tokio::test]
    async fn pre_login_sessions_beyond_the_cap_are_evicted_oldest_first_and_signed_in_ones_never() {
        let (_dir, store) = store();
        let clock = Clock::system();
        let sessions = DbSessionStore::new(store.clone(), clock.clone()).with_pre_login_cap(5);
        let user_id = user(&store).await;
        let mut kept_signed_in = signed_in(user_id);
        sessions.create(&mut kept_signed_in).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..20 {
            let mut record = pending();
            sessions.create(&mut record).await.unwrap();
            ids.push(record.id);
            // Later logins expire later: the order eviction follows.
            clock.advance(std::time::Duration::from_secs(1));
        }
        assert_eq!(
            store.read(|tx| tx.pending_session_count()).await.unwrap(),
            5
        );
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(row(&store, id).await.is_some(), i >= 15, "login {i}");
        }
        assert!(row(&store, &kept_signed_in.id).await.is_some());
        // Deletions keep the count right (the triggers of migration 0004).
        sessions.delete(&ids[19]).await.unwrap();
        assert_eq!(
            store.read(|tx| tx.pending_session_count()).await.unwrap(),
            4
        );
    }

    #[tokio::test]
    async fn session_data_over_the_size_limit_is_refused() {
        let (_dir, store) = store();
        let sessions = DbSessionStore::new(store.clone(), Clock::system());
        let mut record = record(serde_json::json!({ "big": "x".repeat(MAX_SESSION_DATA) }));
        assert!(matches!(
            sessions.create(&mut record).await,
            Err(session_store::Error::Encode(_))
        ));
        assert_eq!(row(&store, &record.id).await, None);
    }
}
