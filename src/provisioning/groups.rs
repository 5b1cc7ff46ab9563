//! SCIM operations on Groups (RFC 7644 §3.3, §3.5, §3.6): each is one write transaction.
//! Members change one row at a time (a change costs the same for any group size); every
//! member whose teams may change is reconciled, with audit rows. Group keys follow the
//! provider's `group_key` (externalId or displayName), like the team mappings that name them,
//! qualified by the tenant of a tenant-bound token (`{tid}/{key}`), so a group one tenant
//! pushes can only match mappings written for that tenant (security case J1). Members are
//! users of the same provider and tenant.
//!
//! Decision (documented in the README): removing a member who is not one through the
//! value-list form is a no-op; through a `members[value eq ...]` path that matches nobody it is
//! `noTarget` (security case 65).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Provisioning;
use super::context::{Ctx, ListQuery, Resource, check_version, not_found};
use super::render::{group_view, render_group};
use super::steps::{reconcile, record};
use crate::config::GroupKey;
use crate::domain::ProviderId;
use crate::domain::reconcile::MappingTable;
use crate::domain::scim::patch::{self, MemberChange};
use crate::domain::scim::{ResourceType, ScimError, resource};
use crate::domain::tenant::qualify;
use crate::store::WriteTx;
use crate::store::scim::{GroupRow, GroupValues, MemberRef, fold};

impl Provisioning {
    /// POST `/Groups`.
    pub async fn create_group(
        &self,
        ctx: &Ctx,
        body: &Value,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let n = resource::normalize(ResourceType::Group, body)?;
        let sel = q.selection(ResourceType::Group);
        let want = sel.wants("members");
        let c = ctx.clone();
        let view = self.store.write(move |tx: &dyn WriteTx| {
            let now = c.clock.stamp();
            let f = resource::group_fields(&n.doc);
            if tx.scim_group_by_name(&c.realm, &f.display_name)?.is_some() {
                return Err(ScimError::Uniqueness(format!(
                    "a group named \"{}\" is already provisioned (names are unique per provider, case-insensitively)",
                    f.display_name
                )));
            }
            let scim_id = c.new_id();
            let values = GroupValues {
                display_name: &f.display_name,
                external_id: f.external_id.as_deref(),
                doc: &n.doc,
            };
            let pk = tx.insert_scim_group(&c.realm, &scim_id, &values, &now)?;
            let changes: Vec<MemberChange> = n.members.clone().into_iter().map(MemberChange::Add).collect();
            let affected = apply_members(tx, &c, pk, &changes)?;
            for user_id in &affected {
                reconcile(tx, &c, *user_id)?;
            }
            record(tx, &c, "scim.group.create", None, None, &format!("group {scim_id} \"{}\", {} member(s)", f.display_name, affected.len()))?;
            let row = tx.scim_group(&c.realm, &scim_id)?.ok_or_else(|| ScimError::Internal("the created group cannot be read back".into()))?;
            Ok::<_, ScimError>(group_view(tx, row, want)?)
        })
        .await?;
        let r = render_group(ctx, &view);
        Ok(Resource {
            body: sel.apply(r.body),
            ..r
        })
    }

