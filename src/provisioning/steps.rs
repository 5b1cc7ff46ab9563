//! Steps every SCIM write shares, inside its one transaction: reconcile an affected user,
//! settle a login identity after its SCIM user changed (its `active` flag, its sessions, its
//! name and email), write the audit row, and check that a userName is free.

use super::context::Ctx;
use crate::domain::scim::ScimError;
use crate::domain::scim::resource::UserFields;
use crate::membership::profile::describe_change;
use crate::membership::reconcile::{current, reconcile_created, reconcile_user};
use crate::store::WriteTx;
use crate::store::audit::Entry;
use crate::store::users::{Linked, NewIdentity, Profile};

/// Reconcile one user for a SCIM change; when it leaves them with no team and the config
/// refuses such users, their sessions end now rather than at the next login.
pub(super) fn reconcile(tx: &dyn WriteTx, ctx: &Ctx, user_id: i64) -> Result<(), ScimError> {
    let config = ctx.live.get();
    let plan = reconcile_user(tx, user_id, &config, &ctx.trigger, &ctx.clock.stamp())?;
    if !plan.remove.is_empty()
        && config.defaults.refuse_without_teams
        && current(tx, user_id)?.is_empty()
    {
        tx.revoke_user_sessions(user_id)?;
    }
    Ok(())
}

pub(super) fn record(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    action: &str,
    user_id: Option<i64>,
    label: Option<&str>,
    note: &str,
) -> Result<(), ScimError> {
    let detail = format!(
        "{} ({note})",
        ctx.trigger.detail.as_deref().unwrap_or("SCIM")
    );
    tx.record_audit(
        &ctx.clock.stamp(),
        &ctx.trigger,
        &Entry {
            user_id,
            user_label: label,
            action,
            detail: Some(&detail),
            ..Entry::default()
        },
    )?;
    Ok(())
}

/// Bring the login identity in line with a SCIM user's new state: `active`, session
/// revocation on deactivation (security case 51), then the reconcile.
pub(super) fn settle_identity(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    user_id: i64,
    active: bool,
    now: &str,
) -> Result<(), ScimError> {
    tx.set_user_active(user_id, active, now)?;
    if !active {
        // Idempotent: a session minted before this commit stops working on its next request.
        tx.revoke_user_sessions(user_id)?;
    }
    reconcile(tx, ctx, user_id)
}

/// Settle the login identity a new SCIM user was just linked to. An identity this transaction
/// created holds nothing yet (no session, no membership, `active` as given): it is reconciled
/// from what is known without reading it back; an existing one as after any change.
pub(super) fn settle_linked(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    linked: Linked,
    identity: &NewIdentity<'_>,
    now: &str,
) -> Result<(), ScimError> {
    if !linked.created {
        return settle_identity(tx, ctx, linked.user_id, identity.active, now);
    }
    let config = ctx.live.get();
    reconcile_created(
        tx,
        linked.user_id,
        identity,
        &config,
        &ctx.trigger,
        &ctx.clock.stamp(),
    )?;
    Ok(())
}

/// A SCIM change of the user's name or email (`old` to `new`, the provisioned values) reaches
/// the linked identity now: the newest source wins (a later login sets them back from its
/// claims), audited as `user.profile`. An email SCIM sets is not verified: only an IdP login
/// verifies one, so a verified email stays verified only when SCIM sends the same address
/// (compared case-insensitively). Values SCIM re-sends unchanged leave the identity alone.
pub(super) fn settle_profile(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    user_id: i64,
    old: &UserFields,
    new: &UserFields,
    now: &str,
) -> Result<(), ScimError> {
    let same_email = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a.to_lowercase() == b.to_lowercase(),
        (None, None) => true,
        _ => false,
    };
    let name_changed = old.name != new.name;
    let email_changed = old.email != new.email;
    if !name_changed && !email_changed {
        return Ok(());
    }
    let Some(user) = tx.user(user_id)? else {
        return Ok(());
    };
    let mut profile = Profile {
        name: user.name.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
    };
    if name_changed {
        profile.name = new.name.clone();
    }
    if email_changed {
        profile.email = new.email.clone();
        profile.email_verified = user.email_verified && same_email(&user.email, &new.email);
    }
    let before = Profile::from(&user);
    if profile == before {
        return Ok(());
    }
    tx.set_user_profile(user_id, &profile, now)?;
    let Some(detail) = describe_change(
        &before,
        &profile,
        "SCIM",
        "verified",
        "not verified: set by SCIM",
    ) else {
        return Ok(());
    };
    record(
        tx,
        ctx,
        "user.profile",
        Some(user_id),
        profile.email.as_deref().or(user.email.as_deref()),
        &detail,
    )
    // The caller settles the identity next, whose reconcile sees the new email (a config
    // membership held through a verified email may no longer hold).
}

pub(super) fn ensure_user_name_free(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    user_name: &str,
    except: Option<i64>,
) -> Result<(), ScimError> {
    match tx.scim_user_by_name(&ctx.realm, user_name)? {
        Some(other) if Some(other.pk) != except => Err(ScimError::Uniqueness(format!(
            "userName \"{user_name}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)"
        ))),
        _ => Ok(()),
    }
}
