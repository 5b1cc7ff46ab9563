//! SCIM operations on Users (RFC 7644 §3.3, §3.5, §3.6): each is one write transaction that
//! changes the SCIM user, settles its login identity (deactivation ends its sessions), and
//! reconciles its teams, with audit rows; the 2xx goes out after the commit.
//!
//! Decisions (documented in the README):
//! - A user is linked to the login subject its `externalId` names (qualified by the tenant of a
//!   tenant-bound token: `{tid}/{externalId}`, what multi-tenant logins produce), or to
//!   `scim:<SCIM id>`, which no login can produce, when it has none.
//! - `externalId` may change (Entra sends `Replace externalId`, IdP quirk S12): the link follows
//!   the new value, the move is audited, and the identity left behind is disabled like a
//!   deleted user's (its sessions end, its teams go). A value another provisioned user is
//!   linked through is 409 `uniqueness`. A PATCH `remove` of it links the user to
//!   `scim:<SCIM id>`; a PUT without it leaves it as stored ("not asserted", RFC 7644 §3.5.1).
//! - A user created without `active` is active (a default the server assigns, RFC 7644 §3.3).
//!   A PATCH `remove` of `active` leaves it unassigned (not rendered, RFC 7644 §3.5.2.2), which
//!   reads as active too; the login identity's `active` and sessions follow either way.
//! - A change of the user's name or email reaches the linked identity at once (what `/auth`
//!   and the assertion carry), audited as `user.profile`; linking alone never rewrites what a
//!   login established (security case 74), and an email from SCIM is never marked verified.
//! - POST with the `userName` of an inactive user revives it (IdP quirk K6): the same resource
//!   when the externalId matches, a fresh one (the old identity stays disabled) when not.
//! - DELETE keeps the login identity disabled: the person cannot sign in until re-provisioned.

use serde_json::{Map, Value};

use super::Provisioning;
use super::context::{Ctx, ListQuery, Resource, check_version, not_found};
use super::render::{UserView, render_user, user_view};
use super::steps::{ensure_user_name_free, record, settle_identity, settle_linked, settle_profile};
use crate::domain::scim::resource::{self, UserFields};
use crate::domain::scim::{ResourceType, ScimError, patch};
use crate::store::WriteTx;
use crate::store::scim::{UserRow, UserValues, fold};
use crate::store::users::NewIdentity;

/// What an attribute missing from the new document means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Absent {
    /// PUT (and Okta's revival POST): not asserted, keep the stored `externalId` and `active`.
    Keep,
    /// PATCH: the document is whole, so a missing attribute was removed (RFC 7644 §3.5.2.2).
    Removed,
}

impl Provisioning {
    /// POST `/Users`.
    pub async fn create_user(
        &self,
        ctx: &Ctx,
        body: &Value,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let n = resource::normalize(ResourceType::User, body)?;
        let sel = q.selection(ResourceType::User);
        let want = sel.wants("groups");
        let c = ctx.clone();
        let view = self.store.write(move |tx: &dyn WriteTx| {
            let now = c.clock.stamp();
            let mut doc = n.doc.clone();
            // RFC 7644 §3.3: a server may assign a default to an attribute a creation leaves
            // unassigned: a new user is active unless the IdP says otherwise.
            doc.entry("active").or_insert(Value::Bool(true));
            let f = resource::user_fields(&doc);
            if let Some(existing) = tx.scim_user_by_name(&c.realm, &f.user_name)? {
                if existing.active {
                    return Err(ScimError::Uniqueness(format!(
                        "userName \"{}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)",
                        f.user_name
                    )));
                }
                if existing.external_id == f.external_id {
                    // Okta re-creates a deactivated user with the same userName (IdP quirk K6): revive it.
                    let row = update_user(tx, &c, existing, doc, &now, "revive", Absent::Keep)?;
                    return Ok::<_, ScimError>(user_view(tx, row, want)?);
                }
                // Same userName, another person: the old identity stays disabled, a new one starts.
                delete_user_row(tx, &c, &existing, &now, "replaced by a new user with the same userName")?;
            }
            let scim_id = c.new_id();
            let subject = subject_of(&c, &scim_id, f.external_id.as_deref());
            let active = f.active.unwrap_or(true);
            let identity = NewIdentity {
                provider: &c.provider,
                subject: &subject,
                email: f.email.as_deref(),
                name: f.name.as_deref(),
                active,
            };
            let linked = tx.link_identity(&identity, &now)?;
            let user_id = linked.user_id;
            // A new identity cannot be another SCIM user's yet.
            if !linked.created && tx.scim_user_of_identity(user_id)?.is_some() {
                return Err(taken(f.external_id.as_deref()));
            }
            let values = UserValues {
                user_name: &f.user_name,
                external_id: f.external_id.as_deref(),
                active,
                doc: &doc,
            };
            let pk = tx.insert_scim_user(&c.realm, &scim_id, user_id, &values, &now)?;
            settle_linked(tx, &c, linked, &identity, &now)?;
            record(tx, &c, "scim.user.create", Some(user_id), Some(&f.user_name), &format!("id {scim_id}, linked to login subject {subject}"))?;
            // A new user is in no group yet: render it from what was written, without reading back.
            let row = UserRow {
                pk,
                scim_id,
                provider: c.provider.clone(),
                tenant: c.realm.tenant.clone(),
                user_id,
                external_id: f.external_id,
                active,
                doc,
                version: 1,
                created_at: now.clone(),
                updated_at: now,
            };
            Ok(UserView {
                row,
                groups: want.then(Vec::new),
            })
        })
        .await?;
        let r = render_user(ctx, &view);
        Ok(Resource {
            body: sel.apply(r.body),
            ..r
        })
    }

