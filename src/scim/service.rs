//! One function per SCIM operation. Each write runs as one job of the store's writer, inside
//! the savepoint the writer gives every job: validation, the change, the reconcile of every affected user (source
//! `scim`), session revocation when access is lost, and the audit rows naming the request all
//! commit together or not at all, and the 2xx goes out only after that commit is durable.
//!
//! Decisions made here (documented in the README):
//! - A user without `externalId` is linked to the login subject `scim:<SCIM id>`, which no
//!   login can produce; setting `externalId` later moves the link to the real identity.
//! - `externalId` of a user is immutable once set: it is the login identity (SECURITY.md 64).
//! - POST with the `userName` of an inactive user revives it (Okta K6): the same resource when
//!   the externalId matches, a fresh one (the old identity stays disabled) when it does not.
//! - DELETE keeps the login identity disabled: the person cannot sign in until re-provisioned.
//! - Removing a member who is not one through the value-list form is a no-op; through a
//!   `members[value eq ...]` path that matches nobody it is `noTarget` (SECURITY.md 65).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter;
use super::patch::{self, MemberChange};
use super::resource::{self, Meta, Selection};
use super::{DEFAULT_COUNT, LIST_RESPONSE, MAX_RESULTS, ResourceType, SEARCH_REQUEST};
use crate::config::{Config, GroupKey, LiveConfig};
use crate::domain::ProviderId;
use crate::domain::reconcile::MappingTable;
use crate::store::audit::{self, Entry, Trigger};
use crate::store::scim::filter_sql::{self, SqlFilter};
use crate::store::scim::fold;
use crate::store::scim::groups::{self, GroupRow, GroupValues};
use crate::store::scim::users::{self, UserRow, UserValues};
use crate::store::{Store, StoreError, memberships, sessions};

/// The caller of one SCIM request: the provider its token belongs to, the config in force,
/// and what audit rows should say triggered the change.
#[derive(Clone)]
pub struct Ctx {
    pub provider: String,
    /// The config when the request began: for reading and shaping resources.
    pub config: Arc<Config>,
    /// The config in force, read again inside write jobs to reconcile (see [`LiveConfig`]).
    live: Arc<LiveConfig>,
    /// `{public_url}/scim/v2/{provider}`: the base of every `meta.location`.
    pub base_url: String,
    pub trigger: Trigger,
}

impl Ctx {
    pub fn new(
        provider: &str,
        live: &Arc<LiveConfig>,
        request_id: Option<String>,
        method: &str,
        path: &str,
    ) -> Self {
        let config = live.get();
        Self {
            base_url: config.server.url(&format!("/scim/v2/{provider}")),
            provider: provider.to_owned(),
            config,
            live: live.clone(),
            trigger: Trigger::new("scim", request_id, Some(format!("SCIM {method} {path}"))),
        }
    }

    fn location(&self, rt: ResourceType, id: &str) -> String {
        format!("{}/{}/{}", self.base_url, rt.endpoint(), id)
    }
}

/// A rendered resource and what its response headers need.
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Value,
    pub etag: String,
    pub location: String,
}

/// The query of a list or `.search` request, as received (RFC 7644 §3.4.2, §3.4.3).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl ListQuery {
    /// Read a SearchRequest body (POST `.search`).
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let obj = body.as_object().ok_or_else(|| {
            ScimError::InvalidSyntax("the body must be a SearchRequest object".into())
        })?;
        let get = |k: &str| {
            obj.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let is_search = get("schemas").and_then(Value::as_array).is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST))
            })
        });
        if !is_search {
            return Err(ScimError::InvalidSyntax(format!(
                "\"schemas\" must contain \"{SEARCH_REQUEST}\""
            )));
        }
        let text = |k: &str| -> Result<Option<String>, ScimError> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) if k != "filter" => Ok(Some(n.to_string())),
                Some(Value::Array(items)) if k.ends_with("ttributes") => Ok(Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                Some(_) => Err(ScimError::InvalidValue(format!(
                    "\"{k}\" has the wrong type"
                ))),
            }
        };
        Ok(Self {
            filter: text("filter")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }

    fn selection(&self, rt: ResourceType) -> Selection {
        Selection::parse(
            rt,
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }

    /// RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; count is clamped to
    /// maxResults. Values must be integers (IDP-QUIRKS K1).
    fn page(&self) -> Result<(usize, usize), ScimError> {
        let int = |name: &str, v: &Option<String>| -> Result<Option<i64>, ScimError> {
            v.as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| ScimError::InvalidValue(format!("{name} must be an integer")))
                })
                .transpose()
        };
        let start = int("startIndex", &self.start_index)?.unwrap_or(1).max(1);
        let count = match int("count", &self.count)? {
            None => DEFAULT_COUNT,
            Some(c) => usize::try_from(c.max(0)).unwrap_or(0).min(MAX_RESULTS),
        };
        Ok((usize::try_from(start).unwrap_or(1), count))
    }
}

