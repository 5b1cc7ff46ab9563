//! Validation of the whole file: the [`Validator`] that records every problem with its line,
//! the order the sections are checked in (later sections refer to earlier ones: teams to
//! providers and roles, defaults to teams), and the checks one module per section:
//! [`server`], [`roles`] (`custom_roles`, `[[role]]`), [`providers`], [`teams`] (with
//! `[defaults]`), [`sections`] (demo users, forward-auth, admin).

mod clients;
mod providers;
mod roles;
mod sections;
pub(super) mod server;
mod teams;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use url::Url;

use super::raw::{RawConfig, S};
use super::{Config, ConfigError, ConfigErrors, ProviderKind};
use crate::domain::plan::ConfigView;
use crate::domain::reconcile::Policy;
use crate::domain::secret::Secret;
use crate::domain::{ProviderId, TeamId};

/// Read `text` (as if from `path`) into a [`Config`], or every problem it has.
pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
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

pub(super) struct Validator<'a> {
    file: PathBuf,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        if span.start == 0 && span.end == 0 {
            return 0;
        }
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    pub(super) fn push(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            message,
        });
    }

    /// `path` as written, or resolved beside the config file when relative (`..` taken off
    /// lexically, so `config/../data/x.db` reads `data/x.db`).
    pub(super) fn beside_file(&self, path: &str) -> PathBuf {
        use std::path::Component;
        let joined = self.file.parent().unwrap_or(Path::new(".")).join(path);
        let mut out = PathBuf::new();
        for part in joined.components() {
            match part {
                Component::ParentDir
                    if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
                {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        if out.as_os_str().is_empty() {
            out.push(".");
        }
        out
    }

    pub(super) fn err<T>(&mut self, at: &S<T>, message: String) {
        let line = self.line_of(&at.span());
        self.push(line, message);
    }

    /// Parse a spanned string with `f`; on failure record the error at its line.
    pub(super) fn parse_with<T, E: fmt::Display>(
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

    pub(super) fn positive(&mut self, value: &S<i64>, key: &str) -> Option<u64> {
        match u64::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.err(value, format!("{key} must be a whole number above 0"));
                None
            }
        }
    }

    /// A whole number of seconds within `range`.
    pub(super) fn seconds_in(
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
        let (known_roles, role_hierarchy) = self.roles(&raw.custom_roles, &raw.roles);
        let server = self.server(raw.server.get_ref());
        let public_url = server.as_ref().map(|s| s.public_url.clone());
        let providers = self.providers(&raw.providers, server.as_ref());
        if let Some(server) = &server
            && server.database.is_postgres()
            && server.secret_key.is_none()
        {
            for p in providers.iter().filter(|p| p.refresh_interval.is_some()) {
                self.push(p.line, format!("provider \"{}\": refresh_interval_seconds on a PostgreSQL database needs server.secret_key_file or server.secret_key_env: replicas share the refresh tokens, encrypted with that key", p.id));
            }
        }
        let provider_kinds: BTreeMap<ProviderId, teams::MappedProvider> = providers
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    teams::MappedProvider {
                        key: p.group_key,
                        tenants: p.is_multi_tenant().then(|| p.allowed_tenants.clone()),
                    },
                )
            })
            .collect();
        let teams = self.teams(&raw.teams, &known_roles, &provider_kinds);
        let team_ids: BTreeSet<TeamId> = teams.iter().map(|t| t.id.clone()).collect();
        let defaults = self.defaults(&raw.defaults, &team_ids);
        let demo_users = self.demo_users(&raw.demo_users, &providers);
        let forward_auth = self.forward_auth(&raw.forward_auth, public_url.as_ref());
        let admin = self.admin(&raw.admin, &known_roles);
        let clients = self.clients(&raw.clients, &team_ids, &forward_auth.assertion_audience);
        Some(
            Config {
                path: self.file.clone(),
                server: server?,
                providers,
                teams,
                defaults,
                demo_users,
                known_roles,
                role_hierarchy,
                forward_auth,
                admin: admin?,
                clients,
                source: super::Source::of(self.text),
                view: ConfigView::default(),
                policy: Policy::default(),
            }
            .with_view(),
        )
    }
}

/// Where one secret may come from: an environment variable or a file (beside the config file
/// when relative), never the config file itself. `env_key`/`file_key` are the keys as the
/// admin writes them, `owner` prefixes them in messages (`provider "entra": `, `server.`),
/// `what` says what the secret is.
pub(super) struct SecretKeys<'r> {
    pub env: Option<&'r S<String>>,
    pub file: Option<&'r S<String>>,
    pub env_key: &'static str,
    pub file_key: &'static str,
    pub owner: String,
    pub what: &'static str,
}

impl Validator<'_> {
    /// Read a secret from where `keys` says; `None` (with the problem recorded) when it cannot
    /// be read, and `None` without a problem when neither key is set (the caller decides
    /// whether the secret is required). Values are trimmed; an empty one is an error.
    pub(super) fn secret_from(&mut self, keys: SecretKeys<'_>) -> Option<Secret> {
        let SecretKeys {
            env,
            file,
            env_key,
            file_key,
            owner,
            what,
        } = keys;
        match (env, file) {
            (None, None) => None,
            (Some(_), Some(f)) => {
                self.err(f, format!("{owner}set {env_key} or {file_key}, not both"));
                None
            }
            (Some(env), None) => match std::env::var(env.get_ref()) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
                _ => {
                    self.err(
                        env,
                        format!(
                            "{owner}{env_key}: the environment variable {} is not set or empty; export {what} in it",
                            env.get_ref()
                        ),
                    );
                    None
                }
            },
            (None, Some(file)) => {
                let path = self.beside_file(file.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
                    Ok(_) => {
                        self.err(
                            file,
                            format!(
                                "{owner}{file_key}: the secret file {} is empty; put {what} in it",
                                path.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.err(
                            file,
                            format!(
                                "{owner}{file_key}: cannot read the secret file {}: {e}",
                                path.display()
                            ),
                        );
                        None
                    }
                }
            }
        }
    }
}

pub(super) fn default_display_name(kind: ProviderKind, id: &ProviderId) -> String {
    match kind {
        ProviderKind::Entra => "Microsoft Entra ID".into(),
        ProviderKind::Okta => "Okta".into(),
        ProviderKind::Demo => "Demo identity provider".into(),
        ProviderKind::Oidc => id.to_string(),
    }
}

pub(super) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        // RFC 6761 §6.3: every name under localhost is the loopback host.
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn parse_origin(s: &str) -> Result<url::Origin, String> {
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