    /// PUT `/Groups/{id}`. A body without `members` leaves the members as they are.
    pub async fn replace_group(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Value,
        if_match: Option<String>,
        q: &ListQuery,
    ) -> Result<Resource, ScimError> {
        let n = resource::normalize(ResourceType::Group, body)?;
        let sel = q.selection(ResourceType::Group);
        let want = sel.wants("members");
        let (c, id) = (ctx.clone(), id.to_owned());
        let view = self
            .store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_group(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::Group, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let changes: Vec<MemberChange> = n
                    .members
                    .clone()
                    .into_iter()
                    .map(MemberChange::Replace)
                    .collect();
                update_group(tx, &c, &row, n.doc.clone(), &changes, "replace")?;
                let row = tx
                    .scim_group(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::Group, &id))?;
                Ok::<_, ScimError>(group_view(tx, row, want)?)
            })
            .await?;
        let r = render_group(ctx, &view);
        Ok(Resource {
            body: sel.apply(r.body),
            ..r
        })
    }

    /// PATCH `/Groups/{id}`. Answered with 204 and the new ETag (Entra sends it and expects 204: IdP quirk S4), so a
    /// member change never renders the member list.
    pub async fn patch_group(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Value,
        if_match: Option<String>,
    ) -> Result<String, ScimError> {
        let ops = patch::parse_request(body)?;
        let (c, id) = (ctx.clone(), id.to_owned());
        self.store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_group(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::Group, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let patched = patch::apply(ResourceType::Group, &row.doc, &ops)?;
                update_group(tx, &c, &row, patched.doc, &patched.members, "patch")?;
                let row = tx
                    .scim_group(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::Group, &id))?;
                Ok(resource::etag(row.version))
            })
            .await
    }

    /// DELETE `/Groups/{id}`: members of a mapped group lose the teams it granted.
    pub async fn delete_group(
        &self,
        ctx: &Ctx,
        id: &str,
        if_match: Option<String>,
    ) -> Result<(), ScimError> {
        let (c, id) = (ctx.clone(), id.to_owned());
        self.store
            .write(move |tx: &dyn WriteTx| {
                let row = tx
                    .scim_group(&c.realm, &id)?
                    .ok_or_else(|| not_found(ResourceType::Group, &id))?;
                check_version(if_match.as_deref(), row.version)?;
                let (_, is_mapped) = mapped(
                    &c,
                    &row.scim_id,
                    &row.display_name,
                    row.external_id.as_deref(),
                );
                let affected = if is_mapped {
                    tx.scim_member_refs(row.pk)?
                } else {
                    Vec::new()
                };
                tx.delete_scim_group(row.pk)?;
                for m in &affected {
                    reconcile(tx, &c, m.user_id)?;
                }
                record(
                    tx,
                    &c,
                    "scim.group.delete",
                    None,
                    None,
                    &format!("group {} \"{}\"", row.scim_id, row.display_name),
                )
            })
            .await
    }
}

/// The key team mappings use for a group (qualified by the caller's tenant), and whether it
/// maps to any team. Changes to an unmapped group cannot change anyone's teams, so bulk
/// reconciles skip them. Called inside write jobs, so it reads the config in force (see
/// [`LiveConfig`]).
pub(super) fn mapped(
    ctx: &Ctx,
    scim_id: &str,
    display_name: &str,
    external_id: Option<&str>,
) -> (String, bool) {
    let config = ctx.live.get();
    let group_key = config
        .provider(&ctx.provider)
        .map(|p| p.group_key)
        .unwrap_or(GroupKey::Id);
    let key = qualify(
        ctx.realm.tenant.as_deref(),
        match group_key {
            GroupKey::Id => external_id.unwrap_or(scim_id),
            GroupKey::Name => display_name,
        },
    );
    let is_mapped = ProviderId::parse(&ctx.provider)
        .map(|p| {
            config
                .policy()
                .mappings
                .teams_for(&p, &key)
                .next()
                .is_some()
        })
        .unwrap_or(false);
    (MappingTable::normalise(&key), is_mapped)
}

