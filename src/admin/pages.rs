//! The `/admin` pages: users with their memberships and sources, one user explained, teams
//! with members and role bindings, mappings, SCIM status, the audit log with filters, and the
//! plan of the file on disk against the loaded config. Handlers are thin: check access, read
//! through the store, render an auto-escaped template. Every GET is read-only; the two forms
//! (reload the config, sign a user out everywhere) are POSTs checked by [`super::guard`].

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::guard::{self, Admin};
use crate::app::AppState;
use crate::config::Config;
use crate::domain::explain::{self, UserSummary};
use crate::domain::plan;
use crate::domain::reconcile::Source;
use crate::http::error::ErrorPage;
use crate::http::request_id::RequestId;
use crate::store::admin_queries::{self as q, AuditFilter};
use crate::store::audit::{self, Entry, Trigger};

/// Users per page of the users table.
const USERS_PER_PAGE: usize = 100;
/// Members listed per team on the teams page (the count is always exact).
const MEMBERS_PER_TEAM: usize = 50;
/// Audit rows per page.
const AUDIT_ROWS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/users", get(users))
        .route("/admin/users/{id}", get(user))
        .route("/admin/users/{id}/sign-out", post(sign_out_user))
        .route("/admin/teams", get(teams))
        .route("/admin/mappings", get(mappings))
        .route("/admin/scim", get(scim))
        .route("/admin/audit", get(audit_log))
        .route("/admin/plan", get(plan_page))
        .route("/admin/reload", post(reload))
}

/// What every admin page receives besides its own data.
#[derive(Serialize)]
struct Frame<'a, T: Serialize> {
    page: &'static str,
    admin_label: String,
    csrf: &'a str,
    data: T,
}

fn render<T: Serialize>(
    state: &AppState,
    rid: &RequestId,
    admin: &Admin,
    template: &str,
    page: &'static str,
    data: T,
) -> Response {
    let frame = Frame {
        page,
        admin_label: admin.signed_in.user.label(),
        csrf: &admin.signed_in.auth.csrf,
        data,
    };
    match state.templates.render(template, frame) {
        Ok(html) => guard::no_store(Html(html).into_response()),
        Err(e) => guard::no_store(ErrorPage::internal(&state.templates, rid, e).into_response()),
    }
}

fn internal(state: &AppState, rid: &RequestId, e: impl std::fmt::Display) -> Response {
    guard::no_store(ErrorPage::internal(&state.templates, rid, e).into_response())
}

/// `require_admin` with the request's own path as the return address.
async fn admin_for(
    state: &AppState,
    session: &Session,
    rid: &RequestId,
    uri: &OriginalUri,
) -> Result<Admin, Response> {
    let return_to = uri
        .0
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/admin");
    guard::require_admin(state, session, rid, return_to).await
}

#[derive(Deserialize)]
struct IndexQuery {
    reload: Option<String>,
}

async fn index(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
    Query(query): Query<IndexQuery>,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let facts = state
        .store
        .read(|conn| {
            let (_, users) = q::users_page(conn, None, 0, 0)?;
            Ok((
                users,
                q::last_reload(conn)?,
                q::applied(conn)?.map(|a| (a.path, a.at)),
            ))
        })
        .await;
    let (user_count, last_reload, applied) = match facts {
        Ok(f) => f,
        Err(e) => return internal(&state, &rid, e),
    };
    let config = &admin.config;
    let data = serde_json::json!({
        "config_path": config.path.display().to_string(),
        "applied": applied,
        "users": user_count,
        "teams": config.teams.len(),
        "mappings": config.policy().mappings.iter().count(),
        "providers": config.providers.iter().map(|p| serde_json::json!({
            "id": p.id.as_str(), "kind": p.kind.as_str(), "name": p.display_name, "scim": p.scim_enabled,
        })).collect::<Vec<_>>(),
        "last_reload": last_reload,
        "flash": query.reload,
        "admin_role": config.admin.role.as_str(),
        "admin_scope": config.admin.scope.as_ref().map(|s| s.to_string()),
    });
    render(&state, &rid, &admin, "admin_index.html", "index", data)
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<usize>,
}

