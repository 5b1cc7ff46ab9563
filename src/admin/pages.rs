//! The `/admin` pages: users with their memberships and sources, one user explained, teams
//! with members and role bindings, mappings, SCIM status, the audit log with filters, and the
//! plan of the file on disk against the loaded config. Handlers are thin: the [`Admin`]
//! extractor checks access, one read through the store, one typed view rendered through an
//! auto-escaped template. Every GET is read-only; the two forms (reload the config, sign a
//! user out everywhere) are POSTs checked by [`AdminForm`].

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::guard::{self, Admin, AdminForm};
use super::views::{
    AuditQuery, AuditView, ClientRow, ClientsView, Frame, GroupRef, IndexView, MappingsView,
    PlanOutcome, PlanView, ProviderKey, ProviderSummary, ScimProviderView, ScimView, TeamView,
    TeamsView, UserView, UsersView,
};
use crate::config::{Config, GroupKey};
use crate::domain::plan;
use crate::domain::reconcile::Source;
use crate::membership::lookup::{find_users, user_by_public_id, users_overview};
use crate::membership::plan::{explain_user, plan_users};
use crate::state::AppState;
use crate::store::applied;
use crate::store::audit::{AuditFilter, Trigger, TriggerKind};
use crate::web::error::ErrorPage;

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
        .route(
            "/admin/users/{id}/sessions/{handle}/end",
            post(end_user_session),
        )
        .route("/admin/teams", get(teams))
        .route("/admin/mappings", get(mappings))
        .route("/admin/clients", get(clients))
        .route("/admin/scim", get(scim))
        .route("/admin/audit", get(audit_log))
        .route("/admin/plan", get(plan_page))
        .route("/admin/reload", post(reload))
}

fn render<T: Serialize>(
    state: &AppState,
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
        Err(e) => internal(state, admin, e),
    }
}

fn internal(state: &AppState, admin: &Admin, e: impl std::fmt::Display) -> Response {
    guard::no_store(ErrorPage::internal(&state.templates, &admin.request_id, e).into_response())
}

#[derive(Deserialize)]
struct IndexQuery {
    reload: Option<String>,
}

async fn index(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<IndexQuery>,
) -> Response {
    let facts = state
        .store
        .read(|tx| {
            let (_, users) = tx.users_page(None, 0, 0)?;
            Ok::<_, crate::store::StoreError>((
                users,
                applied::last_reload(tx)?,
                applied::load(tx)?.map(|a| (a.path, a.at)),
            ))
        })
        .await;
    let (users, last_reload, applied) = match facts {
        Ok(f) => f,
        Err(e) => return internal(&state, &admin, e),
    };
    let config = &admin.config;
    let data = IndexView {
        config_path: config.path.display().to_string(),
        applied,
        config_version: state.config.version(),
        config_sha256: config.source.short().to_owned(),
        config_file_differs: state.config.file_differs(),
        users,
        teams: config.teams.len(),
        mappings: config.policy().mappings.iter().count(),
        providers: config
            .providers
            .iter()
            .map(|p| ProviderSummary {
                id: p.id.to_string(),
                kind: p.kind.as_str(),
                name: p.display_name.clone(),
                scim: p.scim_enabled,
            })
            .collect(),
        last_reload,
        flash: query.reload,
        admin_role: config.admin.role.to_string(),
        admin_scope: config.admin.scope.as_ref().map(ToString::to_string),
    };
    render(&state, &admin, "admin_index.html", "index", data)
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<usize>,
}

async fn users(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<UsersQuery>,
) -> Response {
    let page = query.page.unwrap_or(1).max(1);
    let search = query.q.clone().filter(|s| !s.trim().is_empty());
    let term = search.clone();
    let result = state
        .store
        .read(move |tx| {
            users_overview(
                tx,
                term.as_deref(),
                USERS_PER_PAGE,
                (page - 1) * USERS_PER_PAGE,
            )
        })
        .await;
    let (rows, total) = match result {
        Ok(r) => r,
        Err(e) => return internal(&state, &admin, e),
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
            "{}?{}",
            config_path(&state, "/admin/users"),
            query.append_pair("page", &page.to_string()).finish()
        )
    };
    let data = UsersView {
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        q: search.clone().unwrap_or_default(),
        users: rows,
        total,
        page,
        pages,
    };
    render(&state, &admin, "admin_users.html", "users", data)
}

