//! The admin config file: parsed from TOML ([`raw`]), validated as a whole into [`Config`]
//! ([`validate`], one module per section), and never half-accepted. Every problem becomes a
//! [`ConfigError`] naming the file, the line and the fix; all problems are reported at once.
//! Secrets are read from env vars or files during validation.

mod error;
mod live;
mod raw;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use live::LiveConfig;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::domain::plan::{ClientDecl, ConfigView, Mapping, TeamDecl};
use crate::domain::reconcile::Policy;
use crate::domain::roles::{RoleBinding, RoleHierarchy};
use crate::domain::secret::Secret;
use crate::domain::{ProviderId, Role, Scope, TeamId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Entra,
    Okta,
    Oidc,
    Demo,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Entra => "entra",
            ProviderKind::Okta => "okta",
            ProviderKind::Oidc => "oidc",
            ProviderKind::Demo => "demo",
        }
    }
}

/// Which attribute of an external group the mappings name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKey {
    /// The group's stable id (Entra object id, SCIM `externalId`).
    Id,
    /// The group's display name (Okta's groups claim, SCIM `displayName`).
    Name,
}

/// What sign-out ends (`logout = "local" | "idp"` per provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutMode {
    /// teamgate's session only; the IdP session lives on (the default).
    Local,
    /// teamgate's session, then the IdP's: OpenID Connect RP-Initiated Logout through the
    /// discovery document's `end_session_endpoint`.
    Idp,
}

/// What a login does when the provider's group membership cannot be resolved (Graph down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFailure {
    /// Keep the user's current teams and let them in (logged).
    Keep,
    /// Refuse the login with a page saying why.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL users reach teamgate at; its path (without a trailing `/`) is where every
    /// route is served (see [`ServerConfig::base_path`]).
    pub public_url: Url,
    /// A parent domain the session cookie is shared with, when teamgate has its own host and
    /// the apps it protects sit on sibling hosts.
    pub cookie_domain: Option<String>,
    pub listen: SocketAddr,
    /// Where the data lives: a SQLite file, or a PostgreSQL database shared by replicas.
    pub database: Database,
    /// The key that encrypts stored refresh tokens (AES-256-GCM), from `secret_key_env` or
    /// `secret_key_file`; `None` when neither is set (refresh tokens are then kept in memory).
    pub secret_key: Option<Secret>,
    pub demo: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub clock_skew: Duration,
    /// Connect and total timeouts of every call to an identity provider (security case 82).
    pub idp_connect_timeout: Duration,
    pub idp_timeout: Duration,
    /// The address `/metrics` is served on, never `listen` (as peers offer: oauth2-proxy's
    /// `--metrics-address`, Pomerium's `metrics_address`); `None`: no `/metrics` at all.
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token `/metrics` requires; required when `metrics_listen` is not loopback.
    pub metrics_token: Option<Secret>,
    /// `/login` requests per client address per minute; 0 turns the limit off.
    pub login_rate_per_minute: u32,
    /// Requests a client address may make at once before the rate applies.
    pub login_rate_burst: u32,
    /// Origins `rd` may point to, as `scheme://host:port` (ASCII serialisation).
    pub allowed_redirect_origins: Vec<url::Origin>,
    pub trusted_proxies: Vec<IpAddr>,
}

impl ServerConfig {
    /// True when cookies must be `Secure` and `__Host-` prefixed.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The path teamgate is served under: `""` at the root of its site, else `/teamgate`
    /// (public_url's path without a trailing slash).
    pub fn base_path(&self) -> &str {
        self.public_url.path().trim_end_matches('/')
    }

    /// An absolute path of teamgate's, for links and redirects: `/login` under the base path.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path())
    }

    /// `public_url` joined with an absolute path, without a doubled slash.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
    }
}

/// `server.database`: a file path (SQLite) or a `postgres://` URL.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(PgDatabase),
}

impl Database {
    /// For messages and logs: the path, or the URL without any password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(pg) => pg.describe(),
        }
    }

    /// The SQLite file, when the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }
}

/// Two settings name the same database when they describe it alike (the password aside).
impl PartialEq for Database {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe()
    }
}

/// TLS to PostgreSQL, with libpq's meanings of `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS, the server's certificate not checked (protects against passive eavesdropping only).
    Require,
    /// TLS, the certificate chain checked against the roots and the host name against it.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A PostgreSQL database: `postgres://USER@HOST:PORT/DBNAME?sslmode=...`, the password only
/// from `database_password_env` / `database_password_file`.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
    pub sslmode: SslMode,
    /// `sslrootcert`: a PEM file of CA certificates to trust instead of the public roots.
    pub root_cert: Option<PathBuf>,
}

