//! Reconcile one user inside the caller's transaction: gather their stored inputs, run the
//! pure [`crate::domain::reconcile`], and apply the difference with one audit row per change.
//! A login, a SCIM request, a refresh re-evaluation and a config sync all come through here.

use std::collections::BTreeSet;

use crate::config::{Config, GroupKey};
use crate::domain::reconcile::{self, MembershipRow, Plan, Policy, Source, UserInput};
use crate::domain::{ProviderId, tenant};
use crate::store::audit::{Entry, Trigger, TriggerKind};
use crate::store::users::{NewIdentity, UserRecord};
use crate::store::{ReadTx, StoreError, WriteTx};

/// Everything reconcile needs to know about `user`, read from the store and the config.
pub fn user_input(
    tx: &dyn ReadTx,
    user: &UserRecord,
    config: &Config,
) -> Result<UserInput, StoreError> {
    let provider =
        ProviderId::parse(&user.provider).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let provider_config = config.provider(&user.provider);
    let key = provider_config.map(|p| p.group_key).unwrap_or(GroupKey::Id);
    // The claims groups of a multi-tenant provider's user are the signing tenant's: read them
    // qualified by it, the key that tenant's mappings name (security case J1). They are
    // stored as the IdP named them, so rows from before tenants were keyed read the same way.
    let claims_groups = match provider_config
        .filter(|p| p.is_multi_tenant())
        .and_then(|_| tenant::of_subject(&user.subject))
    {
        Some(tid) => user
            .claims_groups
            .clone()
            .map(|groups| tenant::qualify_all(Some(tid), groups)),
        None => user.claims_groups.clone(),
    };
    let email = user.email.as_deref().unwrap_or_default();
    // Config membership and locks are by email, so only a verified email may claim them.
    let trusted_email = if user.email_verified { email } else { "" };
    Ok(UserInput {
        provider,
        claims_groups,
        scim_groups: tx.scim_group_keys_of_user(user.id, key)?,
        config_teams: if trusted_email.is_empty() {
            Vec::new()
        } else {
            config.config_teams_of(trusted_email)
        },
        active: user.active,
        locked: !trusted_email.is_empty() && config.is_locked(trusted_email),
    })
}

/// The rows a user holds now.
pub fn current(tx: &dyn ReadTx, user_id: i64) -> Result<BTreeSet<MembershipRow>, StoreError> {
    Ok(tx
        .memberships(user_id)?
        .into_iter()
        .map(|m| m.row)
        .collect())
}

/// Recompute one user's memberships from their stored inputs and apply the difference.
pub fn reconcile_user(
    tx: &dyn WriteTx,
    user_id: i64,
    config: &Config,
    trigger: &Trigger,
    now: &str,
) -> Result<Plan, StoreError> {
    let user = tx.user(user_id)?.ok_or(StoreError::NotFound)?;
    reconcile_record(tx, &user, config, trigger, now)
}

/// [`reconcile_user`] for a user already read.
pub fn reconcile_record(
    tx: &dyn WriteTx,
    user: &UserRecord,
    config: &Config,
    trigger: &Trigger,
    now: &str,
) -> Result<Plan, StoreError> {
    reconcile_with_policy(tx, user, config, config.policy(), trigger, now)
}

/// Which rows of the target the triggering source re-asserted just now ("confirmed"); rows
/// kept because their source was unknown are not. A refresh re-reads the claims groups as a
/// login does, so it confirms claims rows too.
fn confirmed_by<'a>(
    trigger: TriggerKind,
    input: &UserInput,
    target: &'a BTreeSet<MembershipRow>,
) -> Vec<&'a MembershipRow> {
    target
        .iter()
        .filter(|r| match r.source {
            Source::Claims => {
                matches!(trigger, TriggerKind::Login | TriggerKind::Refresh)
                    && input.claims_groups.is_some()
            }
            Source::Scim => trigger == TriggerKind::Scim && input.scim_groups.is_some(),
            Source::Config | Source::Default => false,
        })
        .collect()
}

fn reconcile_with_policy(
    tx: &dyn WriteTx,
    user: &UserRecord,
    config: &Config,
    policy: &Policy,
    trigger: &Trigger,
    now: &str,
) -> Result<Plan, StoreError> {
    let input = user_input(tx, user, config)?;
    let current = current(tx, user.id)?;
    settle(
        tx,
        (user.id, &user.label()),
        &input,
        &current,
        policy,
        trigger,
        now,
    )
}

