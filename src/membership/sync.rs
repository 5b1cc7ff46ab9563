//! Config sync: make the stored teams, role bindings and mappings equal to the config file,
//! reconcile every user (a mapping change takes effect for everyone at once), and record the
//! applied config, all in one transaction. Runs at start and on every reload.

use std::sync::Arc;

use serde::Serialize;

use super::reconcile;
use crate::config::{Config, LiveConfig};
use crate::domain::Clock;
use crate::domain::reconcile::MappingTable;
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::memberships::ConfigTables;
use crate::store::{Store, StoreError, WriteMode, WriteTx, applied};

/// What a config sync changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub teams_added: Vec<String>,
    pub teams_removed: Vec<String>,
    pub teams_renamed: Vec<String>,
    pub users_changed: usize,
}

/// What a sync applied.
#[derive(Debug, Clone)]
pub struct Synced {
    pub report: SyncReport,
    /// The config applied (this process's file, or at start on a shared database the applied
    /// config stored by another replica).
    pub config: Arc<Config>,
    /// Its applied version (see `store::applied::save_text`).
    pub version: u64,
    /// Set when the config applied is not this process's own file: why.
    pub file_differs: Option<String>,
}

/// Copy the config's teams, bindings and mappings into the store, reconcile every user, and
/// record it as the applied config (text, digest, version). With `live` (a reload of a
/// running server), `config` becomes the config in force inside the same write job, before
/// any later job runs (see [`LiveConfig`]); if the commit then fails, the previous config is
/// put back, before any later job either. The job runs alone across every process on the
/// database ([`WriteMode::Exclusive`]).
pub async fn sync_config(
    store: &Store,
    clock: &Clock,
    config: Config,
    live: Option<&Arc<LiveConfig>>,
) -> Result<SyncReport, StoreError> {
    sync(store, clock, config, live, false)
        .await
        .map(|s| s.report)
}

/// The config sync at start. `follow_applied` (a database shared by replicas): when another
/// replica applied a config other than this file, that one is synced and served, and
/// [`Synced::file_differs`] says so; otherwise (one process on its own file) the file wins.
/// Decided and applied in one exclusive job, so replicas starting together agree.
pub async fn sync_at_start(
    store: &Store,
    clock: &Clock,
    config: Config,
    follow_applied: bool,
) -> Result<Synced, StoreError> {
    sync(store, clock, config, None, follow_applied).await
}

async fn sync(
    store: &Store,
    clock: &Clock,
    config: Config,
    live: Option<&Arc<LiveConfig>>,
    follow_applied: bool,
) -> Result<Synced, StoreError> {
    let own = Arc::new(config);
    let swap = live.cloned();
    let clock = clock.clone();
    let job = move |tx: &dyn WriteTx| {
        let now = clock.stamp();
        let mut file_differs = None;
        let mut config = own.clone();
        if follow_applied
            && let Some(stored) = applied::load_text(tx)?
            && stored.sha256 != own.source.sha256
        {
            let parsed = Config::parse(&stored.text, &own.path).map_err(|e| {
                StoreError::Corrupt(format!(
                    "the config applied to this database (version {}, sha256 {}) is invalid on this replica: {e}",
                    stored.version,
                    &stored.sha256[..12.min(stored.sha256.len())]
                ))
            })?;
            if parsed.server.database != own.server.database {
                // Applied where the data was before (`teamgate migrate-db`): this file, which
                // names this database, becomes the applied config.
                tracing::warn!(
                    previous = %parsed.server.database.describe(),
                    "the applied config names another database; applying this replica's file"
                );
            } else {
                file_differs = Some(format!(
                    "this replica's config file {} (sha256 {}) differs from the applied config version {} (sha256 {}, applied at {} from {}); serving the applied one: run `teamgate reload` to apply the file",
                    own.path.display(),
                    own.source.short(),
                    stored.version,
                    &stored.sha256[..12.min(stored.sha256.len())],
                    stored.at,
                    stored.path
                ));
                config = Arc::new(parsed);
            }
        }
        let trigger = Trigger::new(
            TriggerKind::Config,
            None,
            Some(format!("config {}", config.path.display())),
        );
        let report = sync_tables(tx, &config, &trigger, &now)?;
        // Same transaction: `teamgate plan` compares a new file with exactly this, and other
        // replicas switch to exactly this text.
        let path = config.path.display().to_string();
        applied::save(tx, &path, config.view(), &now)?;
        let version = applied::save_text(tx, &config.source, &path, &now)?;
        if let Some(live) = &swap {
            live.set_version(config.clone(), version);
            live.set_own_file(&own.source.sha256);
            live.set_file_differs(None);
        }
        Ok(Synced {
            report,
            config,
            version,
            file_differs,
        })
    };
    match live {
        // Exclusive: no other write of any replica runs while the config in force changes.
        None => store.write_with(WriteMode::Exclusive, job).await,
        Some(live) => {
            let (live, previous, version) = (live.clone(), live.get(), live.version());
            store
                .write_undoable(
                    WriteMode::Exclusive,
                    job,
                    Box::new(move || live.set_version(previous, version)),
                )
                .await
        }
    }
}

/// Make the stored teams, bindings and mappings equal to `config`'s, then reconcile everyone.
pub fn sync_tables(
    tx: &dyn WriteTx,
    config: &Config,
    trigger: &Trigger,
    now: &str,
) -> Result<SyncReport, StoreError> {
    let stored = tx.team_names()?;
    let mut report = SyncReport::default();
    let mut tables = ConfigTables::default();
    for team in &config.teams {
        match stored.get(team.id.as_str()) {
            None => report.teams_added.push(team.id.to_string()),
            Some(name) if name != &team.name => report.teams_renamed.push(team.id.to_string()),
            Some(_) => {}
        }
        tx.upsert_team(team.id.as_str(), &team.name, now)?;
        for b in &team.roles {
            tables
                .bindings
                .push((team.id.to_string(), b.scope.to_string(), b.role.to_string()));
        }
        for (provider, group) in &team.groups {
            tables.mappings.push((
                provider.to_string(),
                MappingTable::normalise(group),
                team.id.to_string(),
            ));
        }
    }
    tx.replace_config_tables(&tables)?;
    // Reconcile before deleting removed teams, so their memberships leave audit rows.
    report.users_changed = reconcile::reconcile_all(tx, config, trigger, now)?;
    for id in stored.keys() {
        if config.teams.iter().all(|t| t.id.as_str() != id) {
            tx.delete_team(id)?;
            report.teams_removed.push(id.clone());
        }
    }
    for (action, ids) in [
        ("team.add", &report.teams_added),
        ("team.remove", &report.teams_removed),
        ("team.rename", &report.teams_renamed),
    ] {
        for id in ids {
            tx.record_audit(
                now,
                trigger,
                &Entry {
                    action,
                    team: Some(id),
                    ..Entry::default()
                },
            )?;
        }
    }
    Ok(report)
}
