//! A standalone OpenID provider for the integration tests: an axum server on 127.0.0.1:0 that
//! speaks real OIDC (discovery, JWKS, RS256 ID tokens, a validating token endpoint, userinfo),
//! mocks Microsoft Graph and the Okta Groups API, and can be told to misbehave through
//! [`Knobs`], one field per SECURITY.md case.
//!
//! ```ignore
//! let idp = TestIdp::start().await;
//! idp.set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups(["admins"]));
//! idp.with_knobs(|k| { k.remove_claim("sub"); });       // SECURITY.md 3
//! // point teamgate at idp.issuer(), idp.client_id(), idp.client_secret(), then log in.
//! assert_eq!(idp.token_calls(), 1);
//! ```
//!
//! Module map: `keys` (the RSA pool and the P-256 key, JWKs, raw signing), `tokens` (ID-token
//! claims and JWS encoding), `knobs` (every misbehaviour), `endpoints` (the OIDC endpoints and
//! fault injection), `entra` (Entra claims and the Graph mock), `okta` (Okta claims and the
//! Groups API mock).

#![allow(
    dead_code,
    reason = "a toolkit for many test files: any one build of the suite uses only part of it"
)]

mod endpoints;
mod entra;
mod keys;
mod knobs;
mod okta;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

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
pub use tokens::TOKEN_LIFETIME_SECS;

/// How the IdP is laid out; fixed for its lifetime.
#[derive(Clone, Debug, Default)]
pub struct TestIdpOptions {
    /// The issuer's path below the server root: `""` (Okta org server style), `/{tid}/v2.0`
    /// (Entra), `/oauth2/default` (Okta custom server). Discovery is served beneath it.
    pub issuer_path: String,
    /// Multi-tenant (Entra `/common`, IDP-QUIRKS E9): the discovery `issuer` is this path
    /// template holding a literal `{tenantid}`; ID tokens carry the user's `tid` in its place.
    /// RFC 9207 `iss` is then neither sent nor advertised, as Entra does.
    pub metadata_issuer_template: Option<String>,
    /// Defaults to `teamgate-test-client`.
    pub client_id: Option<String>,
    /// Defaults to a random secret containing `: + % ~` and a space (RFC 6749 §2.3.1).
    pub client_secret: Option<String>,
}

impl TestIdpOptions {
    /// A single-tenant Entra v2 issuer: `{base}/{tid}/v2.0`.
    pub fn entra(tid: &str) -> Self {
        Self {
            issuer_path: format!("/{tid}/v2.0"),
            ..Self::default()
        }
    }

    /// Entra's multi-tenant endpoint: discovery at `{base}/common/v2.0`, whose document names
    /// the issuer `{base}/{tenantid}/v2.0`.
    pub fn entra_multi_tenant() -> Self {
        Self {
            issuer_path: "/common/v2.0".into(),
            metadata_issuer_template: Some("/{tenantid}/v2.0".into()),
            ..Self::default()
        }
    }

    /// An Okta custom authorization server: `{base}/oauth2/{server_id}` (IDP-QUIRKS O4).
    pub fn okta_custom_server(server_id: &str) -> Self {
        Self {
            issuer_path: format!("/oauth2/{server_id}"),
            ..Self::default()
        }
    }
}

/// Who signs in next, and what the directory (Graph, Okta Groups API) says about them.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginSpec {
    pub sub: String,
    /// `None`: no `email` claim.
    pub email: Option<String>,
    /// `None`: no `email_verified` claim (SECURITY.md 28: then the email is not trusted).
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// The `groups` claim verbatim; `None`: the claim is absent (not the same as `[]`).
    pub groups: Option<Value>,
    /// More ID-token claims, set over the standard ones (so they may also replace them).
    pub extra_claims: Map<String, Value>,
    /// The user's groups as Graph and the Okta Groups API report them; `None`: the string
    /// values of `groups`.
    pub directory_groups: Option<Vec<String>>,
    /// Entra directory roles: `transitiveMemberOf` lists them beside the groups (E5).
    pub directory_roles: Vec<String>,
}

impl Default for LoginSpec {
    fn default() -> Self {
        Self::new("user-alice", "alice@example.com")
    }
}

impl LoginSpec {
    /// A user with a verified email, a name made from it, and no `groups` claim.
    pub fn new(sub: &str, email: &str) -> Self {
        let local = email.split('@').next().unwrap_or(email);
        Self {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            name: Some(format!("{local} Example")),
            groups: None,
            extra_claims: Map::new(),
            directory_groups: None,
            directory_roles: Vec::new(),
        }
    }

    /// Set the `groups` claim to this array of strings.
    pub fn with_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        self.groups = Some(json!(groups));
        self
    }

    /// Add or replace one ID-token claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra_claims.insert(name.to_owned(), value);
        self
    }

    /// The groups the directory APIs report.
    pub fn directory_groups(&self) -> Vec<String> {
        if let Some(groups) = &self.directory_groups {
            return groups.clone();
        }
        match &self.groups {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    }
}

/// One request to the authorization endpoint, as the browser sent it.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    /// Query parameters in order, repeats kept.
    pub params: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        first(&self.params, name)
    }
}

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub headers: HeaderMap,
    /// Form parameters in order, repeats kept.
    pub form: Vec<(String, String)>,
}

impl TokenRequest {
    pub fn form(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `client_secret_basic` credentials, form-url-decoded (RFC 6749 §2.3.1); `None`
    /// when the request has no Basic `Authorization` or it does not decode.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        endpoints::basic_credentials(&self.headers)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

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

/// An issued authorization code, waiting for the token request (RFC 6749 §4.1.3).
struct PendingCode {
    client_id: String,
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
}

struct Inner {
    base_url: String,
    issuer_path: String,
    metadata_issuer_template: Option<String>,
    /// Random path segment of authorize/token/userinfo/JWKS: per run, so a client that
    /// guesses endpoints instead of reading discovery fails (SECURITY.md 15).
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
    /// one too unless `jwks_keep_previous` is off (SECURITY.md 17-18).
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