#[derive(Deserialize)]
struct UserQuery {
    signed_out: Option<String>,
    ended: Option<String>,
}

async fn user(
    State(state): State<AppState>,
    admin: Admin,
    Path(public_id): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let config = admin.config.clone();
    let now = state.clock.unix();
    let result = state
        .store
        .read(move |tx| {
            let Some(user) = user_by_public_id(tx, &public_id)? else {
                return Ok(None);
            };
            let explanation = explain_user(tx, &user, &config)?;
            let audit = tx.audit(&AuditFilter {
                user_ids: vec![user.id],
                limit: AUDIT_ROWS,
                ..AuditFilter::default()
            })?;
            let sessions = super::sessions::list(tx, &user, now)?;
            Ok::<_, crate::store::StoreError>(Some((explanation, audit, sessions)))
        })
        .await;
    let (explanation, audit, sessions) = match result {
        Ok(Some(found)) => found,
        Ok(None) => {
            return guard::no_store(
                ErrorPage::new(
                    &state.templates,
                    &admin.request_id,
                    StatusCode::NOT_FOUND,
                    "No such user",
                    "No stored user has this id. Go back to the users list.",
                    "admin user page for an unknown id",
                )
                .into_response(),
            );
        }
        Err(e) => return internal(&state, &admin, e),
    };
    let data = UserView {
        explanation,
        audit,
        sessions,
        signed_out: query.signed_out.is_some(),
        ended: query.ended.filter(|h| h.len() <= 16),
    };
    render(&state, &admin, "admin_user.html", "users", data)
}

async fn teams(State(state): State<AppState>, admin: Admin) -> Response {
    let members = match state
        .store
        .read(|tx| tx.team_members(MEMBERS_PER_TEAM))
        .await
    {
        Ok(m) => m,
        Err(e) => return internal(&state, &admin, e),
    };
    let config: &Config = &admin.config;
    let teams = config
        .teams
        .iter()
        .map(|t| {
            let (count, rows) = members
                .get(t.id.as_str())
                .map(|(n, rows)| (*n, rows.clone()))
                .unwrap_or_default();
            TeamView {
                id: t.id.to_string(),
                name: t.name.clone(),
                scope: t.scope.as_ref().map(ToString::to_string),
                roles: t.roles.clone(),
                groups: t
                    .groups
                    .iter()
                    .map(|(p, g)| GroupRef {
                        provider: p.to_string(),
                        group: g.clone(),
                    })
                    .collect(),
                config_members: t.members.clone(),
                is_default: config.defaults.teams_without_groups.contains(&t.id),
                member_count: count,
                members: rows,
                more: usize::try_from(count).unwrap_or(0) > MEMBERS_PER_TEAM,
            }
        })
        .collect();
    render(
        &state,
        &admin,
        "admin_teams.html",
        "teams",
        TeamsView { teams },
    )
}

async fn mappings(State(state): State<AppState>, admin: Admin) -> Response {
    let config: &Config = &admin.config;
    let view = config.view();
    let data = MappingsView {
        mappings: view.mappings.clone(),
        default_teams: view.teams_without_groups.clone(),
        locked_users: view.locked_users.clone(),
        providers: config
            .providers
            .iter()
            .map(|p| ProviderKey {
                id: p.id.to_string(),
                group_key: match p.group_key {
                    GroupKey::Id => "id",
                    GroupKey::Name => "name",
                },
            })
            .collect(),
    };
    render(&state, &admin, "admin_mappings.html", "mappings", data)
}

