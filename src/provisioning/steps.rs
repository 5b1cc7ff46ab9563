//! Steps every SCIM write shares, inside its one transaction: reconcile an affected user,
//! settle a login identity after its SCIM user changed, write the audit row, and check that
//! a userName is free.

use super::context::Ctx;
use crate::domain::scim::ScimError;
use crate::membership::reconcile::{current, reconcile_user};
use crate::store::WriteTx;
use crate::store::audit::Entry;

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

pub(super) fn ensure_user_name_free(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    user_name: &str,
    except: Option<i64>,
) -> Result<(), ScimError> {
    match tx.scim_user_by_name(&ctx.provider, user_name)? {
        Some(other) if Some(other.pk) != except => Err(ScimError::Uniqueness(format!(
            "userName \"{user_name}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)"
        ))),
        _ => Ok(()),
    }
}