/// Resolve member ids to (member row, login identity); an unknown id is `invalidValue`
/// (security case 67), unless `lenient` (removals of users already gone).
fn resolve_members(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    ids: &[String],
    lenient: bool,
) -> Result<Vec<MemberRef>, ScimError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match tx.scim_member(&ctx.realm, id)? {
            Some(pair) => out.push(pair),
            None if lenient => {}
            None => {
                return Err(ScimError::InvalidValue(format!(
                    "member \"{}\" is not a User of this provider (nested groups are not supported)",
                    id.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    Ok(out)
}

/// Apply member changes in order, one row at a time; returns the login identities whose
/// membership changed.
fn apply_members(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    group: i64,
    changes: &[MemberChange],
) -> Result<BTreeSet<i64>, ScimError> {
    let mut affected = BTreeSet::new();
    for change in changes {
        match change {
            MemberChange::Add(ids) => {
                for m in resolve_members(tx, ctx, ids, false)? {
                    if tx.add_scim_member(group, m.member)? {
                        affected.insert(m.user_id);
                    }
                }
            }
            MemberChange::Remove(ids) => {
                for m in resolve_members(tx, ctx, ids, true)? {
                    if tx.remove_scim_member(group, m.member)? {
                        affected.insert(m.user_id);
                    }
                }
            }
            MemberChange::RemoveMatching(ids) => {
                let mut removed = 0;
                for m in resolve_members(tx, ctx, ids, true)? {
                    if tx.remove_scim_member(group, m.member)? {
                        affected.insert(m.user_id);
                        removed += 1;
                    }
                }
                if removed == 0 {
                    return Err(ScimError::NoTarget(
                        "the members filter matches no member of this group".into(),
                    ));
                }
            }
            MemberChange::RemoveAll => {
                affected.extend(tx.scim_member_refs(group)?.into_iter().map(|m| m.user_id));
                tx.remove_all_scim_members(group)?;
            }
            MemberChange::Replace(ids) => {
                let wanted = resolve_members(tx, ctx, ids, false)?;
                let current = tx.scim_member_refs(group)?;
                for m in &current {
                    if !wanted.iter().any(|w| w.member == m.member)
                        && tx.remove_scim_member(group, m.member)?
                    {
                        affected.insert(m.user_id);
                    }
                }
                for m in wanted {
                    if tx.add_scim_member(group, m.member)? {
                        affected.insert(m.user_id);
                    }
                }
            }
        }
    }
    Ok(affected)
}

/// Write a group's new document and member changes, and reconcile whoever is affected.
fn update_group(
    tx: &dyn WriteTx,
    ctx: &Ctx,
    row: &GroupRow,
    doc: Map<String, Value>,
    changes: &[MemberChange],
    why: &str,
) -> Result<(), ScimError> {
    let now = ctx.clock.stamp();
    let f = resource::group_fields(&doc);
    let doc_changed = doc != row.doc;
    let mut affected = BTreeSet::new();
    if doc_changed {
        if fold(&f.display_name) != fold(&row.display_name)
            && let Some(other) = tx.scim_group_by_name(&ctx.realm, &f.display_name)?
            && other.pk != row.pk
        {
            return Err(ScimError::Uniqueness(format!(
                "a group named \"{}\" is already provisioned",
                f.display_name
            )));
        }
        let (old_key, old_mapped) = mapped(
            ctx,
            &row.scim_id,
            &row.display_name,
            row.external_id.as_deref(),
        );
        let (new_key, new_mapped) =
            mapped(ctx, &row.scim_id, &f.display_name, f.external_id.as_deref());
        if old_key != new_key && (old_mapped || new_mapped) {
            // The key the mappings see changed: every member's teams may change.
            affected.extend(tx.scim_member_refs(row.pk)?.into_iter().map(|m| m.user_id));
        }
        let values = GroupValues {
            display_name: &f.display_name,
            external_id: f.external_id.as_deref(),
            doc: &doc,
        };
        tx.update_scim_group(row.pk, &values, &now)?;
    }
    let changed_members = apply_members(tx, ctx, row.pk, changes)?;
    if !changed_members.is_empty() && !doc_changed {
        tx.touch_scim_group(row.pk, &now)?;
    }
    let n_members = changed_members.len();
    affected.extend(changed_members);
    for user_id in &affected {
        reconcile(tx, ctx, *user_id)?;
    }
    if doc_changed || n_members > 0 {
        record(
            tx,
            ctx,
            "scim.group.update",
            None,
            None,
            &format!(
                "group {} \"{}\", {why}, {n_members} membership change(s)",
                row.scim_id, f.display_name
            ),
        )?;
    }
    Ok(())
}