impl PgDatabase {
    /// Parse a `postgres://` URL with the rules of `server.database` (no password in it).
    pub fn parse(text: &str, password: Option<Secret>) -> Result<PgDatabase, String> {
        validate::server::parse_postgres_url(text, password)
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.dbname
        );
        if self.sslmode != SslMode::Disable {
            s.push_str("?sslmode=");
            s.push_str(self.sslmode.as_str());
        }
        s
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub display_name: String,
    /// The issuer as configured (for a demo provider: `{public_url}/demo-idp`).
    pub issuer: String,
    pub client_id: String,
    /// None only for the demo provider, whose secret is made at start.
    pub client_secret: Option<Secret>,
    /// Dotted path to the groups claim (`groups`, `realm_access.roles`).
    pub groups_claim: String,
    pub groups_claim_field: Option<String>,
    pub groups_prefix: Option<String>,
    pub group_key: GroupKey,
    pub groups_from_userinfo: bool,
    pub extra_scopes: Vec<String>,
    /// Lowercased; checked against verified emails only.
    pub allowed_email_domains: Vec<String>,
    pub graph_url: Url,
    pub tenant: Option<String>,
    pub allowed_tenants: Vec<String>,
    pub on_group_failure: GroupFailure,
    pub groups_cache: Duration,
    pub refresh_interval: Option<Duration>,
    pub okta_api_token: Option<Secret>,
    pub match_by_email: bool,
    pub scim_enabled: bool,
    /// What `POST /logout` ends besides teamgate's session.
    pub logout: LogoutMode,
    /// Line of the `[[provider]]` header, for later messages.
    pub line: usize,
}

impl ProviderConfig {
    /// True for an Entra provider configured for several tenants (`tenant = "organizations"`
    /// or `"common"`, with `allowed_tenants`): its keys carry the tenant (see
    /// [`crate::domain::tenant`]).
    pub fn is_multi_tenant(&self) -> bool {
        self.kind == ProviderKind::Entra
            && self.tenant.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case("organizations") || t.eq_ignore_ascii_case("common")
            })
    }

    /// Whether `tenant` (lower case) is one this provider admits.
    pub fn admits_tenant(&self, tenant: &str) -> bool {
        self.allowed_tenants.iter().any(|t| t == tenant)
    }
}

#[derive(Debug, Clone)]
pub struct TeamConfig {
    pub id: TeamId,
    pub name: String,
    /// The scope the team belongs to; every role binding is on it or beneath it.
    pub scope: Option<Scope>,
    pub roles: Vec<RoleBinding>,
    /// (provider, group key) pairs that grant this team. For a multi-tenant provider the key
    /// carries the tenant: `{tid}/{group}` (see [`crate::domain::tenant`]).
    pub groups: Vec<(ProviderId, String)>,
    /// Lowercased emails of users who are members through the file.
    pub members: Vec<String>,
    pub line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct DefaultsConfig {
    pub teams_without_groups: Vec<TeamId>,
    /// Lowercased emails.
    pub locked_users: BTreeSet<String>,
    pub refuse_without_teams: bool,
}

#[derive(Debug, Clone)]
pub struct DemoUser {
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
}

/// Names of the identity headers handed to protected apps.
#[derive(Debug, Clone)]
pub struct ForwardAuthConfig {
    pub headers: BTreeMap<String, String>,
    pub assertion_audience: String,
    pub assertion_ttl: Duration,
}

pub const HEADER_KEYS: [(&str, &str); 7] = [
    ("user", "X-Teamgate-User"),
    ("email", "X-Teamgate-Email"),
    ("email_verified", "X-Teamgate-Email-Verified"),
    ("name", "X-Teamgate-Name"),
    ("teams", "X-Teamgate-Teams"),
    ("roles", "X-Teamgate-Roles"),
    ("assertion", "X-Teamgate-Assertion"),
];

/// What a client may receive besides `sub` (OpenID Connect Core §5.1 for `email`, `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClientClaim {
    /// `email` and `email_verified`, for the `email` scope and only when the email is verified.
    Email,
    /// `name`, for the `profile` scope.
    Name,
    /// `teams`: the ids of the user's teams.
    Teams,
    /// `roles`: `scope=role` pairs.
    Roles,
    /// `groups`: the team ids again, for apps that only understand a claim of that name.
    Groups,
}

