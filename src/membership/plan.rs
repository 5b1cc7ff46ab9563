//! `plan` and `explain` against what the database holds: the same reconcile the server runs,
//! over every stored user's inputs and a (new) config, applying nothing.

use serde::Serialize;

use super::reconcile::{current, user_input};
use crate::config::Config;
use crate::domain::explain::{self, Explanation, HeldMembership};
use crate::domain::plan::{self, ConfigView, PlanUser};
use crate::domain::reconcile::UserInput;
use crate::store::users::UserRecord;
use crate::store::{ReadTx, StoreError, applied};

/// What the new file is compared with.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Baseline {
    /// The snapshot the last config sync recorded.
    Applied { path: String, at: String },
    /// Only the synced tables (a database from before snapshots): members, defaults and locks
    /// are compared as if empty.
    Tables,
    /// No database yet: everything is new.
    Empty,
}

/// Every stored user's reconcile inputs read against `config` (its members, locks and group
/// keys), with their current memberships: what `plan` runs reconcile over.
pub fn plan_users(tx: &dyn ReadTx, config: &Config) -> Result<Vec<PlanUser>, StoreError> {
    let mut out = Vec::new();
    for id in tx.user_ids()? {
        let Some(user) = tx.user(id)? else {
            continue;
        };
        out.push(PlanUser {
            label: user.label(),
            public_id: user.public_id.clone(),
            input: user_input(tx, &user, config)?,
            current: current(tx, id)?,
        });
    }
    Ok(out)
}

/// The plan of `config` against what the database holds (in one snapshot).
pub fn compute_plan(
    tx: &dyn ReadTx,
    config: &Config,
) -> Result<(Baseline, plan::Plan), StoreError> {
    let (baseline, old) = match applied::load(tx)? {
        Some(a) => (
            Baseline::Applied {
                path: a.path,
                at: a.at,
            },
            a.view,
        ),
        None => (Baseline::Tables, applied::view_from_tables(tx)?),
    };
    let users = plan_users(tx, config)?;
    Ok((baseline, plan::plan(&old, config.view(), &users)))
}

/// The plan of `config` when there is no database yet: everything is new.
pub fn plan_from_empty(config: &Config) -> (Baseline, plan::Plan) {
    (
        Baseline::Empty,
        plan::plan(&ConfigView::default(), config.view(), &[]),
    )
}

/// What `explain` needs about `user`: their inputs against `config` and their memberships.
pub fn explain_inputs(
    tx: &dyn ReadTx,
    user: &UserRecord,
    config: &Config,
) -> Result<(UserInput, Vec<HeldMembership>), StoreError> {
    let input = user_input(tx, user, config)?;
    let held = tx
        .memberships(user.id)?
        .into_iter()
        .map(|m| HeldMembership {
            row: m.row,
            since: m.since,
            confirmed_at: m.confirmed_at,
        })
        .collect();
    Ok((input, held))
}

/// Why `user` holds each team and role under `config`.
pub fn explain_user(
    tx: &dyn ReadTx,
    user: &UserRecord,
    config: &Config,
) -> Result<Explanation, StoreError> {
    let (input, held) = explain_inputs(tx, user, config)?;
    Ok(explain::explain(
        user.summary(),
        &input,
        &held,
        config.view(),
    ))
}

/// Whether `config` differs from the config last applied to the database.
pub fn differs_from_applied(tx: &dyn ReadTx, config: &Config) -> Result<bool, StoreError> {
    Ok(applied::load(tx)?.is_some_and(|a| &a.view != config.view()))
}
