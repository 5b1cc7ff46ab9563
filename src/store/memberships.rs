//! The `memberships` table and the one place reconcile's decisions are applied: gather a
//! user's stored inputs, run [`crate::domain::reconcile`], write the difference with one audit
//! row per change, all inside the caller's transaction.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::audit::{self, Entry, Trigger};
use super::error::{Result, StoreError};
use super::users::{self, UserRecord};
use crate::config::Config;
use crate::domain::reconcile::{self, MembershipRow, Plan, Policy, Source, UserInput};
use crate::domain::{ProviderId, TeamId};

/// A stored membership with its timestamps.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMembership {
    pub row: MembershipRow,
    pub since: String,
    pub confirmed_at: String,
}

pub fn current(conn: &Connection, user_id: i64) -> Result<BTreeSet<MembershipRow>> {
    Ok(detailed(conn, user_id)?
        .into_iter()
        .map(|m| m.row)
        .collect())
}

pub fn detailed(conn: &Connection, user_id: i64) -> Result<Vec<StoredMembership>> {
    let mut stmt = conn.prepare_cached(
        "SELECT team_id, source, via, since, confirmed_at FROM memberships
         WHERE user_id = ?1 ORDER BY team_id, source, via",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|r| {
        let (team, source, via, since, confirmed_at) = r?;
        Ok(StoredMembership {
            row: MembershipRow {
                team: TeamId::parse(&team).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                source: Source::parse(&source)
                    .ok_or_else(|| StoreError::Corrupt(format!("membership source {source}")))?,
                via,
            },
            since,
            confirmed_at,
        })
    })
    .collect()
}

/// Everything reconcile needs to know about `user`, read from the store and the config.
pub fn user_input(conn: &Connection, user: &UserRecord, config: &Config) -> Result<UserInput> {
    let provider =
        ProviderId::parse(&user.provider).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let key = config
        .provider(&user.provider)
        .map(|p| p.group_key)
        .unwrap_or(crate::config::GroupKey::Id);
    let email = user.email.as_deref().unwrap_or_default();
    // Config membership and locks are by email, so only a verified email may claim them.
    let trusted_email = if user.email_verified { email } else { "" };
    Ok(UserInput {
        provider,
        claims_groups: user.claims_groups.clone(),
        scim_groups: super::scim::groups_of_user(conn, user.id, key)?,
        config_teams: if trusted_email.is_empty() {
            Vec::new()
        } else {
            config.config_teams_of(trusted_email)
        },
        active: user.active,
        locked: !trusted_email.is_empty() && config.is_locked(trusted_email),
    })
}

/// Recompute one user's memberships from their stored inputs and apply the difference.
pub fn reconcile_user(
    conn: &Connection,
    user_id: i64,
    config: &Config,
    trigger: &Trigger,
) -> Result<Plan> {
    let user = users::by_id(conn, user_id)?.ok_or(StoreError::NotFound)?;
    reconcile_record(conn, &user, config, trigger)
}

/// [`reconcile_user`] for a user already read.
pub fn reconcile_record(
    conn: &Connection,
    user: &UserRecord,
    config: &Config,
    trigger: &Trigger,
) -> Result<Plan> {
    reconcile_with_policy(conn, user, config, &config.policy(), trigger)
}

/// [`reconcile_record`] with the config's policy already built (it is the same for every user
/// of a config sync, and building it walks every mapping).
fn reconcile_with_policy(
    conn: &Connection,
    user: &UserRecord,
    config: &Config,
    policy: &Policy,
    trigger: &Trigger,
) -> Result<Plan> {
    let input = user_input(conn, user, config)?;
    let current = current(conn, user.id)?;
    let target = reconcile::reconcile(&input, policy, &current);
    let plan = reconcile::diff(&current, &target.rows);
    // Rows the triggering source re-asserted just now are "confirmed"; rows kept because the
    // source was unknown are not.
    let confirmed: Vec<&MembershipRow> = target
        .rows
        .iter()
        .filter(|r| match r.source {
            Source::Claims => trigger.kind == "login" && input.claims_groups.is_some(),
            Source::Scim => trigger.kind == "scim" && input.scim_groups.is_some(),
            Source::Config | Source::Default => false,
        })
        .collect();
    apply(conn, user, &plan, &confirmed, trigger)?;
    // Counted when applied; a transaction rolled back afterwards (a refused login) still
    // counts, which the metric's help text states.
    crate::metrics::add_reconcile_changes(trigger.kind, plan.add.len(), plan.remove.len());
    Ok(plan)
}

/// Reconcile every stored user (after a config change). Returns how many users changed.
pub fn reconcile_all(conn: &Connection, config: &Config, trigger: &Trigger) -> Result<usize> {
    let policy = config.policy();
    let mut changed = 0;
    for id in users::all_ids(conn)? {
        let user = users::by_id(conn, id)?.ok_or(StoreError::NotFound)?;
        if !reconcile_with_policy(conn, &user, config, &policy, trigger)?.is_empty() {
            changed += 1;
        }
    }
    Ok(changed)
}

fn apply(
    conn: &Connection,
    user: &UserRecord,
    plan: &Plan,
    confirmed: &[&MembershipRow],
    trigger: &Trigger,
) -> Result<()> {
    let now = super::now();
    let label = user.label();
    for row in &plan.remove {
        conn.prepare_cached(
            "DELETE FROM memberships WHERE user_id = ?1 AND team_id = ?2 AND source = ?3 AND via = ?4",
        )?
        .execute(params![user.id, row.team.as_str(), row.source.as_str(), row.via])?;
        audit_row(
            conn,
            &now,
            trigger,
            user.id,
            &label,
            "membership.remove",
            row,
        )?;
    }
    for row in &plan.add {
        conn.prepare_cached(
            "INSERT INTO memberships (user_id, team_id, source, via, since, confirmed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![
            user.id,
            row.team.as_str(),
            row.source.as_str(),
            row.via,
            now
        ])?;
        audit_row(conn, &now, trigger, user.id, &label, "membership.add", row)?;
    }
    for row in confirmed {
        conn.prepare_cached(
            "UPDATE memberships SET confirmed_at = ?5
             WHERE user_id = ?1 AND team_id = ?2 AND source = ?3 AND via = ?4",
        )?
        .execute(params![
            user.id,
            row.team.as_str(),
            row.source.as_str(),
            row.via,
            now
        ])?;
    }
    Ok(())
}

fn audit_row(
    conn: &Connection,
    now: &str,
    trigger: &Trigger,
    user_id: i64,
    label: &str,
    action: &str,
    row: &MembershipRow,
) -> Result<()> {
    audit::record(
        conn,
        now,
        trigger,
        &Entry {
            user_id: Some(user_id),
            user_label: Some(label),
            action,
            team: Some(row.team.as_str()),
            source: Some(row.source.as_str()),
            via: Some(&row.via),
            detail: None,
        },
    )
}
