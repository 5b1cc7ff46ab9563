//! Per-provider runtime state: the discovery document and the JWKS, fetched lazily (so
//! teamgate starts and serves sessions and SCIM while an IdP is down, security case 83) and
//! cached. An unknown `kid` triggers at most one JWKS refetch per cooldown, shared by all
//! concurrent logins (security cases 79-81); a failed, malformed or empty refetch keeps the good
//! keys. Discovery is done here rather than by openidconnect's `discover_async`, because an
//! Entra multi-tenant document names a templated issuer (`…/{tenantid}/v2.0`, IdP quirk E9)
//! that its exact comparison refuses; every other issuer is still compared exactly (case 16).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use openidconnect::{JsonWebKey, JsonWebKeySetUrl, JsonWebKeyUse};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::error::IdpError;
use super::groups_cache::GroupsCache;
use super::http_client::{IdpHttp, read_capped};
use super::jwk::IdpJsonWebKeySet;
use super::metadata::Metadata;
use crate::config::ProviderConfig;

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Least time between two JWKS refetches caused by unknown keys.
pub const JWKS_MISS_COOLDOWN: Duration = Duration::from_secs(30);
/// The placeholder Entra's multi-tenant discovery documents put in `issuer` (IdP quirk E9).
pub const TENANT_TEMPLATE: &str = "{tenantid}";

struct CachedMetadata {
    metadata: Arc<Metadata>,
    fetched: Instant,
}

/// A key set with what openidconnect's key type drops: Entra's per-key `issuer` (E9).
#[derive(Clone)]
pub struct KeySet {
    pub set: Arc<IdpJsonWebKeySet>,
    /// `kid` -> the `issuer` the JWKS entry names, when it names one.
    pub issuers: Arc<HashMap<String, String>>,
}

impl KeySet {
    /// Parse a JWKS document (RFC 7517 §5). Entries openidconnect cannot use are skipped (it
    /// deserializes with `VecSkipError`), so one bad entry never hides the good ones (81).
    pub fn parse(body: &[u8]) -> Result<KeySet, String> {
        let set: IdpJsonWebKeySet =
            serde_json::from_slice(body).map_err(|e| format!("the JWKS is not a key set: {e}"))?;
        let raw: Value =
            serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let mut issuers = HashMap::new();
        for key in raw
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(kid), Some(iss)) = (
                key.get("kid").and_then(Value::as_str),
                key.get("issuer").and_then(Value::as_str),
            ) {
                issuers.insert(kid.to_owned(), iss.to_owned());
            }
        }
        Ok(KeySet {
            set: Arc::new(set),
            issuers: Arc::new(issuers),
        })
    }
}

struct Keys {
    current: KeySet,
    /// Bumped on every successful refetch; lets a waiting login see that another one refetched.
    generation: u64,
}

/// Caches of one provider (keyed by provider id and issuer).
pub struct ProviderRuntime {
    issuer: String,
    /// The discovery `issuer` this provider accepts: the configured issuer, or for an Entra
    /// multi-tenant provider that issuer with its tenant segment replaced by `{tenantid}`.
    accepted_document_issuers: Vec<String>,
    http: IdpHttp,
    metadata: RwLock<Option<CachedMetadata>>,
    discovery_lock: Mutex<()>,
    keys: RwLock<Keys>,
    /// Last refetch caused by an unknown key; serialises refetches.
    miss_refresh: Mutex<Option<Instant>>,
    /// JWKS fetches made (discovery and refetches), for tests and metrics.
    jwks_fetches: std::sync::atomic::AtomicU64,
}

/// True for an Entra provider configured for several tenants (`tenant = "organizations"` or
/// `"common"`), whose tokens' issuer is the template with the token's own `tid`.
pub fn is_multi_tenant(provider: &ProviderConfig) -> bool {
    provider.is_multi_tenant()
}

/// The templated issuer a multi-tenant provider's document may carry: the configured issuer
/// with its `organizations`/`common` path segment replaced by `{tenantid}`.
fn templated_issuer(issuer: &str) -> Option<String> {
    let mut url = url::Url::parse(issuer).ok()?;
    let segments: Vec<String> = url.path_segments()?.map(str::to_owned).collect();
    let pos = segments.iter().position(|s| {
        s.eq_ignore_ascii_case("organizations") || s.eq_ignore_ascii_case("common")
    })?;
    let mut replaced = segments.clone();
    replaced[pos] = TENANT_TEMPLATE.to_owned();
    url.set_path(&replaced.join("/"));
    // `Url` percent-encodes the braces; the document carries them literally.
    Some(url.as_str().replace("%7Btenantid%7D", TENANT_TEMPLATE))
}