/// Whether an `If-Match` header allows a write on `version` (RFC 7644 §3.14, RFC 7232 §3.1
/// with weak comparison, since teamgate's ETags are weak).
pub fn if_match_ok(header: Option<&str>, version: i64) -> bool {
    let Some(header) = header else { return true };
    let want = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == want)
}

fn check_version(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    if if_match_ok(if_match, version) {
        Ok(())
    } else {
        Err(ScimError::PreconditionFailed)
    }
}

/// A new SCIM id: a fixed-width millisecond timestamp, then 96 random bits. Time-ordered ids
/// land at the right edge of the unique index instead of on a random page, so a batch of
/// creations dirties a few index pages rather than one per request (measured under load);
/// the random part keeps them unguessable.
fn new_id() -> String {
    use base64::Engine;
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let random: [u8; 12] = rand::random();
    format!(
        "{:011x}{}",
        millis.max(0),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

fn not_found(rt: ResourceType, id: &str) -> ScimError {
    ScimError::NotFound(format!(
        "{} {} not found",
        rt.name(),
        id.chars().take(64).collect::<String>()
    ))
}

/// Run `f` as one write job. The writer runs each job in a savepoint and rolls it back when
/// the job fails, so a refused request leaves nothing behind; the typed SCIM error travels
/// beside the job, since the writer only speaks `StoreError`.
async fn write<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Connection) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let refusal: Arc<Mutex<Option<ScimError>>> = Arc::default();
    let slot = refusal.clone();
    let outcome = store
        .write(move |conn| {
            f(conn).map_err(|e| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(e);
                }
                StoreError::Refused("SCIM request refused".into())
            })
        })
        .await;
    match outcome {
        Ok(v) => Ok(v),
        Err(StoreError::Refused(why)) => {
            let taken = refusal.lock().ok().and_then(|mut s| s.take());
            Err(taken.unwrap_or(ScimError::Internal(why)))
        }
        Err(e) => Err(e.into()),
    }
}

// -----------------------------------------------------------------------------------------
// Reads

/// A user as the store holds it, with the groups to render when wanted.
struct UserView {
    row: UserRow,
    groups: Option<Vec<(String, String)>>,
}

struct GroupView {
    row: GroupRow,
    members: Option<Vec<groups::Member>>,
}

