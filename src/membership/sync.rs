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

/// Copy the config's teams, bindings and mappings into the store and reconcile every user.
/// With `live` (a reload of a running server), `config` becomes the config in force inside
/// the same write job, before any later job runs (see [`LiveConfig`]); if the commit then
/// fails, the previous config is put back, before any later job either.
pub async fn sync_config(
    store: &Store,
    clock: &Clock,
    config: Config,
    live: Option<&Arc<LiveConfig>>,
) -> Result<SyncReport, StoreError> {
    let config = Arc::new(config);
    let trigger = Trigger::new(
        TriggerKind::Config,
        None,
        Some(format!("config {}", config.path.display())),
    );
    let swap = live.cloned();
    let clock = clock.clone();
    let job = move |tx: &dyn WriteTx| {
        let now = clock.stamp();
        let report = sync_tables(tx, &config, &trigger, &now)?;
        // Same transaction: `teamgate plan` compares a new file with exactly this.
        applied::save(tx, &config.path.display().to_string(), config.view(), &now)?;
        if let Some(live) = &swap {
            live.set(config.clone());
        }
        Ok(report)
    };
    match live {
        // Exclusive: no other write of any replica runs while the config in force changes.
        None => store.write_with(WriteMode::Exclusive, job).await,
        Some(live) => {
            let (live, previous) = (live.clone(), live.get());
            store
                .write_undoable(
                    WriteMode::Exclusive,
                    job,
                    Box::new(move || live.set(previous)),
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
