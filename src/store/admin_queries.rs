//! Reads (and a few small settings writes) for the admin tools: the applied-config snapshot
//! that `plan` compares against, every user's stored reconcile inputs, the audit log with
//! filters, the overviews behind the `/admin` pages, and the readiness and reload markers.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::ToSql;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::audit::{self, AuditRow};
use super::error::{Result, StoreError};
use super::memberships::{self, StoredMembership};
use super::users::{self, UserRecord};
use crate::config::Config;
use crate::domain::explain::HeldMembership;
use crate::domain::plan::{ConfigView, Mapping, PlanUser, TeamDecl};
use crate::domain::reconcile::{Source, UserInput};
use crate::domain::roles::RoleBinding;
use crate::domain::{ProviderId, Role, Scope, TeamId};

/// Settings key of the snapshot of the config last applied (written by every config sync).
const APPLIED_KEY: &str = "admin.applied_config";
/// Settings key of the outcome of the last reload, read back by `teamgate reload`.
const RELOAD_KEY: &str = "admin.last_reload";
/// Settings key `/readyz` writes to prove the database takes writes.
const READY_KEY: &str = "admin.readyz";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

use super::settings::{get as setting, set as set_setting};

/// The snapshot as stored: plain strings, so the domain types need no `Deserialize`.
#[derive(Serialize, Deserialize)]
struct StoredView {
    path: String,
    at: String,
    teams: Vec<StoredTeam>,
    /// (provider, group, team)
    mappings: Vec<(String, String, String)>,
    default_teams: Vec<String>,
    locked_users: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredTeam {
    id: String,
    name: String,
    /// (scope, role)
    roles: Vec<(String, String)>,
    members: Vec<String>,
}

/// The config last applied to this database, as far as reconcile and roles are concerned.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The file it was read from.
    pub path: String,
    pub at: String,
    pub view: ConfigView,
}

/// Record `view` (read from `path`) as the applied config. Called inside the config sync's
/// transaction, so the snapshot and the synced tables never disagree.
pub fn save_applied(conn: &Connection, path: &str, view: &ConfigView) -> Result<()> {
    let stored = StoredView {
        path: path.to_owned(),
        at: super::now(),
        teams: view
            .teams
            .iter()
            .map(|(id, t)| StoredTeam {
                id: id.to_string(),
                name: t.name.clone(),
                roles: t
                    .roles
                    .iter()
                    .map(|b| (b.scope.to_string(), b.role.to_string()))
                    .collect(),
                members: t.members.iter().cloned().collect(),
            })
            .collect(),
        mappings: view
            .mappings
            .iter()
            .map(|m| (m.provider.to_string(), m.group.clone(), m.team.to_string()))
            .collect(),
        default_teams: view
            .teams_without_groups
            .iter()
            .map(ToString::to_string)
            .collect(),
        locked_users: view.locked_users.iter().cloned().collect(),
    };
    set_setting(conn, APPLIED_KEY, &serde_json::to_string(&stored)?)
}

/// The applied-config snapshot; `None` for a database no sync has written one to yet.
pub fn applied(conn: &Connection) -> Result<Option<Applied>> {
    let Some(json) = setting(conn, APPLIED_KEY)? else {
        return Ok(None);
    };
    let s: StoredView = serde_json::from_str(&json)?;
    let team = |t: &str| TeamId::parse(t).map_err(|e| corrupt("applied config", e));
    let mut view = ConfigView::default();
    for t in &s.teams {
        let mut roles = BTreeSet::new();
        for (scope, role) in &t.roles {
            roles.insert(RoleBinding {
                scope: Scope::parse(scope).map_err(|e| corrupt("applied config", e))?,
                role: Role::parse(role).map_err(|e| corrupt("applied config", e))?,
            });
        }
        view.teams.insert(
            team(&t.id)?,
            TeamDecl {
                name: t.name.clone(),
                roles,
                members: t.members.iter().cloned().collect(),
            },
        );
    }
    for (provider, group, t) in &s.mappings {
        let provider = ProviderId::parse(provider).map_err(|e| corrupt("applied config", e))?;
        view.mappings
            .insert(Mapping::new(provider, group, team(t)?));
    }
    view.teams_without_groups = s
        .default_teams
        .iter()
        .map(|t| team(t))
        .collect::<Result<_>>()?;
    view.locked_users = s.locked_users.into_iter().collect();
    Ok(Some(Applied {
        path: s.path,
        at: s.at,
        view,
    }))
}