impl ProviderRuntime {
    fn new(provider: &ProviderConfig, http: IdpHttp) -> Self {
        let mut accepted = vec![provider.issuer.clone()];
        if is_multi_tenant(provider)
            && let Some(t) = templated_issuer(&provider.issuer)
        {
            accepted.push(t);
        }
        Self {
            issuer: provider.issuer.clone(),
            accepted_document_issuers: accepted,
            http,
            metadata: RwLock::new(None),
            discovery_lock: Mutex::new(()),
            keys: RwLock::new(Keys {
                current: KeySet {
                    set: Arc::new(IdpJsonWebKeySet::new(Vec::new())),
                    issuers: Arc::new(HashMap::new()),
                },
                generation: 0,
            }),
            miss_refresh: Mutex::new(None),
            jwks_fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn http(&self) -> &IdpHttp {
        &self.http
    }

    /// The issuer as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How many times the JWKS was fetched (discovery included).
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The discovery document, fetched when absent or stale. A stale copy is used when a
    /// refetch fails; with no copy at all the login is refused as "IdP unreachable".
    pub async fn metadata(&self) -> Result<Arc<Metadata>, IdpError> {
        if let Some(m) = self.fresh_metadata().await {
            return Ok(m);
        }
        let _single_flight = self.discovery_lock.lock().await;
        if let Some(m) = self.fresh_metadata().await {
            return Ok(m);
        }
        match self.discover().await {
            Ok((metadata, keys)) => {
                let metadata = Arc::new(metadata);
                self.install_keys(keys).await;
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

    /// OpenID Connect Discovery 1.0 §4: GET `{issuer}/.well-known/openid-configuration`; the
    /// document's `issuer` must equal the configured one exactly (§4.3, security case 16), or be
    /// the multi-tenant template; endpoints are always taken from the document (15).
    async fn discover(&self) -> Result<(Metadata, KeySet), IdpError> {
        let unavailable =
            |what: String| IdpError::Unavailable(format!("discovery of {}: {what}", self.issuer));
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = self.get_json_body(&url).await.map_err(unavailable)?;
        let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!("the document is not valid provider metadata: {e}"))
        })?;
        let issuer = metadata.issuer().as_str();
        if !self.accepted_document_issuers.iter().any(|a| a == issuer) {
            return Err(unavailable(format!(
                "the document's issuer {issuer:?} is not the configured {:?}",
                self.issuer
            )));
        }
        // The keys live in the returned KeySet, not in the metadata: ID tokens are verified by
        // `verify.rs` with them, never by the openidconnect client built from the metadata.
        let keys = self
            .fetch_jwks(metadata.jwks_uri())
            .await
            .map_err(unavailable)?;
        Ok((metadata, keys))
    }

    /// GET a JSON document with the IdP client (no redirects, timeouts, size cap).
    async fn get_json_body(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .client()
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        read_capped(response).await.map_err(|e| e.to_string())
    }

    /// Fetch and parse the JWKS.
    async fn fetch_jwks(&self, uri: &JsonWebKeySetUrl) -> Result<KeySet, String> {
        self.jwks_fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = self.get_json_body(uri.url().as_str()).await?;
        KeySet::parse(&body)
    }

    /// The current key set and its generation.
    pub async fn keys(&self) -> (KeySet, u64) {
        let keys = self.keys.read().await;
        (keys.current.clone(), keys.generation)
    }

    /// Called when a token names a key we do not have. Returns true when the key set changed
    /// since `seen_generation` (refetched now or by a concurrent login), so a retry may help.
    /// Refetches are serialised (single flight: 100 parallel misses cost one fetch, case 80)
    /// and at most one per [`JWKS_MISS_COOLDOWN`] (a flood of bogus `kid`s cannot make
    /// teamgate hammer the IdP).
    pub async fn refresh_keys_after_miss(
        &self,
        seen_generation: u64,
        jwks_uri: &JsonWebKeySetUrl,
    ) -> bool {
        let mut last = self.miss_refresh.lock().await;
        if self.keys.read().await.generation != seen_generation {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < JWKS_MISS_COOLDOWN) {
            tracing::warn!(issuer = %self.issuer, "unknown signing key; JWKS refetch skipped (cooldown)");
            return false;
        }
        *last = Some(Instant::now());
        match self.fetch_jwks(jwks_uri).await {
            Ok(set) => self.install_keys(set).await,
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS refetch failed; keeping the cached keys");
                false
            }
        }
    }

    /// Replace the key set unless the new one has no usable signing key (security case 81).
    async fn install_keys(&self, new: KeySet) -> bool {
        let usable = new
            .set
            .keys()
            .iter()
            .any(|k| k.key_use().is_none_or(|u| u.allows_signature()));
        if !usable {
            tracing::warn!(issuer = %self.issuer, "fetched JWKS has no signing key; keeping the cached keys");
            return false;
        }
        let mut keys = self.keys.write().await;
        keys.current = new;
        keys.generation += 1;
        true
    }
}

/// The runtimes of all providers, created on first use, and the resolved-groups cache shared
/// by logins of every provider.
pub struct Providers {
    http: IdpHttp,
    by_key: StdMutex<HashMap<(String, String), Arc<ProviderRuntime>>>,
    /// Groups resolved through Microsoft Graph or the Okta Groups API (`groups_cache_seconds`).
    pub groups_cache: GroupsCache,
}

impl Providers {
    pub fn new(http: IdpHttp) -> Self {
        Self {
            http,
            by_key: StdMutex::new(HashMap::new()),
            groups_cache: GroupsCache::default(),
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
            .or_insert_with(|| Arc::new(ProviderRuntime::new(provider, self.http.clone())))
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

#[cfg(test)]
mod tests {
    use super::templated_issuer;

    #[test]
    fn the_organizations_segment_becomes_the_tenant_template() {
        assert_eq!(
            templated_issuer("https://login.microsoftonline.com/organizations/v2.0").as_deref(),
            Some("https://login.microsoftonline.com/{tenantid}/v2.0")
        );
        assert_eq!(
            templated_issuer("https://login.microsoftonline.com/0000/v2.0"),
            None
        );
    }
}