    /// PUT `/Users/{id}`: replace the user (RFC 7644 §3.5.1).
    pub async fn replace_user(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Value,
        if_match: Option<String>,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let n = resource::normalize(ResourceType::User, body)?;
        let sel = q.selection(ResourceType::User);
        let want = sel.wants("groups");
        let (c, id) = (ctx.clone(), id.to_owned());
        let view = self
            .store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_user(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let row = update_user(
                    tx,
                    &c,
                    row,
                    n.doc.clone(),
                    &c.clock.stamp(),
                    "replace",
                    Absent::Keep,
                )?;
                Ok::<_, ScimError>(user_view(tx, row, want)?)
            })
            .await?;
        let r = render_user(ctx, &view);
        Ok(Resource {
            body: sel.apply(r.body),
            ..r
        })
    }

    /// PATCH `/Users/{id}` (RFC 7644 §3.5.2).
    pub async fn patch_user(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Value,
        if_match: Option<String>,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let ops = patch::parse_request(body)?;
        let sel = q.selection(ResourceType::User);
        let want = sel.wants("groups");
        let (c, id) = (ctx.clone(), id.to_owned());
        let view = self
            .store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_user(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let mut base = row.doc.clone();
                if !row.active {
                    // An inactive user's document says so (rows written before `active` could
                    // be unassigned may lack it), so an unrelated PATCH never reads "unassigned".
                    base.entry("active").or_insert(Value::Bool(false));
                }
                if let Some(ext) = &row.external_id {
                    base.entry("externalId")
                        .or_insert_with(|| Value::String(ext.clone()));
                }
                let patched = patch::apply(ResourceType::User, &base, &ops)?;
                let row = if patched.doc == base {
                    row
                } else {
                    update_user(
                        tx,
                        &c,
                        row,
                        patched.doc,
                        &c.clock.stamp(),
                        "patch",
                        Absent::Removed,
                    )?
                };
                Ok::<_, ScimError>(user_view(tx, row, want)?)
            })
            .await?;
        let r = render_user(ctx, &view);
        Ok(Resource {
            body: sel.apply(r.body),
            ..r
        })
    }

    /// DELETE `/Users/{id}`: the user goes; their login identity stays, disabled.
    pub async fn delete_user(
        &self,
        ctx: &Ctx,
        id: &str,
        if_match: Option<String>,
    ) -> Result<(), ScimError> {
        let (c, id) = (ctx.clone(), id.to_owned());
        self.store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_user(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                delete_user_row(tx, &c, &row, &c.clock.stamp(), "delete")
            })
            .await
    }
}

/// The login subject a user of this caller with `external_id` is linked to.
fn subject_of(ctx: &Ctx, scim_id: &str, external_id: Option<&str>) -> String {
    match external_id {
        Some(e) => ctx.realm.subject(e),
        None => format!("scim:{scim_id}"),
    }
}

fn taken(external_id: Option<&str>) -> ScimError {
    ScimError::Uniqueness(format!(
        "externalId \"{}\" is already provisioned for another user",
        external_id
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect::<String>()
    ))
}