/// What the `teams`, `role_bindings` and `mappings` tables hold: the applied config minus
/// members, defaults and locks (which only the snapshot keeps). For databases without one.
pub fn view_from_tables(conn: &Connection) -> Result<ConfigView> {
    let mut view = ConfigView::default();
    let team = |t: &str| TeamId::parse(t).map_err(|e| corrupt("teams table", e));
    let mut stmt = conn.prepare_cached("SELECT id, name FROM teams ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, name) = row?;
        view.teams.insert(
            team(&id)?,
            TeamDecl {
                name,
                ..TeamDecl::default()
            },
        );
    }
    let mut stmt = conn.prepare_cached("SELECT team_id, scope, role FROM role_bindings")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, scope, role) = row?;
        if let Some(t) = view.teams.get_mut(&team(&id)?) {
            t.roles.insert(RoleBinding {
                scope: Scope::parse(&scope).map_err(|e| corrupt("role_bindings table", e))?,
                role: Role::parse(&role).map_err(|e| corrupt("role_bindings table", e))?,
            });
        }
    }
    let mut stmt = conn.prepare_cached("SELECT provider, group_key, team_id FROM mappings")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (provider, group, id) = row?;
        let provider = ProviderId::parse(&provider).map_err(|e| corrupt("mappings table", e))?;
        view.mappings
            .insert(Mapping::new(provider, &group, team(&id)?));
    }
    Ok(view)
}

/// Every stored user's reconcile inputs read against `config` (its members, locks and group
/// keys), with their current memberships: what `plan` runs reconcile over.
pub fn plan_users(conn: &Connection, config: &Config) -> Result<Vec<PlanUser>> {
    let mut out = Vec::new();
    for id in users::all_ids(conn)? {
        let Some(user) = users::by_id(conn, id)? else {
            continue;
        };
        out.push(PlanUser {
            label: user.label(),
            public_id: user.public_id.clone(),
            input: memberships::user_input(conn, &user, config)?,
            current: memberships::current(conn, id)?,
        });
    }
    Ok(out)
}

/// Users matching `key`: an email (any case), the public id, `provider:subject`, the internal
/// numeric id, or a SCIM userName.
pub fn find_users(conn: &Connection, key: &str) -> Result<Vec<UserRecord>> {
    let mut found = users::find(conn, key.trim())?;
    if let Ok(id) = key.trim().parse::<i64>()
        && let Some(user) = users::by_id(conn, id)?
        && found.iter().all(|u| u.id != user.id)
    {
        found.push(user);
    }
    // A SCIM userName (any provider; compared as SCIM does, case-folded).
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM scim_users WHERE user_name_key = ?1 ORDER BY id")?;
    let ids: Vec<i64> = stmt
        .query_map([super::scim::fold(key.trim())], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        if found.iter().all(|u| u.id != id)
            && let Some(user) = users::by_id(conn, id)?
        {
            found.push(user);
        }
    }
    Ok(found)
}

/// What `explain` needs about `user`: their inputs against `config` and their memberships.
pub fn explain_inputs(
    conn: &Connection,
    user: &UserRecord,
    config: &Config,
) -> Result<(UserInput, Vec<HeldMembership>)> {
    let input = memberships::user_input(conn, user, config)?;
    let held = memberships::detailed(conn, user.id)?
        .into_iter()
        .map(|m| HeldMembership {
            row: m.row,
            since: m.since,
            confirmed_at: m.confirmed_at,
        })
        .collect();
    Ok((input, held))
}

/// Filters of an audit-log query; every `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Rows about these user ids, or whose stored label equals `user_label` (deleted users
    /// keep their label).
    pub user_ids: Vec<i64>,
    pub user_label: Option<String>,
    pub team: Option<String>,
    pub source: Option<Source>,
    pub trigger: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// At most this many rows, the newest.
    pub limit: usize,
}

