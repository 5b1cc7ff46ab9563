//! The admin config file: parsed from TOML ([`raw`]), validated as a whole into [`Config`], and
//! never half-accepted. Every problem becomes a [`ConfigError`] naming the file, the line and the
//! fix; all problems are reported at once. Secrets are read from env vars or files here.

mod live;
mod raw;

pub use live::LiveConfig;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::domain::ids::BUILTIN_ROLES;
use crate::domain::plan::{ConfigView, Mapping, TeamDecl};
use crate::domain::reconcile::Policy;
use crate::domain::roles::RoleBinding;
use crate::domain::secret::Secret;
use crate::domain::{ProviderId, Role, Scope, TeamId};
use raw::{RawConfig, RawProvider, S};

/// One problem in the config file, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place (a missing section).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the config:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

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
    pub public_url: Url,
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub demo: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub clock_skew: Duration,
    /// Connect and total timeouts of every call to an identity provider (security case 82).
    pub idp_connect_timeout: Duration,
    pub idp_timeout: Duration,
    /// A separate address for `/metrics` (then absent from `listen`), as peers offer
    /// (oauth2-proxy's `--metrics-address`, Pomerium's `metrics_address`).
    pub metrics_listen: Option<SocketAddr>,
    /// Origins `rd` may point to, as `scheme://host:port` (ASCII serialisation).
    pub allowed_redirect_origins: Vec<url::Origin>,
    pub trusted_proxies: Vec<IpAddr>,
}

impl ServerConfig {
    /// True when cookies must be `Secure` and `__Host-` prefixed.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `public_url` joined with an absolute path, without a doubled slash.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
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
    /// Line of the `[[provider]]` header, for later messages.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct TeamConfig {
    pub id: TeamId,
    pub name: String,
    pub roles: Vec<RoleBinding>,
    /// (provider, group key) pairs that grant this team.
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

pub const HEADER_KEYS: [(&str, &str); 6] = [
    ("user", "X-Teamgate-User"),
    ("email", "X-Teamgate-Email"),
    ("name", "X-Teamgate-Name"),
    ("teams", "X-Teamgate-Teams"),
    ("roles", "X-Teamgate-Roles"),
    ("assertion", "X-Teamgate-Assertion"),
];

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub role: Role,
    pub scope: Option<Scope>,
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
    pub forward_auth: ForwardAuthConfig,
    pub admin: AdminConfig,
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
        let mut v = Validator {
            file: path.to_owned(),
            text,
            errors: Vec::new(),
        };
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map(|s| v.line_of(&s)).unwrap_or(0);
                let mut msg = e
                    .message()
                    .trim()
                    .replace("expected i64", "expected a whole number");
                // serde's type errors do not name the key; the text before the value does.
                if msg.starts_with("invalid")
                    && let Some(key) = e.span().and_then(|s| key_before(text, s.start))
                {
                    msg = format!("{key}: {msg}");
                }
                let hint = if msg.contains("unknown field") {
                    "; remove it or check its spelling against config/example.toml"
                } else {
                    ""
                };
                v.push(line, format!("{msg}{hint}"));
                return Err(ConfigErrors(v.errors));
            }
        };
        let config = v.validate(raw);
        if v.errors.is_empty() {
            config.ok_or_else(|| ConfigErrors(vec![]))
        } else {
            v.errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(v.errors))
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id.as_str() == id)
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
        view.locked_users = self.defaults.locked_users.clone();
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

