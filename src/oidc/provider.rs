//! Per-provider runtime state: the discovery document and the JWKS, fetched lazily (so
//! teamgate starts and serves sessions and SCIM while an IdP is down) and cached. An unknown
//! `kid` triggers at most one JWKS refetch per cooldown, shared by all concurrent logins
//! (SECURITY.md 79-81); a failed or empty refetch keeps the good keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::{IssuerUrl, JsonWebKey, JsonWebKeySetUrl, JsonWebKeyUse};
use tokio::sync::{Mutex, RwLock};

use super::error::LoginError;
use super::http_client::IdpHttp;
use super::metadata::Metadata;
use crate::config::ProviderConfig;

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Least time between two JWKS refetches caused by unknown keys.
pub const JWKS_MISS_COOLDOWN: Duration = Duration::from_secs(30);

struct CachedMetadata {
    metadata: Arc<Metadata>,
    fetched: Instant,
}

struct Keys {
    set: Arc<CoreJsonWebKeySet>,
    /// Bumped on every successful refetch; lets a waiting login see that another one refetched.
    generation: u64,
}

/// Caches of one provider (keyed by provider id and issuer).
pub struct ProviderRuntime {
    issuer: String,
    http: IdpHttp,
    metadata: RwLock<Option<CachedMetadata>>,
    discovery_lock: Mutex<()>,
    keys: RwLock<Keys>,
    /// Last refetch caused by an unknown key; serialises refetches.
    miss_refresh: Mutex<Option<Instant>>,
}

impl ProviderRuntime {
    fn new(issuer: String, http: IdpHttp) -> Self {
        Self {
            issuer,
            http,
            metadata: RwLock::new(None),
            discovery_lock: Mutex::new(()),
            keys: RwLock::new(Keys {
                set: Arc::new(CoreJsonWebKeySet::new(Vec::new())),
                generation: 0,
            }),
            miss_refresh: Mutex::new(None),
        }
    }

    pub fn http(&self) -> &IdpHttp {
        &self.http
    }

    /// The discovery document, fetched when absent or stale. A stale copy is used when a
    /// refetch fails; with no copy at all the login is refused as "IdP unreachable".
    pub async fn metadata(&self) -> Result<Arc<Metadata>, LoginError> {
        if let Some(m) = self.fresh_metadata().await {
            return Ok(m);
        }
        let _single_flight = self.discovery_lock.lock().await;
        if let Some(m) = self.fresh_metadata().await {
            return Ok(m);
        }
        match self.discover().await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                self.install_keys(metadata.jwks().clone()).await;
                *self.metadata.write().await = Some(CachedMetadata {
                    metadata: metadata.clone(),
                    fetched: Instant::now(),
                });
                Ok(metadata)
            }
            Err(e) => match self.metadata.read().await.as_ref() {
                Some(stale) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "discovery refresh failed; using the cached document");
                    Ok(stale.metadata.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fresh_metadata(&self) -> Option<Arc<Metadata>> {
        let guard = self.metadata.read().await;
        let cached = guard.as_ref()?;
        (cached.fetched.elapsed() < METADATA_TTL).then(|| cached.metadata.clone())
    }

    async fn discover(&self) -> Result<Metadata, LoginError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| LoginError::Internal(format!("issuer URL: {e}")))?;
        let http = |req| self.http.call(req);
        // openidconnect checks that the document's `issuer` equals ours (SECURITY.md 16) and
        // fetches the JWKS from the document's `jwks_uri` (15).
        Metadata::discover_async(issuer, &http)
            .await
            .map_err(|e| LoginError::IdpUnavailable(format!("discovery of {}: {}", self.issuer, error_chain(&e))))
    }

    /// The current key set and its generation.
    pub async fn keys(&self) -> (Arc<CoreJsonWebKeySet>, u64) {
        let keys = self.keys.read().await;
        (keys.set.clone(), keys.generation)
    }

    /// Called when a token names a key we do not have. Returns true when the key set changed
    /// since `seen_generation` (refetched now or by a concurrent login), so a retry may help.
    pub async fn refresh_keys_after_miss(&self, seen_generation: u64, jwks_uri: &JsonWebKeySetUrl) -> bool {
        let mut last = self.miss_refresh.lock().await;
        if self.keys.read().await.generation != seen_generation {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < JWKS_MISS_COOLDOWN) {
            tracing::warn!(issuer = %self.issuer, "unknown signing key; JWKS refetch skipped (cooldown)");
            return false;
        }
        *last = Some(Instant::now());
        let http = |req| self.http.call(req);
        match CoreJsonWebKeySet::fetch_async(jwks_uri, &http).await {
            Ok(set) => self.install_keys(set).await,
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %error_chain(&e), "JWKS refetch failed; keeping the cached keys");
                false
            }
        }
    }

    /// Replace the key set unless the new one has no usable signing key (SECURITY.md 81).
    async fn install_keys(&self, set: CoreJsonWebKeySet) -> bool {
        let usable = set.keys().iter().any(|k| {
            k.key_use().is_none_or(|u| u.allows_signature())
        });
        if !usable {
            tracing::warn!(issuer = %self.issuer, "fetched JWKS has no signing key; keeping the cached keys");
            return false;
        }
        let mut keys = self.keys.write().await;
        keys.set = Arc::new(set);
        keys.generation += 1;
        true
    }
}

/// The runtimes of all providers, created on first use.
pub struct Providers {
    http: IdpHttp,
    by_key: StdMutex<HashMap<(String, String), Arc<ProviderRuntime>>>,
}

impl Providers {
    pub fn new(http: IdpHttp) -> Self {
        Self {
            http,
            by_key: StdMutex::new(HashMap::new()),
        }
    }

    pub fn http(&self) -> &IdpHttp {
        &self.http
    }

    pub fn runtime(&self, provider: &ProviderConfig) -> Arc<ProviderRuntime> {
        let key = (provider.id.to_string(), provider.issuer.clone());
        let mut map = match self.by_key.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| Arc::new(ProviderRuntime::new(provider.issuer.clone(), self.http.clone())))
            .clone()
    }
}

/// An error and its sources on one line, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