fn render_user(ctx: &Ctx, v: &UserView) -> Resource {
    let location = ctx.location(ResourceType::User, &v.row.scim_id);
    let mut extra = vec![("active", Value::Bool(v.row.active))];
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

fn render_group(ctx: &Ctx, v: &GroupView) -> Resource {
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

fn user_view(conn: &Connection, row: UserRow, want_groups: bool) -> crate::store::Result<UserView> {
    let groups = if want_groups {
        Some(users::groups(conn, row.pk)?)
    } else {
        None
    };
    Ok(UserView { row, groups })
}

fn group_view(
    conn: &Connection,
    row: GroupRow,
    want_members: bool,
) -> crate::store::Result<GroupView> {
    // `excludedAttributes=members` (or an `attributes` list without it) never reads members.
    let members = if want_members {
        Some(groups::members(conn, row.pk)?)
    } else {
        None
    };
    Ok(GroupView { row, members })
}

/// GET `/{Users|Groups}/{id}`.
pub async fn get(
    store: &Store,
    ctx: &Ctx,
    rt: ResourceType,
    id: &str,
    q: &ListQuery,
) -> Result<Resource, ScimError> {
    let sel = q.selection(rt);
    let (provider, key) = (ctx.provider.clone(), id.to_owned());
    let resource = match rt {
        ResourceType::User => {
            let want = sel.wants("groups");
            let view = store
                .read(move |conn| {
                    users::get(conn, &provider, &key)?
                        .map(|r| user_view(conn, r, want))
                        .transpose()
                })
                .await?
                .ok_or_else(|| not_found(rt, id))?;
            render_user(ctx, &view)
        }
        ResourceType::Group => {
            let want = sel.wants("members");
            let view = store
                .read(move |conn| {
                    groups::get(conn, &provider, &key)?
                        .map(|r| group_view(conn, r, want))
                        .transpose()
                })
                .await?
                .ok_or_else(|| not_found(rt, id))?;
            render_group(ctx, &view)
        }
    };
    Ok(Resource {
        body: sel.apply(resource.body),
        ..resource
    })
}

/// GET `/{Users|Groups}` and POST `/.search`: a ListResponse (RFC 7644 §3.4.2).
pub async fn list(
    store: &Store,
    ctx: &Ctx,
    rt: ResourceType,
    q: &ListQuery,
) -> Result<Value, ScimError> {
    let (start, count) = q.page()?;
    let sql: Option<SqlFilter> = match q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => {
            let cond = filter::compile(rt, f)?;
            Some(
                filter_sql::translate(rt, &cond, &ctx.provider)
                    .map_err(|e| ScimError::InvalidFilter(e.0))?,
            )
        }
    };
    let sel = q.selection(rt);
    let provider = ctx.provider.clone();
    let offset = start - 1;
    let (total, resources) = match rt {
        ResourceType::User => {
            let want = sel.wants("groups");
            let (total, views) = store
                .read(move |conn| {
                    let (total, rows) = users::list(conn, &provider, sql.as_ref(), offset, count)?;
                    let views = rows
                        .into_iter()
                        .map(|r| user_view(conn, r, want))
                        .collect::<crate::store::Result<Vec<_>>>()?;
                    Ok((total, views))
                })
                .await?;
            (
                total,
                views
                    .iter()
                    .map(|v| sel.apply(render_user(ctx, v).body))
                    .collect::<Vec<_>>(),
            )
        }
        ResourceType::Group => {
            let want = sel.wants("members");
            let (total, views) = store
                .read(move |conn| {
                    let (total, rows) = groups::list(conn, &provider, sql.as_ref(), offset, count)?;
                    let views = rows
                        .into_iter()
                        .map(|r| group_view(conn, r, want))
                        .collect::<crate::store::Result<Vec<_>>>()?;
                    Ok((total, views))
                })
                .await?;
            (
                total,
                views
                    .iter()
                    .map(|v| sel.apply(render_group(ctx, v).body))
                    .collect::<Vec<_>>(),
            )
        }
    };
    // Entra's Test Connection expects 200 with totalResults 0 and an empty Resources (S6).
    Ok(json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    }))
}

// -----------------------------------------------------------------------------------------
// Writes: shared steps

/// Reconcile one user for a SCIM change; when it leaves them with no team and the config
/// refuses such users, their sessions end now rather than at the next login.
fn reconcile(conn: &Connection, ctx: &Ctx, user_id: i64) -> Result<(), ScimError> {
    let config = ctx.live.get();
    let plan = memberships::reconcile_user(conn, user_id, &config, &ctx.trigger)?;
    if !plan.remove.is_empty()
        && config.defaults.refuse_without_teams
        && memberships::current(conn, user_id)?.is_empty()
    {
        sessions::revoke_user(conn, user_id)?;
    }
    Ok(())
}