async fn users(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
    Query(query): Query<UsersQuery>,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let page = query.page.unwrap_or(1).max(1);
    let search = query.q.clone().filter(|s| !s.trim().is_empty());
    let term = search.clone();
    let result = state
        .store
        .read(move |conn| {
            q::users_page(
                conn,
                term.as_deref(),
                USERS_PER_PAGE,
                (page - 1) * USERS_PER_PAGE,
            )
        })
        .await;
    let (rows, total) = match result {
        Ok(r) => r,
        Err(e) => return internal(&state, &rid, e),
    };
    let pages = usize::try_from(total)
        .unwrap_or(0)
        .div_ceil(USERS_PER_PAGE)
        .max(1);
    let href = |page: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = &search {
            query.append_pair("q", q);
        }
        format!(
            "/admin/users?{}",
            query.append_pair("page", &page.to_string()).finish()
        )
    };
    let data = serde_json::json!({
        "prev_href": (page > 1).then(|| href(page - 1)),
        "next_href": (page < pages).then(|| href(page + 1)),
        "q": search.clone().unwrap_or_default(),
        "users": rows,
        "total": total,
        "page": page,
        "pages": pages,
    });
    render(&state, &rid, &admin, "admin_users.html", "users", data)
}

#[derive(Deserialize)]
struct UserQuery {
    signed_out: Option<String>,
}

async fn user(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
    Path(public_id): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let config = admin.config.clone();
    let result = state
        .store
        .read(move |conn| {
            let Some(user) = q::user_by_public_id(conn, &public_id)? else {
                return Ok(None);
            };
            let (input, held) = q::explain_inputs(conn, &user, &config)?;
            let audit = q::audit(
                conn,
                &AuditFilter {
                    user_ids: vec![user.id],
                    limit: AUDIT_ROWS,
                    ..AuditFilter::default()
                },
            )?;
            let sessions = crate::store::sessions::count_for_user(conn, user.id)?;
            Ok(Some((user, input, held, audit, sessions)))
        })
        .await;
    let (user, input, held, audit, sessions) = match result {
        Ok(Some(found)) => found,
        Ok(None) => {
            return guard::no_store(
                ErrorPage::new(
                    &state.templates,
                    &rid,
                    axum::http::StatusCode::NOT_FOUND,
                    "No such user",
                    "No stored user has this id. Go back to the users list.",
                    "admin user page for an unknown id",
                )
                .into_response(),
            );
        }
        Err(e) => return internal(&state, &rid, e),
    };
    let summary = UserSummary {
        label: user.label(),
        public_id: user.public_id.clone(),
        provider: user.provider.clone(),
        subject: user.subject.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        active: user.active,
        last_login_at: user.last_login_at.clone(),
        claims_groups_at: user.claims_groups_at.clone(),
    };
    let explanation = explain::explain(summary, &input, &held, &super::config_view(&admin.config));
    let data = serde_json::json!({
        "explanation": explanation,
        "audit": audit,
        "sessions": sessions,
        "signed_out": query.signed_out.is_some(),
    });
    render(&state, &rid, &admin, "admin_user.html", "users", data)
}

async fn teams(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let members = match state
        .store
        .read(|conn| q::team_members(conn, MEMBERS_PER_TEAM))
        .await
    {
        Ok(m) => m,
        Err(e) => return internal(&state, &rid, e),
    };
    let config: &Config = &admin.config;
    let teams: Vec<serde_json::Value> = config
        .teams
        .iter()
        .map(|t| {
            let (count, rows) = members
                .get(t.id.as_str())
                .map(|(n, rows)| (*n, rows.clone()))
                .unwrap_or_default();
            serde_json::json!({
                "id": t.id.as_str(),
                "name": t.name,
                "roles": t.roles,
                "groups": t.groups.iter().map(|(p, g)| serde_json::json!({"provider": p.as_str(), "group": g})).collect::<Vec<_>>(),
                "config_members": t.members,
                "is_default": config.defaults.teams_without_groups.contains(&t.id),
                "member_count": count,
                "members": rows,
                "more": usize::try_from(count).unwrap_or(0) > MEMBERS_PER_TEAM,
            })
        })
        .collect();
    render(
        &state,
        &rid,
        &admin,
        "admin_teams.html",
        "teams",
        serde_json::json!({ "teams": teams }),
    )
}

async fn mappings(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let config: &Config = &admin.config;
    let view = super::config_view(config);
    let data = serde_json::json!({
        "mappings": view.mappings,
        "default_teams": view.teams_without_groups,
        "locked_users": view.locked_users,
        "providers": config.providers.iter().map(|p| serde_json::json!({
            "id": p.id.as_str(),
            "group_key": match p.group_key { crate::config::GroupKey::Id => "id", crate::config::GroupKey::Name => "name" },
        })).collect::<Vec<_>>(),
    });
    render(
        &state,
        &rid,
        &admin,
        "admin_mappings.html",
        "mappings",
        data,
    )
}

