//! What the forward-auth tests share: teamgate configured against the test IdP (three teams:
//! `engineers`, `operators`, `everyone`), started on a listener bound by the caller so that
//! `public_url` can be a proxy in front of it; a browser-like agent whose cookies can be read;
//! a real login; and the independent verification of an assertion against the JWKS.

#![allow(
    dead_code,
    reason = "shared by several test files; each uses part of it"
)]

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::cookie::CookieStore;
use serde_json::Value;
use teamgate::app::Application;
use teamgate::config::Config;
use teamgate::state::AppState;
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::helpers::follow;
use crate::test_idp::{LoginSpec, TestIdp};

/// The provider id teamgate knows the test IdP by.
pub const PROVIDER: &str = "idp";

/// A running teamgate and the IdP it trusts.
pub struct Gate {
    /// Where teamgate itself listens: `http://127.0.0.1:PORT`.
    pub direct: String,
    /// `server.public_url` (teamgate itself, or a proxy in front of it).
    pub public_url: String,
    pub state: AppState,
    pub idp: TestIdp,
    pub dir: Arc<TempDir>,
    pub db: Arc<crate::helpers::TestDb>,
}

impl Gate {
    /// A URL on teamgate itself, bypassing any proxy.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.direct)
    }

    /// The user's database row by their IdP subject.
    pub async fn user(&self, sub: &str) -> teamgate::store::users::UserRecord {
        let sub = sub.to_owned();
        self.state
            .store
            .read(move |conn| conn.user_by_subject(PROVIDER, &sub))
            .await
            .unwrap()
            .expect("the user has signed in")
    }

    /// Deprovision: bump the user's session generation and delete their sessions, as SCIM
    /// deactivation and "sign out everywhere" do.
    pub async fn revoke(&self, sub: &str) {
        let id = self.user(sub).await.id;
        self.state
            .store
            .write(move |conn| conn.revoke_user_sessions(id))
            .await
            .unwrap();
    }
}

/// The config every forward-auth test starts from. `server_extra` goes into `[server]`,
/// `extra` at the end (e.g. a `[forward_auth]` table).
pub fn config(idp: &TestIdp, secret_file: &str, server_extra: &str, extra: &str) -> String {
    config_with(idp, secret_file, server_extra, "", extra)
}

/// [`config`] with `provider_extra` inside the provider's table (e.g. `scim = { enabled = true }`).
pub fn config_with(
    idp: &TestIdp,
    secret_file: &str,
    server_extra: &str,
    provider_extra: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[server]
public_url = "{{PUBLIC_URL}}"
listen = "127.0.0.1:0"
database = "{{DB}}"
{server_extra}

[[provider]]
id = "{PROVIDER}"
kind = "oidc"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
{provider_extra}

[[team]]
id = "engineers"
name = "Engineers"
roles = [{{ scope = "org/acme/space/infra", role = "editor" }}]
groups = [{{ provider = "{PROVIDER}", id = "g-eng" }}]

[[team]]
id = "operators"
name = "Operators"
roles = [{{ scope = "org/acme", role = "owner" }}]
groups = [{{ provider = "{PROVIDER}", id = "g-ops" }}]

[[team]]
id = "everyone"
name = "Everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]
members = ["alice@example.com", "bob@example.com"]

{extra}
"#,
        issuer = idp.issuer(),
        client_id = idp.client_id(),
    )
}

/// Start teamgate against a fresh test IdP; `public_url` is teamgate's own address.
pub async fn spawn(server_extra: &str, extra: &str) -> Gate {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = format!("http://{}", listener.local_addr().unwrap());
    spawn_on(listener, &direct, server_extra, extra).await
}

/// Start teamgate on `listener` with `public_url` (a proxy in front of it, or itself).
pub async fn spawn_on(
    listener: TcpListener,
    public_url: &str,
    server_extra: &str,
    extra: &str,
) -> Gate {
    spawn_with(listener, public_url, server_extra, "", extra).await
}

/// Start teamgate with SCIM enabled for the test provider; returns a SCIM bearer token too.
pub async fn spawn_scim() -> (Gate, String) {
    spawn_scim_with("").await
}