/// Audit rows matching `f`, newest first.
pub fn audit(conn: &Connection, f: &AuditFilter) -> Result<Vec<AuditRow>> {
    let mut sql = String::from(
        "SELECT id, at, trigger, request_id, user_id, user_label, action, team_id, source, via, detail
         FROM audit WHERE 1 = 1",
    );
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: Box<dyn ToSql>| {
        args.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if !f.user_ids.is_empty() || f.user_label.is_some() {
        sql.push_str(" AND (0 = 1");
        for id in &f.user_ids {
            arg(&mut sql, " OR user_id = ?", Box::new(*id));
        }
        if let Some(label) = &f.user_label {
            arg(
                &mut sql,
                " OR user_label = ? COLLATE NOCASE",
                Box::new(label.clone()),
            );
        }
        sql.push(')');
    }
    if let Some(team) = &f.team {
        arg(&mut sql, " AND team_id = ?", Box::new(team.clone()));
    }
    if let Some(source) = f.source {
        arg(&mut sql, " AND source = ?", Box::new(source.as_str()));
    }
    if let Some(trigger) = &f.trigger {
        arg(&mut sql, " AND trigger = ?", Box::new(trigger.clone()));
    }
    // Stored times are RFC 3339 with a varying number of fractional digits, so strings do not
    // sort exactly; julianday compares instants. The coarse string bound keeps the `at` index
    // useful (a second earlier cannot exclude a row the exact test keeps).
    let fmt = |t: OffsetDateTime| {
        t.to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default()
    };
    if let Some(since) = f.since {
        let coarse = since.replace_nanosecond(0).unwrap_or(since) - time::Duration::SECOND;
        arg(&mut sql, " AND at >= ?", Box::new(fmt(coarse)));
        arg(
            &mut sql,
            " AND julianday(at) >= julianday(?)",
            Box::new(fmt(since)),
        );
    }
    if let Some(until) = f.until {
        arg(
            &mut sql,
            " AND julianday(at) <= julianday(?)",
            Box::new(fmt(until)),
        );
    }
    arg(
        &mut sql,
        " ORDER BY id DESC LIMIT ?",
        Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)),
    );
    let mut stmt = conn.prepare(&sql)?;
    let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
    let rows = stmt.query_map(params.as_slice(), audit::row_to_audit)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A user with their memberships, for the admin users table.
#[derive(Debug, Clone, Serialize)]
pub struct UserOverview {
    pub user: UserRecord,
    pub memberships: Vec<StoredMembership>,
    pub sessions: i64,
}

/// One page of users, optionally those whose email, name or subject contains `search`;
/// returns the page and how many users match in all.
pub fn users_page(
    conn: &Connection,
    search: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<(Vec<UserOverview>, i64)> {
    let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let filter = "(?1 IS NULL OR email LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\'
                   OR subject LIKE ?1 ESCAPE '\\' OR public_id = ?2)";
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM users WHERE {filter}"))?
        .query_row(params![pattern, search], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id FROM users WHERE {filter} ORDER BY email COLLATE NOCASE, id LIMIT ?3 OFFSET ?4"
    ))?;
    let ids: Vec<i64> = stmt
        .query_map(
            params![
                pattern,
                search,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(user) = users::by_id(conn, id)? else {
            continue;
        };
        out.push(UserOverview {
            memberships: memberships::detailed(conn, id)?,
            sessions: super::sessions::count_for_user(conn, id)?,
            user,
        });
    }
    Ok((out, total))
}

/// One member of a team, for the admin teams page.
#[derive(Debug, Clone, Serialize)]
pub struct TeamMemberRow {
    pub public_id: String,
    pub label: String,
    pub source: String,
    pub via: String,
}

/// Per team: how many distinct users are members, and the first `limit` memberships.
pub fn team_members(
    conn: &Connection,
    limit: usize,
) -> Result<BTreeMap<String, (i64, Vec<TeamMemberRow>)>> {
    let mut out: BTreeMap<String, (i64, Vec<TeamMemberRow>)> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT team_id, COUNT(DISTINCT user_id) FROM memberships GROUP BY team_id",
    )?;
    let counts = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for c in counts {
        let (team, n) = c?;
        out.insert(team, (n, Vec::new()));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT u.public_id, COALESCE(u.email, u.provider || ':' || u.subject), m.source, m.via
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.team_id = ?1 ORDER BY 2 COLLATE NOCASE, m.source LIMIT ?2",
    )?;
    for (team, (_, rows)) in out.iter_mut() {
        let members = stmt.query_map(
            params![team, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(TeamMemberRow {
                    public_id: r.get(0)?,
                    label: r.get(1)?,
                    source: r.get(2)?,
                    via: r.get(3)?,
                })
            },
        )?;
        *rows = members.collect::<rusqlite::Result<_>>()?;
    }
    Ok(out)
}