async fn clients(State(state): State<AppState>, admin: Admin) -> Response {
    let config: &Config = &admin.config;
    let usage = match state.authorize.usage().await {
        Ok(u) => u,
        Err(e) => return internal(&state, &admin, e),
    };
    let stamp = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map(crate::domain::clock::timestamp)
            .unwrap_or_else(|_| t.to_string())
    };
    let data = ClientsView {
        issuer: config.issuer(),
        clients: config
            .clients
            .iter()
            .map(|c| {
                let used = usage.iter().find(|u| u.client_id == c.id);
                ClientRow {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    public: c.public,
                    id_token_alg: c.id_token_alg.as_str(),
                    redirect_uris: c.redirect_uris.clone(),
                    allowed_teams: c.allowed_teams.iter().map(ToString::to_string).collect(),
                    claims: c.claims.iter().map(|k| k.as_str()).collect(),
                    last_used_at: used.and_then(|u| u.last_used_at).map(stamp),
                    active_refresh_tokens: used.map_or(0, |u| u.active_refresh_tokens),
                    users: used.map_or(0, |u| u.users),
                }
            })
            .collect(),
    };
    render(&state, &admin, "admin_clients.html", "clients", data)
}

async fn scim(State(state): State<AppState>, admin: Admin) -> Response {
    let now = state.clock.unix();
    let stored = match state.store.read(move |tx| tx.scim_counts(now)).await {
        Ok(t) => t,
        Err(e) => return internal(&state, &admin, e),
    };
    let activity = crate::metrics::scim_activity();
    let providers = admin
        .config
        .providers
        .iter()
        .filter(|p| {
            p.scim_enabled
                || activity.contains_key(p.id.as_str())
                || stored.contains_key(p.id.as_str())
        })
        .map(|p| ScimProviderView {
            id: p.id.to_string(),
            enabled: p.scim_enabled,
            activity: activity.get(p.id.as_str()).cloned(),
            stored: stored.get(p.id.as_str()).cloned().unwrap_or_default(),
        })
        .collect();
    render(
        &state,
        &admin,
        "admin_scim.html",
        "scim",
        ScimView { providers },
    )
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn audit_log(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<AuditQuery>,
) -> Response {
    let now = state.clock.now();
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
            .read(move |tx| {
                let mut filter = filter;
                if let Some(u) = &user {
                    filter.user_ids = find_users(tx, u)?.into_iter().map(|u| u.id).collect();
                }
                tx.audit(&filter)
            })
            .await;
        match result {
            Ok(rows) => rows,
            Err(e) => return internal(&state, &admin, e),
        }
    } else {
        Vec::new()
    };
    let data = AuditView {
        filters: query,
        problems,
        rows,
        limit: AUDIT_ROWS,
    };
    render(&state, &admin, "admin_audit.html", "audit", data)
}

async fn plan_page(State(state): State<AppState>, admin: Admin) -> Response {
    let path = admin.config.path.clone();
    let loaded = match tokio::task::spawn_blocking(move || Config::load(&path)).await {
        Ok(loaded) => loaded,
        Err(e) => return internal(&state, &admin, e),
    };
    let path = admin.config.path.display().to_string();
    let data = match loaded {
        Err(errors) => PlanView {
            path,
            errors: errors.0.iter().map(ToString::to_string).collect(),
            outcome: None,
        },
        Ok(new) => {
            let new = std::sync::Arc::new(new);
            let reading = new.clone();
            let users = match state.store.read(move |tx| plan_users(tx, &reading)).await {
                Ok(u) => u,
                Err(e) => return internal(&state, &admin, e),
            };
            let plan = plan::plan(admin.config.view(), new.view(), &users);
            PlanView {
                path,
                errors: Vec::new(),
                outcome: Some(PlanOutcome {
                    changes: !plan.is_empty(),
                    memberships_added: plan.memberships_added(),
                    memberships_removed: plan.memberships_removed(),
                    plan,
                }),
            }
        }
    };
    render(&state, &admin, "admin_plan.html", "plan", data)
}

/// `path` under the base path teamgate is served at.
fn config_path(state: &AppState, path: &str) -> String {
    state.config.get().server.path(path)
}

async fn reload(State(state): State<AppState>, AdminForm(admin): AdminForm) -> Response {
    let cause = format!("admin page ({})", admin.signed_in.user.label());
    let outcome = match super::reload::reload(&state, &cause).await {
        Ok(_) => "applied",
        Err(_) => "refused",
    };
    guard::no_store(
        Redirect::to(&format!(
            "{}?reload={outcome}",
            config_path(&state, "/admin")
        ))
        .into_response(),
    )
}

