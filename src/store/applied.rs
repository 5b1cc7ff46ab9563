//! What the admin tools keep in the settings table, typed: the snapshot of the config last
//! applied (what `teamgate plan` compares a new file with), the outcome of the last reload
//! (what `teamgate reload` waits for), and the marker `/readyz` writes to prove the database
//! takes writes. Built on the settings operations, so every backend has them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::port::{ReadTx, WriteTx};
use crate::domain::plan::{ClientDecl, ConfigView, Mapping, TeamDecl};
use crate::domain::roles::{RoleBinding, RoleHierarchy};
use crate::domain::{ProviderId, Role, Scope, TeamId};

/// Settings key of the snapshot of the config last applied (written by every config sync).
const APPLIED_KEY: &str = "admin.applied_config";
/// Settings key of the outcome of the last reload, read back by `teamgate reload`.
const RELOAD_KEY: &str = "admin.last_reload";
/// Settings key `/readyz` writes to prove the database takes writes.
const READY_KEY: &str = "admin.readyz";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The snapshot as stored: plain strings, so the domain types need no `Deserialize`.
#[derive(Serialize, Deserialize)]
struct StoredView {
    path: String,
    at: String,
    teams: Vec<StoredTeam>,
    /// (provider, group, team)
    mappings: Vec<(String, String, String)>,
    default_teams: Vec<String>,
    locked_users: Vec<String>,
    /// (role, roles it includes directly); absent in snapshots from before `[[role]]`, which
    /// then read as the built-in order.
    #[serde(default)]
    role_includes: Option<Vec<(String, Vec<String>)>>,
    /// Absent in snapshots written before OpenID clients existed.
    #[serde(default)]
    clients: Vec<StoredClient>,
}

#[derive(Serialize, Deserialize)]
struct StoredClient {
    id: String,
    name: String,
    public: bool,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    allowed_teams: Vec<String>,
    claims: Vec<String>,
    id_token_alg: String,
}

#[derive(Serialize, Deserialize)]
struct StoredTeam {
    id: String,
    name: String,
    #[serde(default)]
    scope: Option<String>,
    /// (scope, role)
    roles: Vec<(String, String)>,
    members: Vec<String>,
}

/// The config last applied to this database, as far as reconcile and roles are concerned.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The file it was read from.
    pub path: String,
    pub at: String,
    pub view: ConfigView,
}

/// Record `view` (read from `path`) as the applied config. Called inside the config sync's
/// transaction, so the snapshot and the synced tables never disagree.
pub fn save(tx: &dyn WriteTx, path: &str, view: &ConfigView, now: &str) -> Result<()> {
    let stored = StoredView {
        path: path.to_owned(),
        at: now.to_owned(),
        teams: view
            .teams
            .iter()
            .map(|(id, t)| StoredTeam {
                id: id.to_string(),
                name: t.name.clone(),
                scope: t.scope.as_ref().map(ToString::to_string),
                roles: t
                    .roles
                    .iter()
                    .map(|b| (b.scope.to_string(), b.role.to_string()))
                    .collect(),
                members: t.members.iter().cloned().collect(),
            })
            .collect(),
        mappings: view
            .mappings
            .iter()
            .map(|m| (m.provider.to_string(), m.group.clone(), m.team.to_string()))
            .collect(),
        default_teams: view
            .teams_without_groups
            .iter()
            .map(ToString::to_string)
            .collect(),
        locked_users: view.locked_users.iter().cloned().collect(),
        role_includes: Some(
            view.hierarchy
                .direct()
                .iter()
                .map(|(r, inc)| (r.to_string(), inc.iter().map(ToString::to_string).collect()))
                .collect(),
        ),
        clients: view
            .clients
            .iter()
            .map(|(id, c)| StoredClient {
                id: id.clone(),
                name: c.name.clone(),
                public: c.public,
                redirect_uris: c.redirect_uris.clone(),
                post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                allowed_teams: c.allowed_teams.iter().map(ToString::to_string).collect(),
                claims: c.claims.clone(),
                id_token_alg: c.id_token_alg.clone(),
            })
            .collect(),
    };
    tx.set_setting(APPLIED_KEY, &serde_json::to_string(&stored)?)
}