/// [`spawn_scim`] with `extra` at the end of the config (e.g. a `[forward_auth]` table or
/// `[[client]]` blocks).
pub async fn spawn_scim_with(extra: &str) -> (Gate, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = format!("http://{}", listener.local_addr().unwrap());
    let gate = spawn_with(listener, &direct, "", "scim = { enabled = true }", extra).await;
    let config = gate.state.config.get();
    let token = teamgate::provisioning::tokens::create(
        &gate.state.store,
        &gate.state.clock,
        &config,
        PROVIDER,
        None,
        1,
        None,
    )
    .await
    .unwrap();
    (gate, token.token.expose().to_owned())
}

pub async fn spawn_with(
    listener: TcpListener,
    public_url: &str,
    server_extra: &str,
    provider_extra: &str,
    extra: &str,
) -> Gate {
    let idp = TestIdp::start().await;
    let dir = TempDir::new().unwrap();
    let db = crate::helpers::TestDb::fresh(dir.path());
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, idp.client_secret()).unwrap();
    let text = config_with(
        &idp,
        &secret.display().to_string(),
        server_extra,
        provider_extra,
        extra,
    )
    .replace("{PUBLIC_URL}", public_url)
    .replace("{DB}", &db.setting);
    let text = crate::helpers::with_pg_secret_key(&text, &db, dir.path());
    let text = crate::helpers::without_login_limit(&text);
    let config = Config::parse(&text, &dir.path().join("teamgate.toml"))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    let direct = format!("http://{}", listener.local_addr().unwrap());
    let app = Application::build_with_listener(config, listener)
        .await
        .unwrap();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Gate {
        direct,
        public_url: public_url.to_owned(),
        state,
        idp,
        dir: Arc::new(dir),
        db: Arc::new(db),
    }
}

/// A browser: a cookie jar that the test can read, redirects left to the test.
#[derive(Clone)]
pub struct Agent {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Default for Agent {
    fn default() -> Self {
        Agent::new()
    }
}

impl Agent {
    pub fn new() -> Agent {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Agent { client, jar }
    }

    /// The value of cookie `name` the browser would send to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }
}

/// A user of the test IdP in the given groups.
pub fn user(sub: &str, email: &str, groups: &[&str]) -> LoginSpec {
    LoginSpec::new(sub, email).with_groups(groups.iter().copied())
}

/// Sign `agent` in at `login_base` (teamgate or the proxy in front of it) as `spec`, through
/// the test IdP; returns the final response (teamgate's home page, or `rd`).
pub async fn sign_in(
    gate: &Gate,
    agent: &Agent,
    login_base: &str,
    spec: LoginSpec,
) -> reqwest::Response {
    gate.idp.set_next_login(spec);
    let (hops, last) = follow(
        &agent.client,
        &format!("{login_base}/login?provider={PROVIDER}"),
    )
    .await;
    assert!(
        last.status().is_success(),
        "the login did not succeed: {hops:?}"
    );
    last
}

/// A signed-in agent at teamgate itself.
pub async fn signed_in(gate: &Gate, spec: LoginSpec) -> Agent {
    let agent = Agent::new();
    sign_in(gate, &agent, &gate.direct.clone(), spec).await;
    agent
}

/// Verify `token` as an application would: key by `kid` from the JWKS at `jwks_url`, alg pinned
/// to ES256, `typ` checked, `iss`, `aud`, `exp`, `iat` and `sub` required (security cases 59-60).
pub async fn verify(
    token: &str,
    jwks_url: &str,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let set: JwkSet = reqwest::get(jwks_url).await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("teamgate-assertion+jwt") {
        return Err(format!("unexpected typ {:?}", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// `token` with one character in the middle of its payload changed (a middle character carries
/// six whole bits, where the last one may only carry padding bits).
pub fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Vec<char> = parts[1].chars().collect();
    let middle = payload.len() / 2;
    payload[middle] = if payload[middle] == 'A' { 'B' } else { 'A' };
    parts[1] = payload.into_iter().collect();
    parts.join(".")
}

/// The claims of `token`, unverified, for looking at them.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
