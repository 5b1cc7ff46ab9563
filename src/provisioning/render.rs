//! Stored SCIM rows rendered as resources (RFC 7643 §3.1: `id`, `schemas`, `meta`), with the
//! related lists (`groups` of a user, `members` of a group) read only when wanted.

use serde_json::{Value, json};

use super::context::{Ctx, Resource};
use crate::domain::scim::ResourceType;
use crate::domain::scim::resource::{self, Meta};
use crate::store::scim::{GroupRow, Member, UserRow};
use crate::store::{ReadTx, StoreError};

/// A user as the store holds it, with the groups to render when wanted.
pub(super) struct UserView {
    pub(super) row: UserRow,
    pub(super) groups: Option<Vec<(String, String)>>,
}

pub(super) struct GroupView {
    pub(super) row: GroupRow,
    pub(super) members: Option<Vec<Member>>,
}

pub(super) fn render_user(ctx: &Ctx, v: &UserView) -> Resource {
    let location = ctx.location(ResourceType::User, &v.row.scim_id);
    // `active` as assigned: an unassigned one (never sent, or removed by a PATCH) is not
    // rendered (RFC 7644 §3.5.2.2), and reads as active for access (see `users`).
    let mut extra = Vec::new();
    if v.row.doc.contains_key("active") {
        extra.push(("active", Value::Bool(v.row.active)));
    }
    if let Some(gs) = v.groups.as_ref().filter(|g| !g.is_empty()) {
        let items: Vec<Value> = gs
            .iter()
            .map(|(id, name)| {
                json!({
                    "value": id,
                    "$ref": ctx.location(ResourceType::Group, id),
                    "display": name,
                    "type": "direct",
                })
            })
            .collect();
        extra.push(("groups", Value::Array(items)));
    }
    let meta = Meta {
        created: v.row.created_at.clone(),
        last_modified: v.row.updated_at.clone(),
        version: v.row.version,
        location: location.clone(),
    };
    Resource {
        body: resource::render(ResourceType::User, &v.row.scim_id, &v.row.doc, &meta, extra),
        etag: resource::etag(v.row.version),
        location,
    }
}

pub(super) fn render_group(ctx: &Ctx, v: &GroupView) -> Resource {
    let location = ctx.location(ResourceType::Group, &v.row.scim_id);
    let mut extra = Vec::new();
    if let Some(ms) = v.members.as_ref().filter(|m| !m.is_empty()) {
        let items: Vec<Value> = ms
            .iter()
            .map(|m| {
                let mut item = json!({
                    "value": m.scim_id,
                    "$ref": ctx.location(ResourceType::User, &m.scim_id),
                    "type": "User",
                });
                if let (Some(d), Some(obj)) = (&m.display, item.as_object_mut()) {
                    obj.insert("display".into(), Value::String(d.clone()));
                }
                item
            })
            .collect();
        extra.push(("members", Value::Array(items)));
    }
    let meta = Meta {
        created: v.row.created_at.clone(),
        last_modified: v.row.updated_at.clone(),
        version: v.row.version,
        location: location.clone(),
    };
    Resource {
        body: resource::render(
            ResourceType::Group,
            &v.row.scim_id,
            &v.row.doc,
            &meta,
            extra,
        ),
        etag: resource::etag(v.row.version),
        location,
    }
}

pub(super) fn user_view(
    tx: &dyn ReadTx,
    row: UserRow,
    want_groups: bool,
) -> Result<UserView, StoreError> {
    let groups = if want_groups {
        Some(tx.scim_groups_of_member(row.pk)?)
    } else {
        None
    };
    Ok(UserView { row, groups })
}

pub(super) fn group_view(
    tx: &dyn ReadTx,
    row: GroupRow,
    want_members: bool,
) -> Result<GroupView, StoreError> {
    // `excludedAttributes=members` (or an `attributes` list without it) never reads members.
    let members = if want_members {
        Some(tx.scim_members(row.pk)?)
    } else {
        None
    };
    Ok(GroupView { row, members })
}