/// The applied-config snapshot; `None` for a database no sync has written one to yet.
pub fn load(tx: &dyn ReadTx) -> Result<Option<Applied>> {
    let Some(json) = tx.setting(APPLIED_KEY)? else {
        return Ok(None);
    };
    let s: StoredView = serde_json::from_str(&json)?;
    let team = |t: &str| TeamId::parse(t).map_err(|e| corrupt("applied config", e));
    let mut view = ConfigView::default();
    for t in &s.teams {
        let mut roles = BTreeSet::new();
        for (scope, role) in &t.roles {
            roles.insert(RoleBinding {
                scope: Scope::parse(scope).map_err(|e| corrupt("applied config", e))?,
                role: Role::parse(role).map_err(|e| corrupt("applied config", e))?,
            });
        }
        view.teams.insert(
            team(&t.id)?,
            TeamDecl {
                name: t.name.clone(),
                scope: t
                    .scope
                    .as_deref()
                    .map(Scope::parse)
                    .transpose()
                    .map_err(|e| corrupt("applied config", e))?,
                roles,
                members: t.members.iter().cloned().collect(),
            },
        );
    }
    for (provider, group, t) in &s.mappings {
        let provider = ProviderId::parse(provider).map_err(|e| corrupt("applied config", e))?;
        view.mappings
            .insert(Mapping::new(provider, group, team(t)?));
    }
    view.teams_without_groups = s
        .default_teams
        .iter()
        .map(|t| team(t))
        .collect::<Result<_>>()?;
    view.locked_users = s.locked_users.into_iter().collect();
    if let Some(includes) = &s.role_includes {
        let role = |r: &str| Role::parse(r).map_err(|e| corrupt("applied config", e));
        let mut hierarchy = RoleHierarchy::empty();
        for (r, inc) in includes {
            hierarchy.declare(
                role(r)?,
                inc.iter().map(|i| role(i)).collect::<Result<Vec<_>>>()?,
            );
        }
        view.hierarchy = hierarchy;
    }
    for c in s.clients {
        view.clients.insert(
            c.id,
            ClientDecl {
                name: c.name,
                public: c.public,
                redirect_uris: c.redirect_uris,
                post_logout_redirect_uris: c.post_logout_redirect_uris,
                allowed_teams: c
                    .allowed_teams
                    .iter()
                    .map(|t| team(t))
                    .collect::<Result<_>>()?,
                claims: c.claims,
                id_token_alg: c.id_token_alg,
            },
        );
    }
    Ok(Some(Applied {
        path: s.path,
        at: s.at,
        view,
    }))
}

/// What the `teams`, `role_bindings` and `mappings` tables hold: the applied config minus
/// members, defaults and locks (which only the snapshot keeps). For databases without one.
pub fn view_from_tables(tx: &dyn ReadTx) -> Result<ConfigView> {
    let mut view = ConfigView::default();
    let team = |t: &str| TeamId::parse(t).map_err(|e| corrupt("teams table", e));
    for (id, name) in tx.team_names()? {
        view.teams.insert(
            team(&id)?,
            TeamDecl {
                name,
                ..TeamDecl::default()
            },
        );
    }
    let tables = tx.config_tables()?;
    for (id, scope, role) in &tables.bindings {
        if let Some(t) = view.teams.get_mut(&team(id)?) {
            t.roles.insert(RoleBinding {
                scope: Scope::parse(scope).map_err(|e| corrupt("role_bindings table", e))?,
                role: Role::parse(role).map_err(|e| corrupt("role_bindings table", e))?,
            });
        }
    }
    for (provider, group, id) in &tables.mappings {
        let provider = ProviderId::parse(provider).map_err(|e| corrupt("mappings table", e))?;
        view.mappings
            .insert(Mapping::new(provider, group, team(id)?));
    }
    Ok(view)
}

/// The outcome of one reload, as `teamgate reload` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Increases with every reload attempt of this database.
    pub seq: i64,
    pub at: String,
    pub ok: bool,
    /// The config errors or the failure, one per line; a summary when applied.
    pub message: String,
}

