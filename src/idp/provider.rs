//! Per-provider runtime state: the discovery document and the JWKS, fetched lazily (so
//! teamgate starts and serves sessions and SCIM while an IdP is down, security case 83) and
//! cached. A document past its lifetime is still served while one background fetch replaces
//! it, and failed fetches back off (security cases, I7). An unknown `kid` triggers at most one JWKS refetch per cooldown, shared by all
//! concurrent logins (security cases 79-81); a failed, malformed or empty refetch keeps the good
//! keys. Discovery is done here rather than by openidconnect's `discover_async`, because an
//! Entra multi-tenant document names a templated issuer (`…/{tenantid}/v2.0`, IdP quirk E9)
//! that its exact comparison refuses; every other issuer is still compared exactly (case 16).

use std::collections::HashMap;
use std::sync::Weak;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use openidconnect::{JsonWebKey, JsonWebKeySetUrl, JsonWebKeyUse};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::error::IdpError;
use super::groups_cache::GroupsCache;
use super::http_client::{IdpHttp, read_capped};
use super::jwk::IdpJsonWebKeySet;
use super::metadata::Metadata;
use crate::config::ProviderConfig;
use crate::domain::Clock;

/// How long a discovery document is used before it is fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Wait after the first failed discovery before the next attempt; it doubles with each
/// failure in a row, up to [`DISCOVERY_BACKOFF_MAX`].
pub const DISCOVERY_BACKOFF_FIRST: Duration = Duration::from_secs(5);
pub const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Least time between two JWKS refetches caused by unknown keys.
pub const JWKS_MISS_COOLDOWN: Duration = Duration::from_secs(30);
/// The placeholder Entra's multi-tenant discovery documents put in `issuer` (IdP quirk E9).
pub const TENANT_TEMPLATE: &str = "{tenantid}";

/// The discovery document and what its fetches have gone like.
#[derive(Default)]
struct Discovery {
    /// The last good document and when it was fetched.
    document: Option<(Arc<Metadata>, OffsetDateTime)>,
    /// Failed fetches in a row.
    failures: u32,
    /// No fetch before this (back-off after failures).
    retry_at: Option<OffsetDateTime>,
    /// Why the last fetch failed, for logins refused while backing off.
    last_error: Option<String>,
    /// A background refresh of a stale document is running.
    refreshing: bool,
}

impl Discovery {
    fn may_fetch(&self, now: OffsetDateTime) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }
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
    /// Decides when a document is stale and when a back-off ends (tests move it forward).
    clock: Clock,
    /// Lets `metadata(&self)` start a background refresh that outlives the call.
    this: Weak<ProviderRuntime>,
    discovery: StdMutex<Discovery>,
    /// Serialises fetches (single flight): a waiter finds the result of the fetch it waited for.
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
    fn new(provider: &ProviderConfig, http: IdpHttp, clock: Clock) -> Arc<Self> {
        let mut accepted = vec![provider.issuer.clone()];
        if is_multi_tenant(provider)
            && let Some(t) = templated_issuer(&provider.issuer)
        {
            accepted.push(t);
        }
        Arc::new_cyclic(|this| Self {
            issuer: provider.issuer.clone(),
            accepted_document_issuers: accepted,
            http,
            clock,
            this: this.clone(),
            discovery: StdMutex::new(Discovery::default()),
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
        })
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

    fn discovery_state(&self) -> std::sync::MutexGuard<'_, Discovery> {
        match self.discovery.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The discovery document. A fresh one is returned as it is; a stale one (older than
    /// [`METADATA_TTL`]) is returned too, at once, while one background fetch replaces it, so
    /// an IdP that is down or black-holed costs logins nothing as long as a document was ever
    /// loaded. Without any document the login waits for one fetch (single flight: concurrent
    /// logins share it, never queue one timeout each). After failures, fetches back off
    /// ([`DISCOVERY_BACKOFF_FIRST`], doubling, up to [`DISCOVERY_BACKOFF_MAX`]); meanwhile a
    /// login with no document is refused at once as "IdP unreachable".
    pub async fn metadata(&self) -> Result<Arc<Metadata>, IdpError> {
        if let Some(answer) = self.cached_metadata() {
            return answer;
        }
        let _single_flight = self.discovery_lock.lock().await;
        // Another login may have fetched (or failed) while this one waited.
        if let Some(answer) = self.cached_metadata() {
            return answer;
        }
        self.fetch_metadata().await
    }

    /// What the cache can answer without a fetch in the foreground: a document (starting a
    /// background refresh when it is stale), a refusal while backing off, or `None`: fetch.
    fn cached_metadata(&self) -> Option<Result<Arc<Metadata>, IdpError>> {
        let now = self.clock.now();
        let mut state = self.discovery_state();
        if let Some((document, fetched)) = &state.document {
            let document = document.clone();
            let stale = now - *fetched >= METADATA_TTL;
            if stale && !state.refreshing && state.may_fetch(now) {
                state.refreshing = true;
                drop(state);
                self.refresh_in_background();
            }
            return Some(Ok(document));
        }
        if !state.may_fetch(now) {
            return Some(Err(IdpError::Unavailable(format!(
                "discovery of {}: {} (retrying after a back-off)",
                self.issuer,
                state.last_error.as_deref().unwrap_or("failed")
            ))));
        }
        None
    }

    /// One fetch of the document (the caller holds `discovery_lock`), its outcome recorded.
    async fn fetch_metadata(&self) -> Result<Arc<Metadata>, IdpError> {
        match self.discover().await {
            Ok((metadata, keys)) => {
                let metadata = Arc::new(metadata);
                self.install_keys(keys).await;
                let mut state = self.discovery_state();
                state.document = Some((metadata.clone(), self.clock.now()));
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                Ok(metadata)
            }
            Err(e) => {
                let mut state = self.discovery_state();
                state.failures = state.failures.saturating_add(1);
                let backoff = DISCOVERY_BACKOFF_FIRST
                    .saturating_mul(1u32 << (state.failures - 1).min(16))
                    .min(DISCOVERY_BACKOFF_MAX);
                state.retry_at = Some(self.clock.now() + backoff);
                state.last_error = Some(e.to_string());
                if state.document.is_some() {
                    tracing::warn!(issuer = %self.issuer, error = %e, retry_in = ?backoff, "discovery refresh failed; using the cached document");
                }
                Err(e)
            }
        }
    }

    /// Refetch a stale document off the request path.
    fn refresh_in_background(&self) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let _single_flight = this.discovery_lock.lock().await;
            let _ = this.fetch_metadata().await;
            this.discovery_state().refreshing = false;
        });
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
    clock: Clock,
    by_key: StdMutex<HashMap<(String, String), Arc<ProviderRuntime>>>,
    /// Groups resolved through Microsoft Graph or the Okta Groups API (`groups_cache_seconds`).
    pub groups_cache: GroupsCache,
}

impl Providers {
    pub fn new(http: IdpHttp, clock: Clock) -> Self {
        Self {
            http,
            clock,
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
            .or_insert_with(|| {
                ProviderRuntime::new(provider, self.http.clone(), self.clock.clone())
            })
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