/// Reconcile identity `user_id`, which this transaction created (`Linked::created`) for the
/// SCIM user it inserted with it. Its inputs are known without reading them: no claims yet, in
/// no SCIM group, no verified email (so no config membership and no lock), no membership row.
/// A SCIM creation's hot path: on PostgreSQL every read is a round trip.
pub fn reconcile_created(
    tx: &dyn WriteTx,
    user_id: i64,
    identity: &NewIdentity<'_>,
    config: &Config,
    trigger: &Trigger,
    now: &str,
) -> Result<Plan, StoreError> {
    let provider =
        ProviderId::parse(identity.provider).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let input = UserInput {
        provider,
        claims_groups: None,
        scim_groups: Some(Vec::new()),
        config_teams: Vec::new(),
        active: identity.active,
        locked: false,
    };
    let label = identity.label();
    settle(
        tx,
        (user_id, &label),
        &input,
        &BTreeSet::new(),
        config.policy(),
        trigger,
        now,
    )
}

/// Reconcile the user (`id`, `label`) from `input` against the rows they hold now, and
/// apply the difference.
fn settle(
    tx: &dyn WriteTx,
    user: (i64, &str),
    input: &UserInput,
    current: &BTreeSet<MembershipRow>,
    policy: &Policy,
    trigger: &Trigger,
    now: &str,
) -> Result<Plan, StoreError> {
    let target = reconcile::reconcile(input, policy, current);
    let plan = reconcile::diff(current, &target.rows);
    let confirmed = confirmed_by(trigger.kind, input, &target.rows);
    apply(tx, user, &plan, &confirmed, trigger, now)?;
    // Counted when applied; a transaction rolled back afterwards (a refused login) still
    // counts, which the metric's help text states.
    crate::metrics::add_reconcile_changes(trigger.kind.as_str(), plan.add.len(), plan.remove.len());
    Ok(plan)
}

/// Reconcile every stored user (after a config change). Returns how many users changed.
pub fn reconcile_all(
    tx: &dyn WriteTx,
    config: &Config,
    trigger: &Trigger,
    now: &str,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for id in tx.user_ids()? {
        let user = tx.user(id)?.ok_or(StoreError::NotFound)?;
        if !reconcile_with_policy(tx, &user, config, config.policy(), trigger, now)?.is_empty() {
            changed += 1;
        }
    }
    Ok(changed)
}

fn apply(
    tx: &dyn WriteTx,
    (user_id, label): (i64, &str),
    plan: &Plan,
    confirmed: &[&MembershipRow],
    trigger: &Trigger,
    now: &str,
) -> Result<(), StoreError> {
    let audit = |action: &str, row: &MembershipRow| {
        tx.record_audit(
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
    };
    for row in &plan.remove {
        tx.remove_membership(user_id, row)?;
        audit("membership.remove", row)?;
    }
    for row in &plan.add {
        tx.add_membership(user_id, row, now)?;
        audit("membership.add", row)?;
    }
    for row in confirmed {
        tx.confirm_membership(user_id, row, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TeamId;

    fn row(source: Source) -> MembershipRow {
        MembershipRow {
            team: TeamId::parse("team-a").unwrap(),
            source,
            via: "g".into(),
        }
    }

    fn input(claims: bool, scim: bool) -> UserInput {
        UserInput {
            provider: ProviderId::parse("idp").unwrap(),
            claims_groups: claims.then(|| vec!["g".to_owned()]),
            scim_groups: scim.then(|| vec!["g".to_owned()]),
            config_teams: Vec::new(),
            active: true,
            locked: false,
        }
    }

    #[test]
    fn a_refresh_confirms_claims_rows_like_a_login() {
        let target: BTreeSet<_> = [row(Source::Claims), row(Source::Scim)].into();
        for kind in [TriggerKind::Login, TriggerKind::Refresh] {
            let confirmed = confirmed_by(kind, &input(true, true), &target);
            assert_eq!(confirmed, vec![&row(Source::Claims)], "{kind:?}");
        }
        let confirmed = confirmed_by(TriggerKind::Scim, &input(true, true), &target);
        assert_eq!(confirmed, vec![&row(Source::Scim)]);
        assert!(confirmed_by(TriggerKind::Config, &input(true, true), &target).is_empty());
        // Unknown groups (a failed resolution) confirm nothing.
        assert!(confirmed_by(TriggerKind::Refresh, &input(false, false), &target).is_empty());
    }
}
