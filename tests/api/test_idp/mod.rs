//! A standalone OpenID provider for the integration tests: an axum server on 127.0.0.1:0 that
//! speaks real OIDC (discovery, JWKS, RS256 ID tokens, a validating token endpoint, userinfo),
//! mocks Microsoft Graph and the Okta Groups API, and can be told to misbehave through
//! [`Knobs`], one field per docs/security-cases.md case.
//!
//! ```ignore
//! let idp = TestIdp::start().await;
//! idp.set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups(["admins"]));
//! idp.with_knobs(|k| { k.remove_claim("sub"); });       // security case 3
//! // point teamgate at idp.issuer(), idp.client_id(), idp.client_secret(), then log in.
//! assert_eq!(idp.token_calls(), 1);
//! ```
//!
//! Module map: `keys` (the RSA pool and the P-256 key, JWKs, raw signing), `tokens` (ID-token
//! claims and JWS encoding), `knobs` (every misbehaviour), `faults` (counting and fault
//! injection in front of every endpoint), `endpoints` (router, discovery, JWKS, authorization),
//! `token` (token endpoint and userinfo), `entra` (Entra claims and the Graph mock), `okta`
//! (Okta claims and the Groups API mock), `spec` (users, options and recorded requests).

#![allow(
    dead_code,
    reason = "a toolkit for many test files: any one build of the suite uses only part of it"
)]

mod endpoints;
mod entra;
mod faults;
mod keys;
mod knobs;
mod okta;
mod spec;
mod token;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

// The toolkit's vocabulary, re-exported for the test files (each uses only part of it).
#[allow(unused_imports)]
pub use entra::{EntraUser, entra_group_id};
#[allow(unused_imports)]
pub use knobs::{
    Alg, Endpoint, Fault, GroupsPlacement, IssParam, Kid, Knobs, TokenAuth, TokenShape,
};
#[allow(unused_imports)]
pub use okta::{OKTA_CLAIM_LIMIT, okta_group_id, okta_group_names, okta_login_spec};
#[allow(unused_imports)]
pub use spec::{AuthorizeRequest, LoginSpec, TestIdpOptions, TokenRequest};
#[allow(unused_imports)]
pub use tokens::TOKEN_LIFETIME_SECS;

/// Seconds since the Unix epoch, for `exp`/`iat` knobs.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A random URL-safe token of `bytes` random bytes.
fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    keys::b64(raw)
}

/// A random GUID (version 4 layout), as Entra object and tenant ids look.
pub fn random_guid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// An issued authorization code, waiting for the token request (RFC 6749 §4.1.3). There is
/// one client, so the client the code was issued to needs no record.
struct PendingCode {
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    sub: String,
    issued: Instant,
}

/// Everything that changes while the IdP runs, but the knobs; behind one std mutex, never
/// held across an await.
struct State {
    /// Pool slot of the signing key, and of the one before it (published beside it).
    current_key: usize,
    previous_key: Option<usize>,
    redirect_uris: Vec<String>,
    next_login: LoginSpec,
    /// The directory: every user ever given, by `sub`, latest version.
    users: HashMap<String, LoginSpec>,
    codes: HashMap<String, PendingCode>,
    /// Access token -> the `sub` it was issued to (userinfo, Graph).
    access_tokens: HashMap<String, String>,
    /// Refresh token -> the scope it was issued with.
    refresh_tokens: HashMap<String, String>,
    authorize_requests: Vec<AuthorizeRequest>,
    token_requests: Vec<TokenRequest>,
    /// `METHOD path?query` of every Graph and Okta API call.
    directory_requests: Vec<String>,
    id_tokens: Vec<String>,
    /// Every call of the end-session endpoint (RP-initiated logout), its query parameters.
    end_session_requests: Vec<AuthorizeRequest>,
    /// The post-logout redirect URIs the client registered.
    post_logout_redirect_uris: Vec<String>,
}

