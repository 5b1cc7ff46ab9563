//! The `teams`, `role_bindings` and `mappings` tables: the config file's declarations, synced
//! into the database at start and on reload, followed by a reconcile of every user so that a
//! mapping change takes effect for everyone at once.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::audit::{self, Entry, Trigger};
use super::error::Result;
use super::memberships;
use crate::config::Config;

/// What a config sync changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub teams_added: Vec<String>,
    pub teams_removed: Vec<String>,
    pub teams_renamed: Vec<String>,
    pub users_changed: usize,
}

/// The stored teams, id → name.
pub fn names(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM teams")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Make the stored teams, bindings and mappings equal to `config`'s, then reconcile everyone.
pub fn sync_config(conn: &Connection, config: &Config, trigger: &Trigger) -> Result<SyncReport> {
    let now = super::now();
    let stored = names(conn)?;
    let mut report = SyncReport::default();
    for team in &config.teams {
        match stored.get(team.id.as_str()) {
            None => report.teams_added.push(team.id.to_string()),
            Some(name) if name != &team.name => report.teams_renamed.push(team.id.to_string()),
            Some(_) => {}
        }
        conn.prepare_cached(
            "INSERT INTO teams (id, name, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
             WHERE teams.name <> excluded.name",
        )?
        .execute(params![team.id.as_str(), team.name, now])?;
    }
    conn.execute("DELETE FROM role_bindings", [])?;
    conn.execute("DELETE FROM mappings", [])?;
    for team in &config.teams {
        for b in &team.roles {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO role_bindings (team_id, scope, role) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![team.id.as_str(), b.scope.as_str(), b.role.as_str()])?;
        }
        for (provider, group) in &team.groups {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO mappings (provider, group_key, team_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                provider.as_str(),
                crate::domain::reconcile::MappingTable::normalise(group),
                team.id.as_str()
            ])?;
        }
    }
    // Reconcile before deleting removed teams, so their memberships leave audit rows.
    report.users_changed = memberships::reconcile_all(conn, config, trigger)?;
    for id in stored.keys() {
        if config.teams.iter().all(|t| t.id.as_str() != id) {
            conn.execute("DELETE FROM teams WHERE id = ?1", [id])?;
            report.teams_removed.push(id.clone());
        }
    }
    for (action, ids) in [
        ("team.add", &report.teams_added),
        ("team.remove", &report.teams_removed),
        ("team.rename", &report.teams_renamed),
    ] {
        for id in ids {
            audit::record(
                conn,
                &now,
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