struct Validator<'a> {
    file: PathBuf,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        if span.start == 0 && span.end == 0 {
            return 0;
        }
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn push(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            message,
        });
    }

    fn err<T>(&mut self, at: &S<T>, message: String) {
        let line = self.line_of(&at.span());
        self.push(line, message);
    }

    /// Parse a spanned string with `f`; on failure record the error at its line.
    fn parse_with<T, E: fmt::Display>(
        &mut self,
        value: &S<String>,
        key: &str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match f(value.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(value, format!("{key}: {e}"));
                None
            }
        }
    }

    fn positive(&mut self, value: &S<i64>, key: &str) -> Option<u64> {
        match u64::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.err(value, format!("{key} must be a whole number above 0"));
                None
            }
        }
    }

    /// A whole number of seconds within `range`.
    fn seconds_in(
        &mut self,
        value: &S<i64>,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        match u64::try_from(*value.get_ref()) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.err(
                    value,
                    format!("{key} must be {} to {}", range.start(), range.end()),
                );
                None
            }
        }
    }

    fn validate(&mut self, raw: RawConfig) -> Option<Config> {
        let mut known_roles: BTreeSet<Role> = BUILTIN_ROLES
            .iter()
            .filter_map(|r| Role::parse(r).ok())
            .collect();
        for r in &raw.custom_roles {
            if let Some(role) = self.parse_with(r, "custom_roles", Role::parse) {
                known_roles.insert(role);
            }
        }
        let server = self.server(raw.server.get_ref());
        let public_url = server.as_ref().map(|s| s.public_url.clone());
        let providers = self.providers(&raw.providers, public_url.as_ref(), server.as_ref());
        let provider_kinds: BTreeMap<ProviderId, GroupKey> = providers
            .iter()
            .map(|p| (p.id.clone(), p.group_key))
            .collect();
        let teams = self.teams(&raw.teams, &known_roles, &provider_kinds);
        let team_ids: BTreeSet<TeamId> = teams.iter().map(|t| t.id.clone()).collect();
        let defaults = self.defaults(&raw.defaults, &team_ids);
        let demo_users = self.demo_users(&raw.demo_users, &providers);
        let forward_auth = self.forward_auth(&raw.forward_auth, public_url.as_ref());
        let admin = self.admin(&raw.admin, &known_roles);
        Some(
            Config {
                path: self.file.clone(),
                server: server?,
                providers,
                teams,
                defaults,
                demo_users,
                known_roles,
                forward_auth,
                admin: admin?,
                view: ConfigView::default(),
                policy: Policy::default(),
            }
            .with_view(),
        )
    }

    fn server(&mut self, s: &raw::RawServer) -> Option<ServerConfig> {
        let public_url = self.parse_with(&s.public_url, "server.public_url", |u| {
            let url = Url::parse(u).map_err(|e| {
                format!("\"{u}\" is not a URL ({e}); write e.g. https://login.example.com")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!("\"{u}\" must be an http(s) URL with a host"));
            }
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return Err(format!(
                    "\"{u}\" must not carry a query, fragment or user info"
                ));
            }
            if url.scheme() == "http" && !is_loopback_host(&url) {
                return Err(format!(
                    "\"{u}\" uses plain http on a non-loopback host; use https"
                ));
            }
            Ok(url)
        });
        let listen = self.parse_with(&s.listen, "server.listen", |l| {
            l.parse::<SocketAddr>()
                .map_err(|_| format!("\"{l}\" is not an address:port; write e.g. 127.0.0.1:8080"))
        });
        let metrics_listen = s.metrics_listen.as_ref().map(|m| {
            self.parse_with(m, "server.metrics_listen", |l| {
                l.parse::<SocketAddr>().map_err(|_| {
                    format!("\"{l}\" is not an address:port; write e.g. 127.0.0.1:9100")
                })
            })
        });
        if let (Some(Some(metrics)), Some(listen), Some(m)) =
            (metrics_listen, listen, s.metrics_listen.as_ref())
            && metrics == listen
            && listen.port() != 0
        {
            self.err(
                m,
                "server.metrics_listen is the same address as server.listen; give /metrics its own port, or remove metrics_listen to serve it on listen".into(),
            );
        }
        let idle = self.positive(&s.session_idle_minutes, "server.session_idle_minutes");
        let absolute = self.positive(&s.session_absolute_hours, "server.session_absolute_hours");
        let skew = self.seconds_in(&s.clock_skew_seconds, "server.clock_skew_seconds", 0..=600);
        let idp_timeout = self.seconds_in(
            &s.idp_timeout_seconds,
            "server.idp_timeout_seconds",
            1..=120,
        );
        let idp_connect_timeout = self.seconds_in(
            &s.idp_connect_timeout_seconds,
            "server.idp_connect_timeout_seconds",
            1..=60,
        );
        if let (Some(connect), Some(total)) = (idp_connect_timeout, idp_timeout)
            && connect > total
        {
            self.err(
                &s.idp_connect_timeout_seconds,
                format!("server.idp_connect_timeout_seconds ({connect}) is longer than server.idp_timeout_seconds ({total}); the connection is part of the whole call"),
            );
        }
        let mut origins = Vec::new();
        for o in &s.allowed_redirect_origins {
            if let Some(origin) =
                self.parse_with(o, "server.allowed_redirect_origins", parse_origin)
            {
                origins.push(origin);
            }
        }
        let mut proxies = Vec::new();
        for p in &s.trusted_proxies {
            if let Some(ip) = self.parse_with(p, "server.trusted_proxies", |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("\"{s}\" is not an IP address"))
            }) {
                proxies.push(ip);
            }
        }
        if s.database.get_ref().trim().is_empty() {
            self.err(
                &s.database,
                "server.database is empty; give a file path such as data/teamgate.db".into(),
            );
        }
        Some(ServerConfig {
            public_url: public_url?,
            listen: listen?,
            database: PathBuf::from(s.database.get_ref()),
            demo: s.demo,
            session_idle: Duration::from_secs(idle? * 60),
            session_absolute: Duration::from_secs(absolute? * 3600),
            clock_skew: Duration::from_secs(skew?),
            idp_connect_timeout: Duration::from_secs(idp_connect_timeout?),
            idp_timeout: Duration::from_secs(idp_timeout?),
            metrics_listen: match metrics_listen {
                Some(parsed) => Some(parsed?),
                None => None,
            },
            allowed_redirect_origins: origins,
            trusted_proxies: proxies,
        })
    }

    fn providers(
        &mut self,
        raws: &[S<RawProvider>],
        public_url: Option<&Url>,
        server: Option<&ServerConfig>,
    ) -> Vec<ProviderConfig> {
        let mut out: Vec<ProviderConfig> = Vec::new();
        let mut issuers: BTreeMap<String, String> = BTreeMap::new();
        for sp in raws {
            let line = self.line_of(&sp.span());
            let p = sp.get_ref();
            let Some(id) = self.parse_with(&p.id, "provider.id", ProviderId::parse) else {
                continue;
            };
            if out.iter().any(|o| o.id == id) {
                self.err(
                    &p.id,
                    format!(
                        "provider id \"{id}\" is used twice; give each [[provider]] its own id"
                    ),
                );
                continue;
            }
            let kind = match p.kind.get_ref().as_str() {
                "entra" => ProviderKind::Entra,
                "okta" => ProviderKind::Okta,
                "oidc" => ProviderKind::Oidc,
                "demo" => ProviderKind::Demo,
                other => {
                    self.err(
                        &p.kind,
                        format!(
                            "provider kind \"{other}\" is unknown; use entra, okta, oidc or demo"
                        ),
                    );
                    continue;
                }
            };
            if let Some(p) = self.provider(p, id, kind, line, public_url, server) {
                if let Some(other) = issuers.insert(p.issuer.clone(), p.id.to_string()) {
                    // RFC 9207 §4: the issuer identifies the IdP, so two providers may not share it.
                    self.push(line, format!("providers \"{other}\" and \"{}\" have the same issuer {}; each provider needs its own issuer", p.id, p.issuer));
                }
                out.push(p);
            }
        }
        if raws.is_empty() {
            self.push(
                0,
                "no [[provider]] is configured; add at least one (see config/example.toml)".into(),
            );
        }
        out
    }

    fn secret(&mut self, p: &RawProvider, id: &ProviderId, line: usize) -> Option<Secret> {
        match (&p.client_secret_env, &p.client_secret_file) {
            (Some(_), Some(f)) => {
                self.err(
                    f,
                    format!(
                        "provider \"{id}\": set client_secret_env or client_secret_file, not both"
                    ),
                );
                None
            }
            (Some(env), None) => match std::env::var(env.get_ref()) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    self.err(env, format!("provider \"{id}\": the environment variable {} is not set or empty; export the client secret in it", env.get_ref()));
                    None
                }
            },
            (None, Some(file)) => {
                let path = self
                    .file
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(file.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
                    Ok(_) => {
                        self.err(
                            file,
                            format!(
                                "provider \"{id}\": the secret file {} is empty",
                                path.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.err(
                            file,
                            format!(
                                "provider \"{id}\": cannot read the secret file {}: {e}",
                                path.display()
                            ),
                        );
                        None
                    }
                }
            }
            (None, None) => {
                self.push(line, format!("provider \"{id}\": no client secret; set client_secret_env = \"VAR\" or client_secret_file = \"path\" (secrets never go in this file)"));
                None
            }
        }
    }

    fn provider(
        &mut self,
        p: &RawProvider,
        id: ProviderId,
        kind: ProviderKind,
        line: usize,
        public_url: Option<&Url>,
        server: Option<&ServerConfig>,
    ) -> Option<ProviderConfig> {
        let before = self.errors.len();
        let (issuer, client_id, client_secret) = if kind == ProviderKind::Demo {
            if server.is_some_and(|s| !s.demo) {
                self.push(line, format!("provider \"{id}\" is a demo IdP, which signs in anyone; set demo = true under [server] to allow it, or remove the provider"));
            }
            for (key, present) in [
                ("issuer", p.issuer.is_some()),
                ("client_id", p.client_id.is_some()),
                ("client_secret_env", p.client_secret_env.is_some()),
                ("client_secret_file", p.client_secret_file.is_some()),
            ] {
                if present {
                    self.push(
                        line,
                        format!("provider \"{id}\": a demo provider takes no {key}; remove it"),
                    );
                }
            }
            let issuer = public_url
                .map(|u| format!("{}/demo-idp", u.as_str().trim_end_matches('/')))
                .unwrap_or_default();
            (issuer, format!("teamgate-{id}"), None)
        } else {
            let issuer = match &p.issuer {
                None => {
                    self.push(line, format!("provider \"{id}\": issuer is missing; write the IdP's issuer URL (e.g. https://login.microsoftonline.com/<tenant-id>/v2.0)"));
                    None
                }
                Some(i) => self.parse_with(i, "provider.issuer", |s| {
                    let url = Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
                    if url.scheme() != "https" && !is_loopback_host(&url) {
                        return Err(format!("\"{s}\" must be https"));
                    }
                    // Compared as a plain string with the discovery document (RFC 9207 §2.4).
                    Ok(s.to_owned())
                }),
            };
            let client_id = match &p.client_id {
                Some(c) if !c.get_ref().trim().is_empty() => Some(c.get_ref().clone()),
                Some(c) => {
                    self.err(c, format!("provider \"{id}\": client_id is empty"));
                    None
                }
                None => {
                    self.push(line, format!("provider \"{id}\": client_id is missing; copy it from the app registration"));
                    None
                }
            };
            let secret = self.secret(p, &id, line);
            (
                issuer.unwrap_or_default(),
                client_id.unwrap_or_default(),
                secret,
            )
        };
        let group_key = match p.group_key.as_ref().map(|g| (g, g.get_ref().as_str())) {
            None => match kind {
                ProviderKind::Okta => GroupKey::Name,
                _ => GroupKey::Id,
            },
            Some((_, "id")) => GroupKey::Id,
            Some((_, "name")) => GroupKey::Name,
            Some((g, other)) => {
                self.err(g, format!("provider \"{id}\": group_key \"{other}\" is unknown; use \"id\" or \"name\""));
                GroupKey::Id
            }
        };
        let groups_claim = p
            .groups_claim
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_else(|| "groups".into());
        if (groups_claim.is_empty() || groups_claim.split('.').any(str::is_empty))
            && let Some(c) = &p.groups_claim
        {
            self.err(c, format!("provider \"{id}\": groups_claim \"{groups_claim}\" is not a claim name or dotted path"));
        }
        let graph_url = match &p.graph_url {
            None => Url::parse("https://graph.microsoft.com").ok(),
            Some(g) => self.parse_with(g, "provider.graph_url", |s| {
                Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))
            }),
        };
        let on_group_failure = match p
            .on_group_failure
            .as_ref()
            .map(|g| (g, g.get_ref().as_str()))
        {
            None | Some((_, "keep")) => GroupFailure::Keep,
            Some((_, "refuse")) => GroupFailure::Refuse,
            Some((g, other)) => {
                self.err(g, format!("provider \"{id}\": on_group_failure \"{other}\" is unknown; use \"keep\" or \"refuse\""));
                GroupFailure::Keep
            }
        };
        let groups_cache = match &p.groups_cache_seconds {
            None => Some(300),
            Some(v) => self.positive(v, "provider.groups_cache_seconds"),
        };
        let refresh_interval = match &p.refresh_interval_seconds {
            None => None,
            Some(v) => self
                .positive(v, "provider.refresh_interval_seconds")
                .map(Duration::from_secs),
        };
        let okta_api_token = p.okta_api_token_env.as_ref().and_then(|env| match std::env::var(env.get_ref()) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                self.err(env, format!("provider \"{id}\": the environment variable {} (okta_api_token_env) is not set", env.get_ref()));
                None
            }
        });
        let okta_api_token = match (&p.okta_api_token_env, &p.okta_api_token_file) {
            (Some(_), Some(f)) => {
                self.err(
                    f,
                    format!(
                        "provider \"{id}\": set okta_api_token_env or okta_api_token_file, not both"
                    ),
                );
                None
            }
            (None, Some(file)) => {
                let path = self
                    .file
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(file.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
                    _ => {
                        self.err(file, format!("provider \"{id}\": cannot read the Okta API token from {} (okta_api_token_file), or it is empty", path.display()));
                        None
                    }
                }
            }
            _ => okta_api_token,
        };
        let mut domains = Vec::new();
        for d in &p.allowed_email_domains {
            let dom = d.get_ref().trim().trim_start_matches('@').to_lowercase();
            if dom.is_empty() || dom.contains(['/', ' ', '@']) {
                self.err(
                    d,
                    format!(
                        "provider \"{id}\": \"{}\" is not a domain; write e.g. \"example.com\"",
                        d.get_ref()
                    ),
                );
            } else {
                domains.push(dom);
            }
        }
        let allowed_tenants: Vec<String> = p
            .allowed_tenants
            .iter()
            .map(|t| t.get_ref().to_lowercase())
            .collect();
        // Entra multi-tenant (IdP quirk E9): tokens of any tenant verify against the templated
        // issuer, so the tenants to admit must be listed, as GUIDs.
        let multi_tenant = kind == ProviderKind::Entra
            && p.tenant.as_ref().is_some_and(|t| {
                matches!(
                    t.get_ref().to_lowercase().as_str(),
                    "organizations" | "common"
                )
            });
        if multi_tenant && allowed_tenants.is_empty() {
            self.push(line, format!("provider \"{id}\": a multi-tenant Entra provider (tenant = \"organizations\" or \"common\") needs allowed_tenants = [\"<tenant-id>\", ...]"));
        }
        if multi_tenant
            && !issuer.split('/').any(|s| {
                s.eq_ignore_ascii_case("organizations") || s.eq_ignore_ascii_case("common")
            })
        {
            self.push(line, format!("provider \"{id}\": with tenant = \"organizations\" or \"common\" the issuer must be the matching endpoint, e.g. https://login.microsoftonline.com/organizations/v2.0"));
        }
        for t in &p.allowed_tenants {
            if !crate::domain::ids::is_guid(t.get_ref()) {
                self.err(t, format!("provider \"{id}\": allowed_tenants: \"{}\" is not a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)", t.get_ref()));
            } else if !multi_tenant {
                self.err(t, format!("provider \"{id}\": allowed_tenants applies only to kind = \"entra\" with tenant = \"organizations\" or \"common\""));
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(ProviderConfig {
            display_name: p
                .display_name
                .clone()
                .unwrap_or_else(|| default_display_name(kind, &id)),
            id,
            kind,
            issuer,
            client_id,
            client_secret,
            groups_claim,
            groups_claim_field: p.groups_claim_field.as_ref().map(|f| f.get_ref().clone()),
            groups_prefix: p.groups_prefix.clone(),
            group_key,
            groups_from_userinfo: p.groups_from_userinfo,
            extra_scopes: p.extra_scopes.clone(),
            allowed_email_domains: domains,
            graph_url: graph_url?,
            tenant: p.tenant.as_ref().map(|t| t.get_ref().clone()),
            allowed_tenants,
            on_group_failure,
            groups_cache: Duration::from_secs(groups_cache?),
            refresh_interval,
            okta_api_token,
            match_by_email: p.match_by_email,
            scim_enabled: p.scim.enabled,
            line,
        })
    }

    fn teams(
        &mut self,
        raws: &[S<raw::RawTeam>],
        known_roles: &BTreeSet<Role>,
        providers: &BTreeMap<ProviderId, GroupKey>,
    ) -> Vec<TeamConfig> {
        let mut out: Vec<TeamConfig> = Vec::new();
        for st in raws {
            let line = self.line_of(&st.span());
            let t = st.get_ref();
            let Some(id) = self.parse_with(&t.id, "team.id", TeamId::parse) else {
                continue;
            };
            if out.iter().any(|o| o.id == id) {
                self.err(&t.id, format!("team id \"{id}\" is declared twice; merge the two [[team]] blocks or rename one"));
                continue;
            }
            let mut roles = Vec::new();
            for b in &t.roles {
                let b = b.get_ref();
                let scope = self.parse_with(&b.scope, "team.roles.scope", Scope::parse);
                let role = self.parse_with(&b.role, "team.roles.role", Role::parse);
                if let Some(role) = &role
                    && !known_roles.contains(role)
                {
                    self.err(&b.role, format!("team \"{id}\": role \"{role}\" is not a built-in role; fix the spelling or declare it in custom_roles = [...] at the top of the file"));
                    continue;
                }
                if let (Some(scope), Some(role)) = (scope, role) {
                    roles.push(RoleBinding { scope, role });
                }
            }
            let mut groups = Vec::new();
            for g in &t.groups {
                let g = g.get_ref();
                let Some(provider) =
                    self.parse_with(&g.provider, "team.groups.provider", ProviderId::parse)
                else {
                    continue;
                };
                let Some(key) = providers.get(&provider) else {
                    self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" is not configured; add a [[provider]] with that id or fix the name"));
                    continue;
                };
                let value = match (key, &g.id, &g.name) {
                    (GroupKey::Id, Some(v), None) | (GroupKey::Name, None, Some(v)) => v,
                    (GroupKey::Id, _, _) => {
                        self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" matches groups by id; write {{ provider = \"{provider}\", id = \"...\" }}"));
                        continue;
                    }
                    (GroupKey::Name, _, _) => {
                        self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" matches groups by name; write {{ provider = \"{provider}\", name = \"...\" }}"));
                        continue;
                    }
                };
                if value.get_ref().trim().is_empty() {
                    self.err(value, format!("team \"{id}\": the group is empty"));
                    continue;
                }
                groups.push((provider, value.get_ref().trim().to_owned()));
            }
            let mut members = Vec::new();
            for m in &t.members {
                match normalise_email(m.get_ref()) {
                    Some(e) => members.push(e),
                    None => self.err(
                        m,
                        format!(
                            "team \"{id}\": member \"{}\" is not an email address",
                            m.get_ref()
                        ),
                    ),
                }
            }
            out.push(TeamConfig {
                name: t.name.clone().unwrap_or_else(|| id.to_string()),
                id,
                roles,
                groups,
                members,
                line,
            });
        }
        out
    }

    fn defaults(&mut self, d: &raw::RawDefaults, teams: &BTreeSet<TeamId>) -> DefaultsConfig {
        let mut out = DefaultsConfig {
            refuse_without_teams: d.refuse_without_teams.unwrap_or(true),
            ..DefaultsConfig::default()
        };
        for t in &d.teams_without_groups {
            if let Some(id) = self.parse_with(t, "defaults.teams_without_groups", TeamId::parse) {
                if teams.contains(&id) {
                    out.teams_without_groups.push(id);
                } else {
                    self.err(t, format!("defaults.teams_without_groups names team \"{id}\", which is not declared; add a [[team]] with that id"));
                }
            }
        }
        for u in &d.locked_users {
            match normalise_email(u.get_ref()) {
                Some(e) => {
                    out.locked_users.insert(e);
                }
                None => self.err(
                    u,
                    format!(
                        "defaults.locked_users: \"{}\" is not an email address",
                        u.get_ref()
                    ),
                ),
            }
        }
        out
    }

    fn demo_users(
        &mut self,
        raws: &[S<raw::RawDemoUser>],
        providers: &[ProviderConfig],
    ) -> Vec<DemoUser> {
        let mut out: Vec<DemoUser> = Vec::new();
        for u in raws {
            let r = u.get_ref();
            match normalise_email(r.email.get_ref()) {
                Some(email) if out.iter().any(|o| o.email == email) => {
                    self.err(&r.email, format!("demo user {email} is listed twice"));
                }
                Some(email) => out.push(DemoUser {
                    email,
                    name: r.name.clone(),
                    groups: r.groups.clone(),
                }),
                None => self.err(
                    &r.email,
                    format!(
                        "demo_user: \"{}\" is not an email address",
                        r.email.get_ref()
                    ),
                ),
            }
        }
        if providers.iter().any(|p| p.kind == ProviderKind::Demo) && out.is_empty() {
            self.push(
                0,
                "a demo provider is configured but no [[demo_user]]; add at least one".into(),
            );
        }
        out
    }

    fn forward_auth(
        &mut self,
        f: &raw::RawForwardAuth,
        public_url: Option<&Url>,
    ) -> ForwardAuthConfig {
        let mut headers: BTreeMap<String, String> = HEADER_KEYS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (key, value) in &f.headers {
            if !headers.contains_key(key) {
                self.err(value, format!("forward_auth.headers: \"{key}\" is unknown; use user, email, name, teams, roles or assertion"));
            } else if http::HeaderName::from_bytes(value.get_ref().as_bytes()).is_err() {
                self.err(
                    value,
                    format!(
                        "forward_auth.headers.{key}: \"{}\" is not a valid header name",
                        value.get_ref()
                    ),
                );
            } else {
                headers.insert(key.clone(), value.get_ref().clone());
            }
        }
        let ttl = match &f.assertion_ttl_seconds {
            None => 120,
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) if (10..=300).contains(&n) => n,
                _ => {
                    self.err(v, "forward_auth.assertion_ttl_seconds must be 10 to 300 (RFC 8725: keep assertions short-lived)".into());
                    120
                }
            },
        };
        ForwardAuthConfig {
            headers,
            assertion_audience: f
                .assertion_audience
                .clone()
                .or_else(|| public_url.map(|u| u.as_str().trim_end_matches('/').to_owned()))
                .unwrap_or_default(),
            assertion_ttl: Duration::from_secs(ttl),
        }
    }

    fn admin(&mut self, a: &raw::RawAdmin, known_roles: &BTreeSet<Role>) -> Option<AdminConfig> {
        let role = match &a.role {
            None => Role::parse("owner").ok(),
            Some(r) => {
                let role = self.parse_with(r, "admin.role", Role::parse);
                if role
                    .as_ref()
                    .is_some_and(|role| !known_roles.contains(role))
                {
                    self.err(
                        r,
                        format!("admin.role \"{}\" is not a known role", r.get_ref()),
                    );
                }
                role
            }
        };
        let scope = match &a.scope {
            None => None,
            Some(s) => Some(self.parse_with(s, "admin.scope", Scope::parse)?),
        };
        Some(AdminConfig { role: role?, scope })
    }
}

fn default_display_name(kind: ProviderKind, id: &ProviderId) -> String {
    match kind {
        ProviderKind::Entra => "Microsoft Entra ID".into(),
        ProviderKind::Okta => "Okta".into(),
        ProviderKind::Demo => "Demo identity provider".into(),
        ProviderKind::Oidc => id.to_string(),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_origin(s: &str) -> Result<url::Origin, String> {
    let url = Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "\"{s}\" must be an http(s) origin such as https://app.example.com"
        ));
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(format!(
            "\"{s}\" must be an origin only (scheme://host[:port]), without path or user"
        ));
    }
    Ok(url.origin())
}

/// The key a value at byte `pos` is assigned to, when `key =` precedes it on its line.
fn key_before(text: &str, pos: usize) -> Option<&str> {
    let before = text.get(..pos)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let lhs = line[..line.rfind('=')?].trim_end();
    let start = lhs
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map_or(0, |i| i + 1);
    Some(&lhs[start..]).filter(|k| !k.is_empty())
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