struct Inner {
    base_url: String,
    issuer_path: String,
    metadata_issuer_template: Option<String>,
    /// Random path segment of authorize/token/userinfo/JWKS: per run, so a client that
    /// guesses endpoints instead of reading discovery fails (security case 15).
    prefix: String,
    client_id: String,
    client_secret: String,
    okta_api_token: String,
    initial_knobs: Knobs,
    /// Apart from `state`, so a `with_knobs` closure may call any other `TestIdp` method.
    /// Handlers take a snapshot at the start of each request and never hold both locks.
    knobs: Mutex<Knobs>,
    calls: [AtomicUsize; Endpoint::ALL.len()],
    state: Mutex<State>,
}

/// A running test IdP. Cheap to clone; every clone drives the same server.
#[derive(Clone)]
pub struct TestIdp {
    inner: Arc<Inner>,
}

impl TestIdp {
    /// Start an IdP with the issuer at the server root.
    pub async fn start() -> TestIdp {
        Self::start_with(TestIdpOptions::default()).await
    }

    pub async fn start_with(options: TestIdpOptions) -> TestIdp {
        assert!(
            options.issuer_path.is_empty()
                || (options.issuer_path.starts_with('/') && !options.issuer_path.ends_with('/')),
            "issuer_path must be empty or start with / and not end with /"
        );
        // Key generation blocks for a while the first time: keep it off the runtime.
        tokio::task::spawn_blocking(keys::pool).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut initial_knobs = Knobs::default();
        if options.metadata_issuer_template.is_some() {
            initial_knobs.iss_param = IssParam::Omit;
            initial_knobs.iss_parameter_supported = None;
        }
        let next_login = LoginSpec::default();
        let idp = TestIdp {
            inner: Arc::new(Inner {
                base_url: format!("http://127.0.0.1:{port}"),
                issuer_path: options.issuer_path,
                metadata_issuer_template: options.metadata_issuer_template,
                prefix: format!("/op-{}", random_token(6)),
                client_id: options
                    .client_id
                    .unwrap_or_else(|| "teamgate-test-client".into()),
                client_secret: options
                    .client_secret
                    .unwrap_or_else(|| format!("s3:cr+t%41~ {}", random_token(9))),
                okta_api_token: format!("00{}", random_token(30)),
                initial_knobs: initial_knobs.clone(),
                knobs: Mutex::new(initial_knobs),
                calls: Default::default(),
                state: Mutex::new(State {
                    current_key: 0,
                    previous_key: None,
                    redirect_uris: Vec::new(),
                    users: HashMap::from([(next_login.sub.clone(), next_login.clone())]),
                    next_login,
                    codes: HashMap::new(),
                    access_tokens: HashMap::new(),
                    refresh_tokens: HashMap::new(),
                    authorize_requests: Vec::new(),
                    token_requests: Vec::new(),
                    directory_requests: Vec::new(),
                    id_tokens: Vec::new(),
                    end_session_requests: Vec::new(),
                    post_logout_redirect_uris: Vec::new(),
                }),
            }),
        };
        let app = endpoints::router(&idp);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap()
    }

    /// The knobs as they are now, for one request.
    fn knobs(&self) -> Knobs {
        self.inner.knobs.lock().unwrap().clone()
    }

    // ---- where it is ----

    /// `http://127.0.0.1:PORT`, no trailing slash. Also the Graph and Okta API base URL.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The issuer a relying party is configured with; discovery is served beneath it.
    pub fn issuer(&self) -> String {
        format!("{}{}", self.inner.base_url, self.inner.issuer_path)
    }

    /// The `issuer` of the discovery document (the `{tenantid}` template when multi-tenant).
    pub fn metadata_issuer(&self) -> String {
        match &self.inner.metadata_issuer_template {
            Some(template) => format!("{}{template}", self.inner.base_url),
            None => self.issuer(),
        }
    }

