//! The config file exactly as written: serde structs with `deny_unknown_fields` and source
//! spans on every value that validation may complain about, so each error can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Roles beyond the built-in list that teams may hold.
    #[serde(default)]
    pub custom_roles: Vec<S<String>>,
    /// Roles declared with the roles they include (`[[role]]`).
    #[serde(default, rename = "role")]
    pub roles: Vec<S<RawRole>>,
    pub server: S<RawServer>,
    #[serde(default, rename = "provider")]
    pub providers: Vec<S<RawProvider>>,
    #[serde(default, rename = "team")]
    pub teams: Vec<S<RawTeam>>,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default, rename = "demo_user")]
    pub demo_users: Vec<S<RawDemoUser>>,
    #[serde(default)]
    pub forward_auth: RawForwardAuth,
    #[serde(default)]
    pub admin: RawAdmin,
    /// Applications that sign in through teamgate as an OpenID provider.
    #[serde(default, rename = "client")]
    pub clients: Vec<S<RawClient>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub name: S<String>,
    /// Roles a holder of this one holds too, on the same scope.
    #[serde(default)]
    pub includes: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub public_url: S<String>,
    #[serde(default = "default_listen")]
    pub listen: S<String>,
    #[serde(default = "default_database")]
    pub database: S<String>,
    /// The PostgreSQL password, from an environment variable...
    #[serde(default)]
    pub database_password_env: Option<S<String>>,
    /// ...or a file.
    #[serde(default)]
    pub database_password_file: Option<S<String>>,
    /// The key that encrypts refresh tokens at rest, from an environment variable...
    #[serde(default)]
    pub secret_key_env: Option<S<String>>,
    /// ...or a file.
    #[serde(default)]
    pub secret_key_file: Option<S<String>>,
    /// Allows `kind = "demo"` providers, which sign in anyone who clicks (loopback only).
    #[serde(default)]
    pub demo: Option<S<bool>>,
    #[serde(default = "default_idle")]
    pub session_idle_minutes: S<i64>,
    #[serde(default = "default_absolute")]
    pub session_absolute_hours: S<i64>,
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: S<i64>,
    /// Time allowed to connect to an IdP (discovery, JWKS, token, userinfo, Graph, Okta API).
    #[serde(default = "default_idp_connect_timeout")]
    pub idp_connect_timeout_seconds: S<i64>,
    /// Time allowed for a whole IdP call, connection and response body included.
    #[serde(default = "default_idp_timeout")]
    pub idp_timeout_seconds: S<i64>,
    /// Where `/metrics` is served (its own listener); without it there is no `/metrics`.
    #[serde(default)]
    pub metrics_listen: Option<S<String>>,
    /// The bearer token `/metrics` requires, from an env var or a file (required when
    /// `metrics_listen` is not a loopback address).
    #[serde(default)]
    pub metrics_token_env: Option<S<String>>,
    #[serde(default)]
    pub metrics_token_file: Option<S<String>>,
    /// `/login` requests allowed per client address per minute (0: no limit).
    #[serde(default = "default_login_rate")]
    pub login_rate_per_minute: S<i64>,
    /// How many `/login` requests a client address may make at once before the rate applies.
    #[serde(default = "default_login_burst")]
    pub login_rate_burst: S<i64>,
    /// Origins (scheme://host[:port]) that `rd` may send the browser back to.
    #[serde(default)]
    pub allowed_redirect_origins: Vec<S<String>>,
    /// A parent domain the session cookie is shared with (teamgate on its own host).
    pub cookie_domain: Option<S<String>>,
    /// Proxy addresses whose `X-Forwarded-*` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
}