/// Write a user's new document and settle everything that depends on it.
pub(super) fn update_user(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    row: UserRow,
    mut doc: Map<String, Value>,
    now: &str,
    why: &str,
    absent: Absent,
) -> Result<UserRow, ScimError> {
    let f = resource::user_fields(&doc);
    if absent == Absent::Keep
        && !doc.contains_key("active")
        && let Some(kept) = row
            .doc
            .get("active")
            .cloned()
            .or_else(|| (!row.active).then_some(Value::Bool(false)))
    {
        // A PUT without `active` does not assert it: the stored state stays, and stays
        // written, so that "absent" keeps meaning "unassigned" (active).
        doc.insert("active".into(), kept);
    }
    let external_id = match (absent, &row.external_id, &f.external_id) {
        // A PUT without externalId does not assert it: keep the stored one (RFC 7644 §3.5.1).
        (Absent::Keep, Some(old), None) => {
            doc.insert("externalId".into(), Value::String(old.clone()));
            Some(old.clone())
        }
        (_, _, new) => new.clone(),
    };
    let active = match (absent, f.active) {
        (_, Some(a)) => a,
        (Absent::Keep, None) => row.active,
        // Removed: unassigned reads as active, as for a user created without it.
        (Absent::Removed, None) => true,
    };
    let old = resource::user_fields(&row.doc);
    if fold(&f.user_name) != fold(&old.user_name) {
        ensure_user_name_free(tx, ctx, &f.user_name, Some(row.pk))?;
    }
    let mut user_id = row.user_id;
    if external_id != row.external_id {
        user_id = relink(tx, ctx, &row, external_id.as_deref(), &f, active, now)?;
    }
    let values = UserValues {
        user_name: &f.user_name,
        external_id: external_id.as_deref(),
        active,
        doc: &doc,
    };
    tx.update_scim_user(row.pk, &values, now)?;
    if user_id == row.user_id {
        // Only a change of the provisioned values reaches the identity: a re-link or a
        // re-send of the same values never overwrites what a newer login set.
        settle_profile(tx, ctx, user_id, &old, &f, now)?;
    }
    settle_identity(tx, ctx, user_id, active, now)?;
    let action = match (row.active, active) {
        (true, false) => "scim.user.deactivate",
        (false, true) => "scim.user.activate",
        _ => "scim.user.update",
    };
    let unassigned = if absent == Absent::Removed && f.active.is_none() && !row.active {
        " (active removed: unassigned reads as active)"
    } else {
        ""
    };
    record(
        tx,
        ctx,
        action,
        Some(user_id),
        Some(&f.user_name),
        &format!("id {}, {why}{unassigned}", row.scim_id),
    )?;
    tx.scim_user(&ctx.realm, &row.scim_id)?
        .ok_or_else(|| ScimError::Internal("the updated user cannot be read back".into()))
}

/// The user's externalId changed (set, changed or removed): link it to the identity the new
/// value names, and disable the one it leaves. Returns the identity now linked.
fn relink(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    row: &UserRow,
    external_id: Option<&str>,
    f: &UserFields,
    active: bool,
    now: &str,
) -> Result<i64, ScimError> {
    let subject = subject_of(ctx, &row.scim_id, external_id);
    let current = tx.user(row.user_id)?;
    if current.as_ref().is_some_and(|u| u.subject == subject) {
        // Already linked there (a login matched by email and the IdP now names the same subject).
        return Ok(row.user_id);
    }
    let identity = NewIdentity {
        provider: &ctx.provider,
        subject: &subject,
        email: f.email.as_deref(),
        name: f.name.as_deref(),
        active,
    };
    let linked = tx.link_identity(&identity, now)?.user_id;
    if tx
        .scim_user_of_identity(linked)?
        .is_some_and(|other| other.pk != row.pk)
    {
        return Err(taken(external_id));
    }
    tx.relink_scim_user(row.pk, linked)?;
    // The identity left behind is no longer provisioned: disabled like a deleted user's.
    settle_identity(tx, ctx, row.user_id, false, now)?;
    let was = current.map(|u| u.subject).unwrap_or_default();
    let note = format!(
        "id {}, externalId {} -> {}: linked to login subject {subject} (was {was}; that identity is disabled and its sessions ended)",
        row.scim_id,
        row.external_id.as_deref().unwrap_or("(none)"),
        external_id.unwrap_or("(none)"),
    );
    record(
        tx,
        ctx,
        "scim.user.relink",
        Some(linked),
        Some(&f.user_name),
        &note,
    )?;
    record(
        tx,
        ctx,
        "scim.user.unlink",
        Some(row.user_id),
        Some(&f.user_name),
        &note,
    )?;
    Ok(linked)
}

pub(super) fn delete_user_row(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    row: &UserRow,
    now: &str,
    why: &str,
) -> Result<(), ScimError> {
    tx.delete_scim_user(row.pk)?;
    settle_identity(tx, ctx, row.user_id, false, now)?;
    let name = row.doc.get("userName").and_then(Value::as_str);
    record(
        tx,
        ctx,
        "scim.user.delete",
        Some(row.user_id),
        name,
        &format!("id {}, {why}", row.scim_id),
    )
}