    /// The `iss` of an ID token for `spec`: the issuer, or the template with the user's `tid`.
    pub fn token_issuer(&self, spec: &LoginSpec) -> String {
        match &self.inner.metadata_issuer_template {
            Some(template) => {
                let tid = spec
                    .extra_claims
                    .get("tid")
                    .and_then(Value::as_str)
                    .unwrap_or("no-tid");
                format!(
                    "{}{}",
                    self.inner.base_url,
                    template.replace("{tenantid}", tid)
                )
            }
            None => self.issuer(),
        }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    fn endpoint_url(&self, name: &str) -> String {
        format!("{}{}/{name}", self.inner.base_url, self.inner.prefix)
    }

    pub fn authorization_endpoint(&self) -> String {
        self.endpoint_url("authorize")
    }

    pub fn token_endpoint(&self) -> String {
        self.endpoint_url("token")
    }

    pub fn userinfo_endpoint(&self) -> String {
        self.endpoint_url("userinfo")
    }

    pub fn jwks_uri(&self) -> String {
        self.endpoint_url("jwks")
    }

    /// Serves the JWKS too; redirect the JWKS endpoint here to see whether a client follows.
    pub fn moved_jwks_url(&self) -> String {
        format!("{}/moved/jwks", self.inner.base_url)
    }

    /// The Microsoft Graph base URL (`graph_url` in teamgate's config).
    pub fn graph_url(&self) -> String {
        self.base_url()
    }

    pub fn client_id(&self) -> String {
        self.inner.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.inner.client_secret.clone()
    }

    /// The token the Okta Groups API accepts as `Authorization: SSWS {token}`.
    pub fn okta_api_token(&self) -> String {
        self.inner.okta_api_token.clone()
    }

    /// Accept `uri` as a redirect URI. Until one is registered, any http(s) URI on a loopback
    /// host is accepted; from then on only registered ones, compared exactly.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    // ---- users ----

    /// The user the next authorization request signs in; also put in the directory.
    pub fn set_next_login(&self, spec: LoginSpec) {
        let mut state = self.lock();
        state.users.insert(spec.sub.clone(), spec.clone());
        state.next_login = spec;
    }

    /// Put a user in the directory (userinfo, Graph, Okta API) without signing them in next.
    pub fn put_user(&self, spec: LoginSpec) {
        self.lock().users.insert(spec.sub.clone(), spec);
    }

    pub fn next_login(&self) -> LoginSpec {
        self.lock().next_login.clone()
    }

    /// Issue an access token for `sub` as the token endpoint would, for calling userinfo or
    /// the directory mocks directly.
    pub fn mint_access_token(&self, sub: &str) -> String {
        let token = random_token(32);
        self.lock()
            .access_tokens
            .insert(token.clone(), sub.to_owned());
        token
    }

    /// Encode and sign arbitrary claims with the current key and header knobs.
    pub fn sign_claims(&self, claims: &Map<String, Value>) -> String {
        let knobs = self.knobs();
        let current_key = self.lock().current_key;
        tokens::sign(claims, &knobs, current_key)
    }

    // ---- knobs and keys ----

    /// Change the knobs; applies to every request that starts after this returns. The
    /// closure may call other `TestIdp` methods, except `with_knobs`, `reset_knobs` and
    /// `sign_claims` (the knobs are locked while it runs).
    pub fn with_knobs<R>(&self, change: impl FnOnce(&mut Knobs) -> R) -> R {
        change(&mut self.inner.knobs.lock().unwrap())
    }

    /// Back to an honest IdP (the knobs it started with).
    pub fn reset_knobs(&self) {
        *self.inner.knobs.lock().unwrap() = self.inner.initial_knobs.clone();
    }

    /// Sign with the next pool key from now on. The JWKS publishes the new key, and the old
    /// one too unless `jwks_keep_previous` is off (security cases 17-18).
    pub fn rotate_key(&self) {
        let mut state = self.lock();
        state.previous_key = Some(state.current_key);
        state.current_key = (state.current_key + 1) % keys::ROTATING_KEYS;
    }

    pub fn current_kid(&self) -> String {
        keys::pool().rsa[self.lock().current_key].kid.clone()
    }

    pub fn previous_kid(&self) -> Option<String> {
        let previous = self.lock().previous_key;
        previous.map(|slot| keys::pool().rsa[slot].kid.clone())
    }

    /// The kid of the key that `sign_with_rogue_key` signs with and `jwks_enc_key` publishes.
    pub fn rogue_kid(&self) -> String {
        keys::pool().rsa[keys::ROGUE].kid.clone()
    }

    /// The kid of the P-256 key (`Alg::Es256`, `jwks_ec_key`).
    pub fn ec_kid(&self) -> String {
        keys::pool().ec.kid.clone()
    }

    // ---- what happened ----

    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.inner.calls[endpoint as usize].load(Ordering::SeqCst)
    }