fn spanned<T>(v: T) -> S<T> {
    Spanned::new(0..0, v)
}
fn default_listen() -> S<String> {
    spanned("127.0.0.1:8080".into())
}
fn default_database() -> S<String> {
    spanned("data/teamgate.db".into())
}
fn default_idle() -> S<i64> {
    spanned(8 * 60)
}
fn default_absolute() -> S<i64> {
    spanned(24)
}
fn default_skew() -> S<i64> {
    spanned(60)
}
fn default_idp_connect_timeout() -> S<i64> {
    spanned(2)
}
fn default_idp_timeout() -> S<i64> {
    spanned(10)
}
fn default_login_rate() -> S<i64> {
    spanned(60)
}
fn default_login_burst() -> S<i64> {
    spanned(30)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub id: S<String>,
    pub kind: S<String>,
    pub display_name: Option<String>,
    pub issuer: Option<S<String>>,
    pub client_id: Option<S<String>>,
    pub client_secret_env: Option<S<String>>,
    pub client_secret_file: Option<S<String>>,
    pub groups_claim: Option<S<String>>,
    /// For claims whose values are objects: the field holding the group key.
    pub groups_claim_field: Option<S<String>>,
    pub groups_prefix: Option<String>,
    pub group_key: Option<S<String>>,
    #[serde(default)]
    pub groups_from_userinfo: bool,
    #[serde(default)]
    pub extra_scopes: Vec<String>,
    #[serde(default)]
    pub allowed_email_domains: Vec<S<String>>,
    pub graph_url: Option<S<String>>,
    /// Entra: `organizations`/`common` for multi-tenant, else the tenant id (informational).
    pub tenant: Option<S<String>>,
    #[serde(default)]
    pub allowed_tenants: Vec<S<String>>,
    pub on_group_failure: Option<S<String>>,
    pub groups_cache_seconds: Option<S<i64>>,
    pub refresh_interval_seconds: Option<S<i64>>,
    pub okta_api_token_env: Option<S<String>>,
    /// The Okta API token read from a file (relative to the config file), like client secrets.
    pub okta_api_token_file: Option<S<String>>,
    /// Fallback match of a SCIM user to a login user by userName/email.
    #[serde(default)]
    pub match_by_email: bool,
    #[serde(default)]
    pub scim: RawScim,
    /// What sign-out ends: `local` (teamgate's session) or `idp` (the IdP's too).
    pub logout: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScim {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub id: S<String>,
    pub name: Option<String>,
    /// The scope the team belongs to: its role bindings must be on it or beneath it.
    pub scope: Option<S<String>>,
    #[serde(default)]
    pub roles: Vec<S<RawBinding>>,
    #[serde(default)]
    pub groups: Vec<S<RawGroupRef>>,
    /// Users (email) who are members through the config file itself.
    #[serde(default)]
    pub members: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    pub scope: S<String>,
    pub role: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroupRef {
    pub provider: S<String>,
    /// The tenant of a multi-tenant Entra provider the group belongs to.
    pub tenant: Option<S<String>>,
    pub id: Option<S<String>>,
    pub name: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub teams_without_groups: Vec<S<String>>,
    #[serde(default)]
    pub locked_users: Vec<S<String>>,
    /// When true (the default), a user who would end up with no team is refused at login.
    pub refuse_without_teams: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemoUser {
    pub email: S<String>,
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwardAuth {
    /// Identity header names, keyed by what they carry (user, email, email_verified, name,
    /// teams, roles, assertion).
    #[serde(default)]
    pub headers: BTreeMap<String, S<String>>,
    pub assertion_audience: Option<String>,
    pub assertion_ttl_seconds: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// The role that opens `/admin` (default `owner`)...
    pub role: Option<S<String>>,
    /// ...held on this scope or above it (default: any org scope holding it).
    pub scope: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: S<String>,
    pub name: Option<String>,
    pub secret_env: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    /// A PKCE-only client without a secret (a single-page or native app).
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub redirect_uris: Vec<S<String>>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<S<String>>,
    /// Only members of one of these teams may sign in to the client (default: anyone).
    #[serde(default)]
    pub allowed_teams: Vec<S<String>>,
    /// The claims the client receives beyond `sub` (default: all of them).
    pub claims: Option<Vec<S<String>>>,
    /// The ID token's signature algorithm: RS256 (default) or ES256.
    pub id_token_alg: Option<S<String>>,
}