async fn scim(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let stored = match state.store.read(q::scim_status).await {
        Ok(t) => t,
        Err(e) => return internal(&state, &rid, e),
    };
    let activity = crate::metrics::scim_activity();
    let providers: Vec<serde_json::Value> = admin
        .config
        .providers
        .iter()
        .filter(|p| {
            p.scim_enabled
                || activity.contains_key(p.id.as_str())
                || stored.contains_key(p.id.as_str())
        })
        .map(|p| {
            serde_json::json!({
                "id": p.id.as_str(),
                "enabled": p.scim_enabled,
                "activity": activity.get(p.id.as_str()),
                "stored": stored.get(p.id.as_str()).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let data = serde_json::json!({ "providers": providers });
    render(&state, &rid, &admin, "admin_scim.html", "scim", data)
}

#[derive(Deserialize, Serialize, Default)]
struct AuditQuery {
    user: Option<String>,
    team: Option<String>,
    source: Option<String>,
    trigger: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn audit_log(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
    Query(query): Query<AuditQuery>,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let now = time::OffsetDateTime::now_utc();
    let mut problems = Vec::new();
    let mut time_of = |s: &Option<String>, name: &str| match non_empty(s)
        .map(|s| super::cli::parse_time(&s, now))
    {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            problems.push(format!("{name}: {e}"));
            None
        }
        None => None,
    };
    let since = time_of(&query.since, "since");
    let until = time_of(&query.until, "until");
    let source = match non_empty(&query.source) {
        Some(s) => match Source::parse(&s) {
            Some(src) => Some(src),
            None => {
                problems.push(format!(
                    "source: \"{s}\" is unknown; use claims, scim, config or default"
                ));
                None
            }
        },
        None => None,
    };
    let user = non_empty(&query.user);
    let filter = AuditFilter {
        user_ids: Vec::new(),
        user_label: user.clone(),
        team: non_empty(&query.team),
        source,
        trigger: non_empty(&query.trigger),
        since,
        until,
        limit: AUDIT_ROWS,
    };
    let rows = if problems.is_empty() {
        let result = state
            .store
            .read(move |conn| {
                let mut filter = filter;
                if let Some(u) = &user {
                    filter.user_ids = q::find_users(conn, u)?.into_iter().map(|u| u.id).collect();
                }
                q::audit(conn, &filter)
            })
            .await;
        match result {
            Ok(rows) => rows,
            Err(e) => return internal(&state, &rid, e),
        }
    } else {
        Vec::new()
    };
    let data = serde_json::json!({
        "filters": query,
        "problems": problems,
        "rows": rows,
        "limit": AUDIT_ROWS,
    });
    render(&state, &rid, &admin, "admin_audit.html", "audit", data)
}

async fn plan_page(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    uri: OriginalUri,
) -> Response {
    let admin = match admin_for(&state, &session, &rid, &uri).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let path = admin.config.path.clone();
    let loaded = match tokio::task::spawn_blocking(move || Config::load(&path)).await {
        Ok(loaded) => loaded,
        Err(e) => return internal(&state, &rid, e),
    };
    let data = match loaded {
        Err(errors) => serde_json::json!({
            "path": admin.config.path.display().to_string(),
            "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Ok(new) => {
            let new_view = super::config_view(&new);
            let old_view = super::config_view(&admin.config);
            let users = match state
                .store
                .read(move |conn| q::plan_users(conn, &new))
                .await
            {
                Ok(u) => u,
                Err(e) => return internal(&state, &rid, e),
            };
            let plan = plan::plan(&old_view, &new_view, &users);
            serde_json::json!({
                "path": admin.config.path.display().to_string(),
                "errors": [],
                "changes": !plan.is_empty(),
                "plan": plan,
                "memberships_added": plan.memberships_added(),
                "memberships_removed": plan.memberships_removed(),
            })
        }
    };
    render(&state, &rid, &admin, "admin_plan.html", "plan", data)
}

/// The CSRF token of a urlencoded form body. Read by hand rather than with `Form`, so that a
/// missing field or a wrong content type is the same 403 as a wrong token, not a 4xx of its own.
fn form_token(body: &Bytes) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

/// The admin a POST comes from, after every SECURITY.md 54 check.
async fn admin_post(
    state: &AppState,
    session: &Session,
    rid: &RequestId,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Admin, Response> {
    // Before anything else: a cross-site POST is refused even when it carries no cookie.
    let config = state.config.get();
    if let Err(why) = guard::check_origin(headers, &config) {
        return Err(guard::no_store(guard::refused(state, rid, why)));
    }
    let admin = guard::require_admin(state, session, rid, "/admin").await?;
    if let Err(why) = guard::check_post(headers, &admin, form_token(body).as_deref()) {
        return Err(guard::no_store(guard::refused(state, rid, why)));
    }
    Ok(admin)
}

async fn reload(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admin = match admin_post(&state, &session, &rid, &headers, &body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let cause = format!("admin page ({})", admin.signed_in.user.label());
    let outcome = match super::reload::reload(&state, &cause).await {
        Ok(_) => "applied",
        Err(_) => "refused",
    };
    guard::no_store(Redirect::to(&format!("/admin?reload={outcome}")).into_response())
}

async fn sign_out_user(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    Path(public_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admin = match admin_post(&state, &session, &rid, &headers, &body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let by = admin.signed_in.user.label();
    let id = public_id.clone();
    let request_id = rid.0.clone();
    let done = state
        .store
        .write(move |conn| {
            let Some(user) = q::user_by_public_id(conn, &id)? else {
                return Ok(false);
            };
            crate::store::sessions::revoke_user(conn, user.id)?;
            let trigger = Trigger::new("admin", Some(request_id), Some(format!("by {by}")));
            audit::record(
                conn,
                &crate::store::now(),
                &trigger,
                &Entry {
                    user_id: Some(user.id),
                    user_label: Some(&user.label()),
                    action: "user.sign_out_everywhere",
                    ..Entry::default()
                },
            )?;
            Ok(true)
        })
        .await;
    match done {
        Ok(true) => {
            let target = format!(
                "/admin/users/{}?signed_out=1",
                url::form_urlencoded::byte_serialize(public_id.as_bytes()).collect::<String>()
            );
            guard::no_store(Redirect::to(&target).into_response())
        }
        Ok(false) => guard::no_store(Redirect::to("/admin/users").into_response()),
        Err(e) => internal(&state, &rid, e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::plan::{ConfigView, Mapping, PlanUser, TeamDecl};
    use crate::domain::reconcile::{MembershipRow, UserInput};
    use crate::domain::{ProviderId, TeamId};
    use crate::http::templates::Templates;
    use crate::store::audit::AuditRow;
    use crate::store::memberships::StoredMembership;
    use crate::store::users::UserRecord;

    fn frame(page: &'static str, data: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "page": page, "admin_label": "root@example.com", "csrf": "tok<en>", "data": data })
    }

    fn user() -> UserRecord {
        UserRecord {
            id: 1,
            public_id: "pub-1".into(),
            provider: "demo".into(),
            subject: "s1".into(),
            email: Some("<b>x@example.com".into()),
            email_verified: true,
            name: Some("X".into()),
            active: true,
            session_generation: 0,
            claims_groups: Some(vec!["g1".into()]),
            claims_groups_at: Some("2024-01-01T00:00:00Z".into()),
            last_login_at: None,
        }
    }

    fn row() -> MembershipRow {
        MembershipRow {
            team: TeamId::parse("team1").unwrap(),
            source: Source::Claims,
            via: "g1".into(),
        }
    }

    fn audit_row() -> AuditRow {
        AuditRow {
            id: 1,
            at: "2024-01-01T00:00:00Z".into(),
            trigger: "login".into(),
            request_id: Some("rid".into()),
            user_id: Some(1),
            user_label: Some("x@example.com".into()),
            action: "membership.add".into(),
            team: Some("team1".into()),
            source: Some("claims".into()),
            via: Some("g1".into()),
            detail: None,
        }
    }

    fn view() -> ConfigView {
        let mut v = ConfigView::default();
        v.teams.insert(
            TeamId::parse("team1").unwrap(),
            TeamDecl {
                name: "Team 1".into(),
                ..TeamDecl::default()
            },
        );
        v.mappings.insert(Mapping::new(
            ProviderId::parse("demo").unwrap(),
            "g1",
            TeamId::parse("team1").unwrap(),
        ));
        v
    }

    fn input() -> UserInput {
        UserInput {
            provider: ProviderId::parse("demo").unwrap(),
            claims_groups: Some(vec!["g1".into(), "g2".into()]),
            scim_groups: None,
            config_teams: vec![],
            active: true,
            locked: false,
        }
    }

    /// Every admin template renders with data shaped as the handlers build it, and escapes it.
    #[test]
    fn every_admin_template_renders_with_representative_data() {
        let t = Templates::new().unwrap();
        let held = vec![crate::domain::explain::HeldMembership {
            row: row(),
            since: "2024".into(),
            confirmed_at: "2024".into(),
        }];
        let explanation = explain::explain(UserSummary::default(), &input(), &held, &view());
        let users = vec![PlanUser {
            label: "x@example.com".into(),
            public_id: "pub-1".into(),
            input: input(),
            current: BTreeSet::new(),
        }];
        let plan = plan::plan(&ConfigView::default(), &view(), &users);
        let overview = q::UserOverview {
            user: user(),
            memberships: vec![StoredMembership {
                row: row(),
                since: "2024".into(),
                confirmed_at: "2024".into(),
            }],
            sessions: 2,
        };
        let activity = crate::metrics::ScimActivity {
            requests: 3,
            errors: 1,
            last_request_at: Some("2024".into()),
            last_status: Some(201),
            last_error_at: Some("2024".into()),
            last_error_status: Some(409),
            by_status: [(201, 2), (409, 1)].into(),
        };
        let pages: Vec<(&str, &'static str, serde_json::Value)> = vec![
            (
                "admin_index.html",
                "index",
                serde_json::json!({
                    "config_path": "c.toml", "applied": ["c.toml", "2024"], "users": 1, "teams": 1, "mappings": 1,
                    "providers": [{"id": "demo", "kind": "demo", "name": "Demo", "scim": true}],
                    "last_reload": {"seq": 1, "at": "2024", "ok": false, "message": "bad <line>"},
                    "flash": "refused", "admin_role": "owner", "admin_scope": null,
                }),
            ),
            (
                "admin_users.html",
                "users",
                serde_json::json!({
                    "q": "x", "users": [overview], "total": 201, "page": 2, "pages": 3,
                    "prev_href": "/admin/users?q=x&page=1", "next_href": "/admin/users?q=x&page=3",
                }),
            ),
            (
                "admin_user.html",
                "users",
                serde_json::json!({
                    "explanation": explanation, "audit": [audit_row()], "sessions": 1, "signed_out": true,
                }),
            ),
            (
                "admin_teams.html",
                "teams",
                serde_json::json!({"teams": [{
                    "id": "team1", "name": "Team 1", "roles": [{"scope": "org/a", "role": "owner"}],
                    "groups": [{"provider": "demo", "group": "g1"}], "config_members": ["c@example.com"],
                    "is_default": true, "member_count": 60, "members": [{"public_id": "p", "label": "l", "source": "claims", "via": "g1"}],
                    "more": true,
                }]}),
            ),
            (
                "admin_mappings.html",
                "mappings",
                serde_json::json!({
                    "mappings": view().mappings, "default_teams": ["team1"], "locked_users": ["ceo@example.com"],
                    "providers": [{"id": "demo", "group_key": "id"}],
                }),
            ),
            (
                "admin_scim.html",
                "scim",
                serde_json::json!({
                    "providers": [
                        {"id": "entra", "enabled": true, "activity": activity, "stored": q::ScimCounts { users: 3, ..Default::default() }},
                        {"id": "okta", "enabled": true, "activity": null, "stored": q::ScimCounts::default()},
                    ],
                }),
            ),
            (
                "admin_audit.html",
                "audit",
                serde_json::json!({
                    "filters": {"user": "x", "team": null, "source": "claims", "trigger": null, "since": "1h", "until": null},
                    "problems": ["since: bad"], "rows": [audit_row()], "limit": 200,
                }),
            ),
            (
                "admin_plan.html",
                "plan",
                serde_json::json!({
                    "path": "c.toml", "errors": [], "changes": true, "plan": plan,
                    "memberships_added": 1, "memberships_removed": 0,
                }),
            ),
            (
                "admin_plan.html",
                "plan",
                serde_json::json!({"path": "c.toml", "errors": ["c.toml:3: bad"]}),
            ),
        ];
        for (name, page, data) in pages {
            let html = t
                .render(name, frame(page, data))
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!html.contains("<b>x@"), "{name} must escape data");
            assert!(html.contains("root@example.com"), "{name}");
        }
    }
}