impl ClientClaim {
    pub const ALL: [ClientClaim; 5] = [
        ClientClaim::Email,
        ClientClaim::Name,
        ClientClaim::Teams,
        ClientClaim::Roles,
        ClientClaim::Groups,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientClaim::Email => "email",
            ClientClaim::Name => "name",
            ClientClaim::Teams => "teams",
            ClientClaim::Roles => "roles",
            ClientClaim::Groups => "groups",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The JWS algorithm of a client's ID tokens (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every OpenID relying party must accept.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }
}

/// An application that signs in through teamgate as an OpenID provider (`[[client]]`).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The OAuth `client_id`.
    pub id: String,
    /// Shown to people (the admin pages, the refusal page).
    pub name: String,
    /// `None` exactly when the client is public (PKCE only).
    pub secret: Option<Secret>,
    pub public: bool,
    /// Compared as exact strings (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty: any signed-in user may sign in to the client.
    pub allowed_teams: Vec<TeamId>,
    pub claims: BTreeSet<ClientClaim>,
    pub id_token_alg: SigningAlg,
    pub line: usize,
}

impl ClientConfig {
    pub fn releases(&self, claim: ClientClaim) -> bool {
        self.claims.contains(&claim)
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub role: Role,
    pub scope: Option<Scope>,
}

/// The text of a config file and its SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub text: std::sync::Arc<str>,
    pub sha256: String,
}

impl Source {
    pub fn of(text: &str) -> Source {
        use sha2::{Digest, Sha256};
        Source {
            text: text.into(),
            sha256: Sha256::digest(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }
}

/// A validated config: every id parsed, every reference resolved, every secret read.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub server: ServerConfig,
    pub providers: Vec<ProviderConfig>,
    pub teams: Vec<TeamConfig>,
    pub defaults: DefaultsConfig,
    pub demo_users: Vec<DemoUser>,
    pub known_roles: BTreeSet<Role>,
    /// Which roles include which (built-in order plus `[[role]] includes`).
    pub role_hierarchy: RoleHierarchy,
    pub forward_auth: ForwardAuthConfig,
    pub admin: AdminConfig,
    /// Applications signing in through teamgate's OpenID provider.
    pub clients: Vec<ClientConfig>,
    /// The text it was parsed from and its digest (stored as the applied config, so replicas
    /// run the same version).
    pub source: Source,
    /// What plan and explain compare: built once, when the file is read.
    view: ConfigView,
    /// The reconcile inputs of [`Config::view`], built once from it.
    policy: Policy,
}

impl Config {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: 0,
                message: format!("cannot read the file: {e}; check the path given to --config"),
            }])
        })?;
        Self::parse(&text, path)
    }

    /// Validate `text` as if read from `path` (relative secret files resolve beside it).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        validate::parse(text, path)
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id.as_str() == id)
    }

    pub fn client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// teamgate's issuer as an OpenID provider: `public_url` without a trailing slash.
    pub fn issuer(&self) -> String {
        self.server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn team(&self, id: &TeamId) -> Option<&TeamConfig> {
        self.teams.iter().find(|t| &t.id == id)
    }

    /// The inputs reconcile needs from the config.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The parts of the config that decide memberships and roles, as plan and explain
    /// compare them.
    pub fn view(&self) -> &ConfigView {
        &self.view
    }

    /// Build the view of the declarations (and, from it, the policy): the one place either
    /// is derived from a config.
    fn with_view(mut self) -> Config {
        let mut view = ConfigView::default();
        for team in &self.teams {
            view.teams.insert(
                team.id.clone(),
                TeamDecl {
                    name: team.name.clone(),
                    scope: team.scope.clone(),
                    roles: team.roles.iter().cloned().collect(),
                    members: team.members.iter().cloned().collect(),
                },
            );
            for (provider, group) in &team.groups {
                view.mappings
                    .insert(Mapping::new(provider.clone(), group, team.id.clone()));
            }
        }
        view.teams_without_groups = self.defaults.teams_without_groups.clone();
        view.hierarchy = self.role_hierarchy.clone();
        view.locked_users = self.defaults.locked_users.clone();
        for c in &self.clients {
            view.clients.insert(
                c.id.clone(),
                ClientDecl {
                    name: c.name.clone(),
                    public: c.public,
                    redirect_uris: c.redirect_uris.clone(),
                    post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                    allowed_teams: c.allowed_teams.clone(),
                    claims: c.claims.iter().map(|k| k.as_str().to_owned()).collect(),
                    id_token_alg: c.id_token_alg.as_str().to_owned(),
                },
            );
        }
        self.policy = view.policy();
        self.view = view;
        self
    }

    /// Teams whose `members` list names `email`.
    pub fn config_teams_of(&self, email: &str) -> Vec<TeamId> {
        let email = email.to_lowercase();
        self.teams
            .iter()
            .filter(|t| t.members.contains(&email))
            .map(|t| t.id.clone())
            .collect()
    }

    pub fn is_locked(&self, email: &str) -> bool {
        self.defaults.locked_users.contains(&email.to_lowercase())
    }
}

/// Lowercase a plausible email address; None when it is not one.
pub fn normalise_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@');
    ok.then(|| s.to_lowercase())
}

#[cfg(test)]
mod tests;