/// Record a reload outcome with the next sequence number; returns it.
pub fn record_reload(tx: &dyn WriteTx, ok: bool, message: &str, now: &str) -> Result<ReloadStatus> {
    let seq = last_reload(tx)?.map_or(1, |s| s.seq + 1);
    let status = ReloadStatus {
        seq,
        at: now.to_owned(),
        ok,
        message: message.to_owned(),
    };
    tx.set_setting(RELOAD_KEY, &serde_json::to_string(&status)?)?;
    Ok(status)
}

pub fn last_reload(tx: &dyn ReadTx) -> Result<Option<ReloadStatus>> {
    tx.setting(RELOAD_KEY)?
        .map(|s| serde_json::from_str(&s).map_err(StoreError::from))
        .transpose()
}

/// A cheap write for `/readyz`: proves the database takes writes and the writer is alive.
pub fn touch_ready(tx: &dyn WriteTx, now: &str) -> Result<()> {
    tx.set_setting(READY_KEY, now)
}

/// Settings key of the applied config's text, digest and version.
const TEXT_KEY: &str = "config.applied";
/// Settings key of the applied config's version alone (read by every PostgreSQL write job).
pub const VERSION_KEY: &str = "config.version";

/// The config applied to this database: its text, so every replica runs the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedText {
    /// Increases with every change of the applied text.
    pub version: u64,
    pub sha256: String,
    /// The file it was read from, on the replica that applied it.
    pub path: String,
    pub at: String,
    pub text: String,
}

pub fn load_text(tx: &dyn ReadTx) -> Result<Option<AppliedText>> {
    tx.setting(TEXT_KEY)?
        .map(|s| serde_json::from_str(&s).map_err(StoreError::from))
        .transpose()
}

/// The stored version alone (0 when none was stored).
pub fn load_version(tx: &dyn ReadTx) -> Result<u64> {
    Ok(tx
        .setting(VERSION_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Record `source` (read from `path`) as the applied config: the same version when its text is
/// what is stored already, the next one otherwise. Returns the version.
pub fn save_text(
    tx: &dyn WriteTx,
    source: &crate::config::Source,
    path: &str,
    now: &str,
) -> Result<u64> {
    let stored = load_text(tx)?;
    let version = match &stored {
        Some(s) if s.sha256 == source.sha256 => return Ok(s.version),
        Some(s) => s.version + 1,
        None => 1,
    };
    let text = AppliedText {
        version,
        sha256: source.sha256.clone(),
        path: path.to_owned(),
        at: now.to_owned(),
        text: source.text.to_string(),
    };
    tx.set_setting(TEXT_KEY, &serde_json::to_string(&text)?)?;
    tx.set_setting(VERSION_KEY, &version.to_string())?;
    Ok(version)
}

/// Make the applied config `applied` the one `live` serves, parsed as if it were this
/// replica's own file (secrets are read here). `Err` says why it cannot be.
pub fn follow(
    applied: &AppliedText,
    live: &crate::config::LiveConfig,
) -> std::result::Result<(), String> {
    if applied.version <= live.version() {
        return Ok(());
    }
    let own = live.get();
    // Whatever happens, this version is not tried again (the reason is logged and shown on
    // /admin).
    let refuse = |why: String| {
        live.set_version_number(applied.version);
        why
    };
    let config = crate::config::Config::parse(&applied.text, &own.path).map_err(|e| {
        refuse(format!(
            "the applied config version {} (sha256 {}) is invalid here, this replica keeps the config it has: {e}",
            applied.version,
            &applied.sha256[..12.min(applied.sha256.len())]
        ))
    })?;
    if config.server.database != own.server.database {
        return Err(refuse(format!(
            "the applied config version {} names another database ({}); only a restart can move it",
            applied.version,
            config.server.database.describe()
        )));
    }
    live.note_applied(&applied.sha256);
    live.set_version(std::sync::Arc::new(config), applied.version);
    tracing::info!(
        version = applied.version,
        sha256 = &applied.sha256[..12.min(applied.sha256.len())],
        "switched to the config applied by another replica"
    );
    Ok(())
}