    pub fn discovery_calls(&self) -> usize {
        self.calls(Endpoint::Discovery)
    }

    pub fn authorize_calls(&self) -> usize {
        self.calls(Endpoint::Authorize)
    }

    pub fn token_calls(&self) -> usize {
        self.calls(Endpoint::Token)
    }

    pub fn jwks_calls(&self) -> usize {
        self.calls(Endpoint::Jwks)
    }

    pub fn userinfo_calls(&self) -> usize {
        self.calls(Endpoint::Userinfo)
    }

    pub fn graph_calls(&self) -> usize {
        self.calls(Endpoint::Graph)
    }

    pub fn okta_api_calls(&self) -> usize {
        self.calls(Endpoint::OktaGroups)
    }

    /// Every request to the end-session endpoint, in order.
    pub fn end_session_requests(&self) -> Vec<AuthorizeRequest> {
        self.lock().end_session_requests.clone()
    }

    /// Register a post-logout redirect URI: the end-session endpoint sends the browser there.
    pub fn register_post_logout_redirect_uri(&self, uri: &str) {
        self.lock().post_logout_redirect_uris.push(uri.to_owned());
    }

    /// OpenID Connect RP-Initiated Logout: the end-session endpoint discovery names.
    pub fn end_session_endpoint(&self) -> String {
        format!("{}{}/end-session", self.inner.base_url, self.inner.prefix)
    }

    pub fn last_authorize(&self) -> Option<AuthorizeRequest> {
        self.lock().authorize_requests.last().cloned()
    }

    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.lock().authorize_requests.clone()
    }

    pub fn last_token_request(&self) -> Option<TokenRequest> {
        self.lock().token_requests.last().cloned()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().token_requests.clone()
    }

    /// `METHOD path?query` of every Graph and Okta Groups API call, in order.
    pub fn directory_requests(&self) -> Vec<String> {
        self.lock().directory_requests.clone()
    }

    /// Every access token the token endpoint issued (log scans, security case 44).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.lock().access_tokens.keys().cloned().collect()
    }

    /// Revoke every refresh token issued so far, as an IdP does when it disables a user or
    /// signs them out: the next refresh with one is refused with `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.lock().refresh_tokens.clear();
    }

    /// The last ID token the token endpoint issued (for mix-up and replay tests).
    pub fn last_id_token(&self) -> Option<String> {
        self.lock().id_tokens.last().cloned()
    }

    /// Play the browser at the authorization endpoint: GET `authorize_url` and return where
    /// the IdP sends the browser back (the callback URL with code, state and iss), without
    /// following it. Panics unless the IdP answers with a redirect.
    pub async fn authorize_redirect(&self, authorize_url: &str) -> String {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client.get(authorize_url).send().await.unwrap();
        assert_eq!(response.status(), 302, "the authorization endpoint refused");
        response.headers()["location"].to_str().unwrap().to_owned()
    }
}