fn record(
    conn: &Connection,
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
    audit::record(
        conn,
        &crate::store::now(),
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
/// revocation on deactivation (SECURITY.md 51), then the reconcile.
fn settle_identity(
    conn: &Connection,
    ctx: &Ctx,
    user_id: i64,
    active: bool,
    now: &str,
) -> Result<(), ScimError> {
    users::set_identity_active(conn, user_id, active, now)?;
    if !active {
        // Idempotent: a session minted before this commit stops working on its next request.
        sessions::revoke_user(conn, user_id)?;
    }
    reconcile(conn, ctx, user_id)
}

fn ensure_user_name_free(
    conn: &Connection,
    ctx: &Ctx,
    user_name: &str,
    except: Option<i64>,
) -> Result<(), ScimError> {
    match users::by_user_name(conn, &ctx.provider, user_name)? {
        Some(other) if Some(other.pk) != except => Err(ScimError::Uniqueness(format!(
            "userName \"{user_name}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)"
        ))),
        _ => Ok(()),
    }
}

// -----------------------------------------------------------------------------------------
// Users

/// POST `/Users`.
pub async fn create_user(
    store: &Store,
    ctx: &Ctx,
    body: &Value,
    q: &ListQuery,
) -> Result<Resource, ScimError> {
    let n = resource::normalize(ResourceType::User, body)?;
    let sel = q.selection(ResourceType::User);
    let want = sel.wants("groups");
    let c = ctx.clone();
    let view = write(store, move |conn| {
        let now = super::now();
        let f = resource::user_fields(&n.doc);
        if let Some(existing) = users::by_user_name(conn, &c.provider, &f.user_name)? {
            if existing.active {
                return Err(ScimError::Uniqueness(format!(
                    "userName \"{}\" is already provisioned (compared case-insensitively, RFC 7643 §4.1.1)",
                    f.user_name
                )));
            }
            if existing.external_id == f.external_id {
                // Okta re-creates a deactivated user with the same userName (K6): revive it.
                let row = update_user(conn, &c, existing, n.doc, &now, "revive")?;
                return Ok(user_view(conn, row, want)?);
            }
            // Same userName, another person: the old identity stays disabled, a new one starts.
            delete_user_row(conn, &c, &existing, &now, "replaced by a new user with the same userName")?;
        }
        let scim_id = new_id();
        let subject = f.external_id.clone().unwrap_or_else(|| format!("scim:{scim_id}"));
        let active = f.active.unwrap_or(true);
        let user_id = users::link_identity(conn, &c.provider, &subject, f.email.as_deref(), f.name.as_deref(), active, &now)?;
        if users::by_user_id(conn, user_id)?.is_some() {
            return Err(ScimError::Uniqueness("externalId is already provisioned for another user".into()));
        }
        let values = UserValues {
            user_name: &f.user_name,
            external_id: f.external_id.as_deref(),
            active,
            doc: &n.doc,
        };
        let pk = users::insert(conn, &c.provider, &scim_id, user_id, &values, &now)?;
        settle_identity(conn, &c, user_id, active, &now)?;
        record(conn, &c, "scim.user.create", Some(user_id), Some(&f.user_name), &format!("id {scim_id}"))?;
        // A new user is in no group yet: render it from what was written, without reading back.
        let row = UserRow {
            pk,
            scim_id,
            provider: c.provider.clone(),
            user_id,
            external_id: f.external_id,
            active,
            doc: n.doc,
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

/// Write a user's new document and settle everything that depends on it.
fn update_user(
    conn: &Connection,
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
        ensure_user_name_free(conn, ctx, &f.user_name, Some(row.pk))?;
    }
    let mut user_id = row.user_id;
    if let (None, Some(ext)) = (&row.external_id, &external_id) {
        // First externalId: move the link from "scim:<id>" to the real login identity.
        let linked = users::link_identity(
            conn,
            &ctx.provider,
            ext,
            f.email.as_deref(),
            f.name.as_deref(),
            active,
            now,
        )?;
        if users::by_user_id(conn, linked)?.is_some_and(|other| other.pk != row.pk) {
            return Err(ScimError::Uniqueness(
                "externalId is already provisioned for another user".into(),
            ));
        }
        users::relink(conn, row.pk, linked)?;
        settle_identity(conn, ctx, row.user_id, false, now)?;
        user_id = linked;
    }
    let values = UserValues {
        user_name: &f.user_name,
        external_id: external_id.as_deref(),
        active,
        doc: &doc,
    };
    users::update(conn, row.pk, &values, now)?;
    settle_identity(conn, ctx, user_id, active, now)?;
    let action = match (row.active, active) {
        (true, false) => "scim.user.deactivate",
        (false, true) => "scim.user.activate",
        _ => "scim.user.update",
    };
    record(
        conn,
        ctx,
        action,
        Some(user_id),
        Some(&f.user_name),
        &format!("id {}, {why}", row.scim_id),
    )?;
    users::get(conn, &ctx.provider, &row.scim_id)?
        .ok_or_else(|| ScimError::Internal("the updated user cannot be read back".into()))
}

/// PUT `/Users/{id}`: replace the user (RFC 7644 §3.5.1).
pub async fn replace_user(
    store: &Store,
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
    let view = write(store, move |conn| {
        let row = users::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::User, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        let row = update_user(conn, &c, row, n.doc, &super::now(), "replace")?;
        Ok(user_view(conn, row, want)?)
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
    store: &Store,
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
    let view = write(store, move |conn| {
        let row = users::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::User, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        let mut base = row.doc.clone();
        base.entry("active").or_insert(Value::Bool(row.active));
        let patched = patch::apply(ResourceType::User, &base, &ops)?;
        let row = if patched.doc == base {
            row
        } else {
            update_user(conn, &c, row, patched.doc, &super::now(), "patch")?
        };
        Ok(user_view(conn, row, want)?)
    })
    .await?;
    let r = render_user(ctx, &view);
    Ok(Resource {
        body: sel.apply(r.body),
        ..r
    })
}

fn delete_user_row(
    conn: &Connection,
    ctx: &Ctx,
    row: &UserRow,
    now: &str,
    why: &str,
) -> Result<(), ScimError> {
    users::delete(conn, row.pk)?;
    settle_identity(conn, ctx, row.user_id, false, now)?;
    let name = row.doc.get("userName").and_then(Value::as_str);
    record(
        conn,
        ctx,
        "scim.user.delete",
        Some(row.user_id),
        name,
        &format!("id {}, {why}", row.scim_id),
    )
}

/// DELETE `/Users/{id}`: the user goes; their login identity stays, disabled.
pub async fn delete_user(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    if_match: Option<String>,
) -> Result<(), ScimError> {
    let (c, id) = (ctx.clone(), id.to_owned());
    write(store, move |conn| {
        let row = users::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::User, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        delete_user_row(conn, &c, &row, &super::now(), "delete")
    })
    .await
}

// -----------------------------------------------------------------------------------------
// Groups

/// The key team mappings use for a group, and whether it maps to any team. Changes to an
/// unmapped group cannot change anyone's teams, so bulk reconciles skip them. Called inside
/// write jobs, so it reads the config in force (see [`LiveConfig`]).
fn mapped(
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
    let key = match group_key {
        GroupKey::Id => external_id.unwrap_or(scim_id).to_owned(),
        GroupKey::Name => display_name.to_owned(),
    };
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
/// (SECURITY.md 67), unless `lenient` (removals of users already gone).
fn resolve_members(
    conn: &Connection,
    ctx: &Ctx,
    ids: &[String],
    lenient: bool,
) -> Result<Vec<(i64, i64)>, ScimError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match users::resolve(conn, &ctx.provider, id)? {
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
    conn: &Connection,
    ctx: &Ctx,
    group: i64,
    changes: &[MemberChange],
) -> Result<BTreeSet<i64>, ScimError> {
    let mut affected = BTreeSet::new();
    for change in changes {
        match change {
            MemberChange::Add(ids) => {
                for (member, user_id) in resolve_members(conn, ctx, ids, false)? {
                    if groups::add_member(conn, group, member)? {
                        affected.insert(user_id);
                    }
                }
            }
            MemberChange::Remove(ids) => {
                for (member, user_id) in resolve_members(conn, ctx, ids, true)? {
                    if groups::remove_member(conn, group, member)? {
                        affected.insert(user_id);
                    }
                }
            }
            MemberChange::RemoveMatching(ids) => {
                let mut removed = 0;
                for (member, user_id) in resolve_members(conn, ctx, ids, true)? {
                    if groups::remove_member(conn, group, member)? {
                        affected.insert(user_id);
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
                affected.extend(
                    groups::member_identities(conn, group)?
                        .into_iter()
                        .map(|(_, u)| u),
                );
                groups::remove_all_members(conn, group)?;
            }
            MemberChange::Replace(ids) => {
                let wanted = resolve_members(conn, ctx, ids, false)?;
                let current = groups::member_identities(conn, group)?;
                for (member, user_id) in &current {
                    if !wanted.iter().any(|(m, _)| m == member)
                        && groups::remove_member(conn, group, *member)?
                    {
                        affected.insert(*user_id);
                    }
                }
                for (member, user_id) in wanted {
                    if groups::add_member(conn, group, member)? {
                        affected.insert(user_id);
                    }
                }
            }
        }
    }
    Ok(affected)
}

/// POST `/Groups`.
pub async fn create_group(
    store: &Store,
    ctx: &Ctx,
    body: &Value,
    q: &ListQuery,
) -> Result<Resource, ScimError> {
    let n = resource::normalize(ResourceType::Group, body)?;
    let sel = q.selection(ResourceType::Group);
    let want = sel.wants("members");
    let c = ctx.clone();
    let view = write(store, move |conn| {
        let now = super::now();
        let f = resource::group_fields(&n.doc);
        if groups::by_display_name(conn, &c.provider, &f.display_name)?.is_some() {
            return Err(ScimError::Uniqueness(format!(
                "a group named \"{}\" is already provisioned (names are unique per provider, case-insensitively)",
                f.display_name
            )));
        }
        let scim_id = new_id();
        let values = GroupValues {
            display_name: &f.display_name,
            external_id: f.external_id.as_deref(),
            doc: &n.doc,
        };
        let pk = groups::insert(conn, &c.provider, &scim_id, &values, &now)?;
        let changes: Vec<MemberChange> = n.members.into_iter().map(MemberChange::Add).collect();
        let affected = apply_members(conn, &c, pk, &changes)?;
        for user_id in &affected {
            reconcile(conn, &c, *user_id)?;
        }
        record(conn, &c, "scim.group.create", None, None, &format!("group {scim_id} \"{}\", {} member(s)", f.display_name, affected.len()))?;
        let row = groups::get(conn, &c.provider, &scim_id)?.ok_or_else(|| ScimError::Internal("the created group cannot be read back".into()))?;
        Ok(group_view(conn, row, want)?)
    })
    .await?;
    let r = render_group(ctx, &view);
    Ok(Resource {
        body: sel.apply(r.body),
        ..r
    })
}

/// Write a group's new document and member changes, and reconcile whoever is affected.
fn update_group(
    conn: &Connection,
    ctx: &Ctx,
    row: &GroupRow,
    doc: Map<String, Value>,
    changes: &[MemberChange],
    why: &str,
) -> Result<(), ScimError> {
    let now = super::now();
    let f = resource::group_fields(&doc);
    let doc_changed = doc != row.doc;
    let mut affected = BTreeSet::new();
    if doc_changed {
        if fold(&f.display_name) != fold(&row.display_name)
            && let Some(other) = groups::by_display_name(conn, &ctx.provider, &f.display_name)?
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
            affected.extend(
                groups::member_identities(conn, row.pk)?
                    .into_iter()
                    .map(|(_, u)| u),
            );
        }
        let values = GroupValues {
            display_name: &f.display_name,
            external_id: f.external_id.as_deref(),
            doc: &doc,
        };
        groups::update(conn, row.pk, &values, &now)?;
    }
    let changed_members = apply_members(conn, ctx, row.pk, changes)?;
    if !changed_members.is_empty() && !doc_changed {
        groups::touch(conn, row.pk, &now)?;
    }
    let n_members = changed_members.len();
    affected.extend(changed_members);
    for user_id in &affected {
        reconcile(conn, ctx, *user_id)?;
    }
    if doc_changed || n_members > 0 {
        record(
            conn,
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

/// PUT `/Groups/{id}`. A body without `members` leaves the members as they are.
pub async fn replace_group(
    store: &Store,
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
    let view = write(store, move |conn| {
        let row = groups::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::Group, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        let changes: Vec<MemberChange> = n.members.into_iter().map(MemberChange::Replace).collect();
        update_group(conn, &c, &row, n.doc, &changes, "replace")?;
        let row = groups::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::Group, &id))?;
        Ok(group_view(conn, row, want)?)
    })
    .await?;
    let r = render_group(ctx, &view);
    Ok(Resource {
        body: sel.apply(r.body),
        ..r
    })
}

/// PATCH `/Groups/{id}`. Answered with 204 and the new ETag (Entra S4 expects 204), so a
/// member change never renders the member list.
pub async fn patch_group(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    body: &Value,
    if_match: Option<String>,
) -> Result<String, ScimError> {
    let ops = patch::parse_request(body)?;
    let (c, id) = (ctx.clone(), id.to_owned());
    write(store, move |conn| {
        let row = groups::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::Group, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        let patched = patch::apply(ResourceType::Group, &row.doc, &ops)?;
        update_group(conn, &c, &row, patched.doc, &patched.members, "patch")?;
        let row = groups::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::Group, &id))?;
        Ok(resource::etag(row.version))
    })
    .await
}

/// DELETE `/Groups/{id}`: members of a mapped group lose the teams it granted.
pub async fn delete_group(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    if_match: Option<String>,
) -> Result<(), ScimError> {
    let (c, id) = (ctx.clone(), id.to_owned());
    write(store, move |conn| {
        let row = groups::get(conn, &c.provider, &id)?
            .ok_or_else(|| not_found(ResourceType::Group, &id))?;
        check_version(if_match.as_deref(), row.version)?;
        let (_, is_mapped) = mapped(
            &c,
            &row.scim_id,
            &row.display_name,
            row.external_id.as_deref(),
        );
        let affected = if is_mapped {
            groups::member_identities(conn, row.pk)?
        } else {
            Vec::new()
        };
        groups::delete(conn, row.pk)?;
        for (_, user_id) in &affected {
            reconcile(conn, &c, *user_id)?;
        }
        record(
            conn,
            &c,
            "scim.group.delete",
            None,
            None,
            &format!("group {} \"{}\"", row.scim_id, row.display_name),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn if_match_accepts_star_weak_and_strong_forms_of_the_current_version() {
        assert!(if_match_ok(None, 3));
        assert!(if_match_ok(Some("*"), 3));
        assert!(if_match_ok(Some("W/\"3\""), 3));
        assert!(if_match_ok(Some("\"3\""), 3));
        assert!(if_match_ok(Some("W/\"1\", W/\"3\""), 3));
        assert!(!if_match_ok(Some("W/\"2\""), 3));
    }

    #[test]
    fn case_71_paging_values_are_clamped_and_must_be_integers() {
        let q = |s: Option<&str>, c: Option<&str>| ListQuery {
            start_index: s.map(str::to_owned),
            count: c.map(str::to_owned),
            ..ListQuery::default()
        };
        assert_eq!(q(None, None).page().unwrap(), (1, DEFAULT_COUNT));
        assert_eq!(q(Some("0"), Some("-5")).page().unwrap(), (1, 0));
        assert_eq!(
            q(Some("-3"), Some("100000")).page().unwrap(),
            (1, MAX_RESULTS)
        );
        assert_eq!(q(Some("11"), Some("10")).page().unwrap(), (11, 10));
        assert!(matches!(
            q(Some("one"), None).page(),
            Err(ScimError::InvalidValue(_))
        ));
        assert!(matches!(q(None, Some("1.5")), ListQuery { .. }));
        assert!(matches!(
            q(None, Some("1.5")).page(),
            Err(ScimError::InvalidValue(_))
        ));
    }

    #[test]
    fn a_search_request_body_becomes_a_list_query() {
        let q = ListQuery::from_search(&json!({
            "schemas": [SEARCH_REQUEST],
            "filter": "userName eq \"a\"",
            "startIndex": 2,
            "count": 5,
            "attributes": ["userName", "emails"],
        }))
        .unwrap();
        assert_eq!(q.filter.as_deref(), Some("userName eq \"a\""));
        assert_eq!(q.start_index.as_deref(), Some("2"));
        assert_eq!(q.attributes.as_deref(), Some("userName,emails"));
        assert!(matches!(
            ListQuery::from_search(&json!({"filter": "x"})),
            Err(ScimError::InvalidSyntax(_))
        ));
    }
}
