//! What each admin page renders, typed: one struct per template, so a page and its handler
//! cannot drift apart silently. Every page also receives the [`Frame`] around its data.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::domain::TeamId;
use crate::domain::explain::Explanation;
use crate::domain::plan::{Mapping, Plan};
use crate::domain::roles::RoleBinding;
use crate::membership::lookup::UserOverview;
use crate::metrics::ScimActivity;
use crate::store::applied::ReloadStatus;
use crate::store::audit::AuditRow;
use crate::store::memberships::TeamMemberRow;
use crate::store::scim::ScimCounts;

/// What every admin page receives besides its own data.
#[derive(Serialize)]
pub struct Frame<'a, T: Serialize> {
    pub page: &'static str,
    pub admin_label: String,
    pub csrf: &'a str,
    pub data: T,
}

/// `/admin`.
#[derive(Serialize)]
pub struct IndexView {
    pub config_path: String,
    /// (file, when) of the config the database last applied.
    pub applied: Option<(String, String)>,
    /// The applied config version served, and the first digits of its SHA-256.
    pub config_version: u64,
    pub config_sha256: String,
    /// Set when this process's own file is not the applied config it serves.
    pub config_file_differs: Option<String>,
    pub users: i64,
    pub teams: usize,
    pub mappings: usize,
    pub providers: Vec<ProviderSummary>,
    pub last_reload: Option<ReloadStatus>,
    /// `applied` or `refused` after the reload button.
    pub flash: Option<String>,
    pub admin_role: String,
    pub admin_scope: Option<String>,
}

#[derive(Serialize)]
pub struct ProviderSummary {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub scim: bool,
}

/// `/admin/users`.
#[derive(Serialize)]
pub struct UsersView {
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub q: String,
    pub users: Vec<UserOverview>,
    pub total: i64,
    pub page: usize,
    pub pages: usize,
}

/// `/admin/users/{id}`.
#[derive(Serialize)]
pub struct UserView {
    pub explanation: Explanation,
    pub audit: Vec<AuditRow>,
    /// The user's live sessions, the most recently used first.
    pub sessions: Vec<super::sessions::SessionView>,
    pub signed_out: bool,
    /// A session was just ended (`?ended=HANDLE`), or was already gone (`?ended=none`).
    pub ended: Option<String>,
}

/// `/admin/teams`.
#[derive(Serialize)]
pub struct TeamsView {
    pub teams: Vec<TeamView>,
}

#[derive(Serialize)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    /// The scope the team belongs to, if the config gives one.
    pub scope: Option<String>,
    pub roles: Vec<RoleBinding>,
    pub groups: Vec<GroupRef>,
    pub config_members: Vec<String>,
    pub is_default: bool,
    pub member_count: i64,
    pub members: Vec<TeamMemberRow>,
    /// More members than listed.
    pub more: bool,
}

#[derive(Serialize)]
pub struct GroupRef {
    pub provider: String,
    pub group: String,
}

/// `/admin/mappings`.
#[derive(Serialize)]
pub struct MappingsView {
    pub mappings: BTreeSet<Mapping>,
    pub default_teams: Vec<TeamId>,
    pub locked_users: BTreeSet<String>,
    pub providers: Vec<ProviderKey>,
}

#[derive(Serialize)]
pub struct ProviderKey {
    pub id: String,
    /// `id` or `name`.
    pub group_key: &'static str,
}

/// `/admin/clients`.
#[derive(Serialize)]
pub struct ClientsView {
    pub issuer: String,
    pub clients: Vec<ClientRow>,
}

#[derive(Serialize)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub id_token_alg: &'static str,
    pub redirect_uris: Vec<String>,
    pub allowed_teams: Vec<String>,
    pub claims: Vec<&'static str>,
    /// RFC 3339, when the client was last issued a code or token.
    pub last_used_at: Option<String>,
    pub active_refresh_tokens: i64,
    pub users: i64,
}

/// `/admin/scim`.
#[derive(Serialize)]
pub struct ScimView {
    pub providers: Vec<ScimProviderView>,
}

#[derive(Serialize)]
pub struct ScimProviderView {
    pub id: String,
    pub enabled: bool,
    pub activity: Option<ScimActivity>,
    pub stored: ScimCounts,
}

/// The filters of `/admin/audit`, as the form sent them.
#[derive(Deserialize, Serialize, Default, Clone)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub team: Option<String>,
    pub source: Option<String>,
    pub trigger: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `/admin/audit`.
#[derive(Serialize)]
pub struct AuditView {
    pub filters: AuditQuery,
    pub problems: Vec<String>,
    pub rows: Vec<AuditRow>,
    pub limit: usize,
}

/// `/admin/plan`: the errors of an invalid file, or the plan of a valid one.
#[derive(Serialize)]
pub struct PlanView {
    pub path: String,
    pub errors: Vec<String>,
    #[serde(flatten)]
    pub outcome: Option<PlanOutcome>,
}

#[derive(Serialize)]
pub struct PlanOutcome {
    pub changes: bool,
    pub plan: Plan,
    pub memberships_added: usize,
    pub memberships_removed: usize,
}