async fn sign_out_user(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    AdminForm(admin): AdminForm,
) -> Response {
    let trigger = admin_trigger(&admin);
    let id = public_id.clone();
    let clock = state.clock.clone();
    let done = state
        .store
        .write(move |tx| {
            let Some(user) = user_by_public_id(tx, &id)? else {
                return Ok(false);
            };
            super::sessions::end_all(tx, &clock, &trigger, &user)?;
            Ok::<_, crate::store::StoreError>(true)
        })
        .await;
    match done {
        Ok(true) => {
            let target = format!(
                "{}/{}?signed_out=1",
                config_path(&state, "/admin/users"),
                url::form_urlencoded::byte_serialize(public_id.as_bytes()).collect::<String>()
            );
            guard::no_store(Redirect::to(&target).into_response())
        }
        Ok(false) => {
            guard::no_store(Redirect::to(&config_path(&state, "/admin/users")).into_response())
        }
        Err(e) => internal(&state, &admin, e),
    }
}

/// The audit trigger of an administrator's form: who, and the request.
fn admin_trigger(admin: &Admin) -> Trigger {
    Trigger::new(
        TriggerKind::Admin,
        Some(admin.request_id.0.clone()),
        Some(format!("by {}", admin.signed_in.user.label())),
    )
}

/// End one session of a user, named by its public handle.
async fn end_user_session(
    State(state): State<AppState>,
    Path((public_id, handle)): Path<(String, String)>,
    AdminForm(admin): AdminForm,
) -> Response {
    let trigger = admin_trigger(&admin);
    let id = public_id.clone();
    let clock = state.clock.clone();
    let wanted = handle.clone();
    let done = state
        .store
        .write(move |tx| {
            let Some(user) = user_by_public_id(tx, &id)? else {
                return Ok(None);
            };
            super::sessions::end_one(tx, &clock, &trigger, &user, &wanted).map(Some)
        })
        .await;
    let user_page = format!(
        "{}/{}",
        config_path(&state, "/admin/users"),
        url::form_urlencoded::byte_serialize(public_id.as_bytes()).collect::<String>()
    );
    match done {
        Ok(Some(ended)) => {
            let flash = if ended { handle.as_str() } else { "none" };
            let target = format!(
                "{user_page}?ended={}",
                url::form_urlencoded::byte_serialize(flash.as_bytes()).collect::<String>()
            );
            guard::no_store(Redirect::to(&target).into_response())
        }
        Ok(None) => {
            guard::no_store(Redirect::to(&config_path(&state, "/admin/users")).into_response())
        }
        Err(e) => internal(&state, &admin, e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::admin::views::ScimProviderView;
    use crate::domain::explain::{self, UserSummary};
    use crate::domain::plan::{ConfigView, Mapping, PlanUser, TeamDecl};
    use crate::domain::reconcile::{MembershipRow, UserInput};
    use crate::domain::{ProviderId, TeamId};
    use crate::membership::lookup::UserOverview;
    use crate::store::applied::ReloadStatus;
    use crate::store::audit::AuditRow;
    use crate::store::memberships::{StoredMembership, TeamMemberRow};
    use crate::store::scim::ScimCounts;
    use crate::store::users::UserRecord;
    use crate::web::templates::Templates;

    fn frame<T: Serialize>(page: &'static str, data: T) -> serde_json::Value {
        serde_json::to_value(Frame {
            page,
            admin_label: "root@example.com".into(),
            csrf: "tok<en>",
            data,
        })
        .unwrap()
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
        let t = Templates::new("").unwrap();
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
        let overview = UserOverview {
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
        let team = TeamId::parse("team1").unwrap();
        let pages: Vec<(&str, serde_json::Value)> = vec![
            (
                "admin_index.html",
                frame(
                    "index",
                    IndexView {
                        config_path: "c.toml".into(),
                        applied: Some(("c.toml".into(), "2024".into())),
                        config_version: 3,
                        config_sha256: "0123456789ab".into(),
                        config_file_differs: Some("differs <file>".into()),
                        users: 1,
                        teams: 1,
                        mappings: 1,
                        providers: vec![ProviderSummary {
                            id: "demo".into(),
                            kind: "demo",
                            name: "Demo".into(),
                            scim: true,
                        }],
                        last_reload: Some(ReloadStatus {
                            seq: 1,
                            at: "2024".into(),
                            ok: false,
                            message: "bad <line>".into(),
                        }),
                        flash: Some("refused".into()),
                        admin_role: "owner".into(),
                        admin_scope: None,
                    },
                ),
            ),
            (
                "admin_users.html",
                frame(
                    "users",
                    UsersView {
                        q: "x".into(),
                        users: vec![overview],
                        total: 201,
                        page: 2,
                        pages: 3,
                        prev_href: Some("/admin/users?q=x&page=1".into()),
                        next_href: Some("/admin/users?q=x&page=3".into()),
                    },
                ),
            ),
            (
                "admin_user.html",
                frame(
                    "users",
                    UserView {
                        explanation,
                        audit: vec![audit_row()],
                        sessions: vec![super::super::sessions::SessionView {
                            handle: "h4Ndl3-h4Ndl3".into(),
                            created: Some("2026-01-01T00:00:00.000Z".into()),
                            last_seen: None,
                            client_ip: Some("192.0.2.1".into()),
                            user_agent: Some("Mozilla/5.0".into()),
                            expires: None,
                        }],
                        signed_out: true,
                        ended: Some("none".into()),
                    },
                ),
            ),
            (
                "admin_teams.html",
                frame(
                    "teams",
                    TeamsView {
                        teams: vec![TeamView {
                            id: "team1".into(),
                            name: "Team 1".into(),
                            scope: Some("org/a".into()),
                            roles: vec![crate::domain::roles::RoleBinding {
                                scope: crate::domain::Scope::parse("org/a").unwrap(),
                                role: crate::domain::Role::parse("owner").unwrap(),
                            }],
                            groups: vec![GroupRef {
                                provider: "demo".into(),
                                group: "g1".into(),
                            }],
                            config_members: vec!["c@example.com".into()],
                            is_default: true,
                            member_count: 60,
                            members: vec![TeamMemberRow {
                                public_id: "p".into(),
                                label: "l".into(),
                                source: "claims".into(),
                                via: "g1".into(),
                            }],
                            more: true,
                        }],
                    },
                ),
            ),
            (
                "admin_mappings.html",
                frame(
                    "mappings",
                    MappingsView {
                        mappings: view().mappings,
                        default_teams: vec![team.clone()],
                        locked_users: ["ceo@example.com".to_owned()].into(),
                        providers: vec![ProviderKey {
                            id: "demo".into(),
                            group_key: "id",
                        }],
                    },
                ),
            ),
            (
                "admin_scim.html",
                frame(
                    "scim",
                    ScimView {
                        providers: vec![
                            ScimProviderView {
                                id: "entra".into(),
                                enabled: true,
                                activity: Some(activity),
                                stored: ScimCounts {
                                    users: 3,
                                    ..Default::default()
                                },
                            },
                            ScimProviderView {
                                id: "okta".into(),
                                enabled: true,
                                activity: None,
                                stored: ScimCounts::default(),
                            },
                        ],
                    },
                ),
            ),
            (
                "admin_audit.html",
                frame(
                    "audit",
                    AuditView {
                        filters: AuditQuery {
                            user: Some("x".into()),
                            source: Some("claims".into()),
                            since: Some("1h".into()),
                            ..AuditQuery::default()
                        },
                        problems: vec!["since: bad".into()],
                        rows: vec![audit_row()],
                        limit: 200,
                    },
                ),
            ),
            (
                "admin_plan.html",
                frame(
                    "plan",
                    PlanView {
                        path: "c.toml".into(),
                        errors: vec![],
                        outcome: Some(PlanOutcome {
                            changes: true,
                            memberships_added: 1,
                            memberships_removed: 0,
                            plan,
                        }),
                    },
                ),
            ),
            (
                "admin_plan.html",
                frame(
                    "plan",
                    PlanView {
                        path: "c.toml".into(),
                        errors: vec!["c.toml:3: bad".into()],
                        outcome: None,
                    },
                ),
            ),
        ];
        for (name, frame) in pages {
            let html = t
                .render(name, frame)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!html.contains("<b>x@"), "{name} must escape data");
            assert!(html.contains("root@example.com"), "{name}");
        }
    }
}