/// A user by public id.
pub fn user_by_public_id(conn: &Connection, public_id: &str) -> Result<Option<UserRecord>> {
    Ok(users::find(conn, public_id)?
        .into_iter()
        .find(|u| u.public_id == public_id))
}

/// A cheap write through the writer for `/readyz`: proves the file is writable and the
/// writer thread alive.
pub fn touch_ready(conn: &Connection) -> Result<()> {
    set_setting(conn, READY_KEY, &super::now())
}

/// The outcome of one reload, as `teamgate reload` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Increases with every reload attempt of this database.
    pub seq: i64,
    pub at: String,
    pub ok: bool,
    /// The config errors or the failure, one per line; a summary when applied.
    pub message: String,
}

/// Record a reload outcome with the next sequence number; returns it.
pub fn record_reload(conn: &Connection, ok: bool, message: &str) -> Result<ReloadStatus> {
    let seq = last_reload(conn)?.map_or(1, |s| s.seq + 1);
    let status = ReloadStatus {
        seq,
        at: super::now(),
        ok,
        message: message.to_owned(),
    };
    set_setting(conn, RELOAD_KEY, &serde_json::to_string(&status)?)?;
    Ok(status)
}

pub fn last_reload(conn: &Connection) -> Result<Option<ReloadStatus>> {
    setting(conn, RELOAD_KEY)?
        .map(|s| serde_json::from_str(&s).map_err(StoreError::from))
        .transpose()
}

/// What the database says about one provider's SCIM provisioning.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScimCounts {
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    /// (group, member) rows.
    pub memberships: i64,
    /// Tokens neither revoked nor expired.
    pub live_tokens: i64,
    /// The latest `updated_at` of the provider's SCIM users and groups.
    pub last_change_at: Option<String>,
}

/// SCIM counts per provider, from the `scim_*` tables (migration 0002).
pub fn scim_status(conn: &Connection) -> Result<BTreeMap<String, ScimCounts>> {
    let mut out: BTreeMap<String, ScimCounts> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT provider, COUNT(*), COALESCE(SUM(active), 0), MAX(updated_at) FROM scim_users GROUP BY provider",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (provider, users, active, at) = row?;
        let c = out.entry(provider).or_default();
        c.users = users;
        c.active_users = active;
        c.last_change_at = at;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT g.provider, COUNT(DISTINCT g.id), COUNT(m.member_id), MAX(g.updated_at)
         FROM scim_groups g LEFT JOIN scim_members m ON m.group_id = g.id GROUP BY g.provider",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (provider, groups, members, at) = row?;
        let c = out.entry(provider).or_default();
        c.groups = groups;
        c.memberships = members;
        if at > c.last_change_at {
            c.last_change_at = at;
        }
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut stmt = conn.prepare_cached(
        "SELECT provider, COUNT(*) FROM scim_tokens WHERE revoked_at IS NULL AND expires_at > ?1 GROUP BY provider",
    )?;
    let rows = stmt.query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (provider, n) = row?;
        out.entry(provider).or_default().live_tokens = n;
    }
    Ok(out)
}

/// Open the database for reading only, for the command-line tools: they never take the write
/// lock (the running server's writer owns it), create the file, or run migrations.
pub fn open_read_only(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    // The server's connection settings: above all the statement cache and the query-planner
    // stability guarantee, without which every per-user query of `plan` is parsed again
    // (measured at 100,000 users: most of its time).
    super::configure(&conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        return Err(StoreError::Corrupt(format!(
            "{} is not a teamgate database (no schema); start `teamgate serve` once to create it",
            path.display()
        )));
    }
    Ok(conn)
}

/// Run `f` inside one read transaction, so that everything it reads comes from one snapshot
/// even while the server keeps writing.
pub fn snapshot<T, E: From<StoreError>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(StoreError::from)?;
    let out = f(conn);
    // A read transaction has nothing to commit; ending it only releases the snapshot.
    let _ = conn.execute_batch("COMMIT");
    out
}
