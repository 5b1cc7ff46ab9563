//! SCIM operations on Users (RFC 7644 §3.3, §3.5, §3.6): each is one write transaction that
//! changes the SCIM user, settles its login identity (deactivation ends its sessions), and
//! reconciles its teams, with audit rows; the 2xx goes out after the commit.
//!
//! Decisions (documented in the README):
//! - A user without `externalId` is linked to the login subject `scim:<SCIM id>`, which no
//!   login can produce; setting `externalId` later moves the link to the real identity.
//! - `externalId` of a user is immutable once set: it is the login identity (security case 64).
//! - POST with the `userName` of an inactive user revives it (IdP quirk K6): the same resource
//!   when the externalId matches, a fresh one (the old identity stays disabled) when not.
//! - DELETE keeps the login identity disabled: the person cannot sign in until re-provisioned.

use serde_json::{Map, Value};

use super::Provisioning;
use super::context::{Ctx, ListQuery, Resource, check_version, not_found};
use super::render::{UserView, render_user, user_view};
use super::steps::{ensure_user_name_free, record, settle_identity};
use crate::domain::scim::resource;
use crate::domain::scim::{ResourceType, ScimError, patch};
use crate::store::WriteTx;
use crate::store::scim::{UserRow, UserValues, fold};
use crate::store::users::NewIdentity;

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
            let doc = n.doc.clone();
            let f = resource::user_fields(&doc);
            if let Some(existing) = tx.scim_user_by_name(&c.provider, &f.user_name)? {
                if existing.active {
                    return Err(ScimError::Uniqueness(format!(
                        "userName \"{}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)",
                        f.user_name
                    )));
                }
                if existing.external_id == f.external_id {
                    // Okta re-creates a deactivated user with the same userName (IdP quirk K6): revive it.
                    let row = update_user(tx, &c, existing, doc, &now, "revive")?;
                    return Ok::<_, ScimError>(user_view(tx, row, want)?);
                }
                // Same userName, another person: the old identity stays disabled, a new one starts.
                delete_user_row(tx, &c, &existing, &now, "replaced by a new user with the same userName")?;
            }
            let scim_id = c.new_id();
            let subject = f.external_id.clone().unwrap_or_else(|| format!("scim:{scim_id}"));
            let active = f.active.unwrap_or(true);
            let identity = NewIdentity {
                provider: &c.provider,
                subject: &subject,
                email: f.email.as_deref(),
                name: f.name.as_deref(),
                active,
            };
            let user_id = tx.link_identity(&identity, &now)?;
            if tx.scim_user_of_identity(user_id)?.is_some() {
                return Err(ScimError::Uniqueness("externalId is already provisioned for another user".into()));
            }
            let values = UserValues {
                user_name: &f.user_name,
                external_id: f.external_id.as_deref(),
                active,
                doc: &doc,
            };
            let pk = tx.insert_scim_user(&c.provider, &scim_id, user_id, &values, &now)?;
            settle_identity(tx, &c, user_id, active, &now)?;
            record(tx, &c, "scim.user.create", Some(user_id), Some(&f.user_name), &format!("id {scim_id}"))?;
            // A new user is in no group yet: render it from what was written, without reading back.
            let row = UserRow {
                pk,
                scim_id,
                provider: c.provider.clone(),
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
                    .scim_user(&c.provider, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let row = update_user(tx, &c, row, n.doc.clone(), &c.clock.stamp(), "replace")?;
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
                    .scim_user(&c.provider, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let mut base = row.doc.clone();
                base.entry("active").or_insert(Value::Bool(row.active));
                let patched = patch::apply(ResourceType::User, &base, &ops)?;
                let row = if patched.doc == base {
                    row
                } else {
                    update_user(tx, &c, row, patched.doc, &c.clock.stamp(), "patch")?
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
                    .scim_user(&c.provider, &id)?
                    .ok_or_else(|| not_found(ResourceType::User, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                delete_user_row(tx, &c, &row, &c.clock.stamp(), "delete")
            })
            .await
    }
}

/// Write a user's new document and settle everything that depends on it.
pub(super) fn update_user(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    row: UserRow,
    mut doc: Map<String, Value>,
    now: &str,
    why: &str,
) -> Result<UserRow, ScimError> {
    let f = resource::user_fields(&doc);
    // An absent externalId is "not asserted": keep the stored one (RFC 7644 §3.5.1).
    let external_id = match (&row.external_id, &f.external_id) {
        (Some(old), None) => {
            doc.insert("externalId".into(), Value::String(old.clone()));
            Some(old.clone())
        }
        (Some(old), Some(new)) if old != new => {
            return Err(ScimError::Mutability(
                "externalId is immutable: it links the user to their login identity".into(),
            ));
        }
        (_, new) => new.clone(),
    };
    let active = f.active.unwrap_or(row.active);
    if fold(&f.user_name)
        != fold(
            row.doc
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )
    {
        ensure_user_name_free(tx, ctx, &f.user_name, Some(row.pk))?;
    }
    let mut user_id = row.user_id;
    if let (None, Some(ext)) = (&row.external_id, &external_id) {
        // First externalId: move the link from "scim:<id>" to the real login identity.
        let identity = NewIdentity {
            provider: &ctx.provider,
            subject: ext,
            email: f.email.as_deref(),
            name: f.name.as_deref(),
            active,
        };
        let linked = tx.link_identity(&identity, now)?;
        if tx
            .scim_user_of_identity(linked)?
            .is_some_and(|other| other.pk != row.pk)
        {
            return Err(ScimError::Uniqueness(
                "externalId is already provisioned for another user".into(),
            ));
        }
        tx.relink_scim_user(row.pk, linked)?;
        settle_identity(tx, ctx, row.user_id, false, now)?;
        user_id = linked;
    }
    let values = UserValues {
        user_name: &f.user_name,
        external_id: external_id.as_deref(),
        active,
        doc: &doc,
    };
    tx.update_scim_user(row.pk, &values, now)?;
    settle_identity(tx, ctx, user_id, active, now)?;
    let action = match (row.active, active) {
        (true, false) => "scim.user.deactivate",
        (false, true) => "scim.user.activate",
        _ => "scim.user.update",
    };
    record(
        tx,
        ctx,
        action,
        Some(user_id),
        Some(&f.user_name),
        &format!("id {}, {why}", row.scim_id),
    )?;
    tx.scim_user(&ctx.provider, &row.scim_id)?
        .ok_or_else(|| ScimError::Internal("the updated user cannot be read back".into()))
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
