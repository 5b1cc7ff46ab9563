//! `teamgate plan`: what applying a new config would change, computed without applying it.
//! The config-level difference (teams, role bindings, mappings, members, defaults) comes from
//! comparing two [`ConfigView`]s; the per-user difference comes from running the same
//! [`reconcile`] the store runs, against each user's stored inputs and the new policy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::ids::{ProviderId, TeamId};
use super::ids::{Role, Scope};
use super::reconcile::{self, MappingTable, MembershipRow, Policy, Source, UserInput};
use super::roles::{RoleBinding, RoleHierarchy};

/// The parts of a config that decide memberships and roles, in a form two configs (or a
/// config and what the database holds) can be compared in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigView {
    pub teams: BTreeMap<TeamId, TeamDecl>,
    pub mappings: BTreeSet<Mapping>,
    pub teams_without_groups: Vec<TeamId>,
    /// Lowercased emails.
    pub locked_users: BTreeSet<String>,
    /// Which roles include which (the built-in order and `[[role]] includes`).
    pub hierarchy: RoleHierarchy,
    /// The OpenID clients, by client id.
    pub clients: BTreeMap<String, ClientDecl>,
}

/// One declared OpenID client, as far as an administrator reviews it (never its secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientDecl {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_teams: Vec<TeamId>,
    pub claims: Vec<String>,
    pub id_token_alg: String,
}

impl ClientDecl {
    /// What differs from `before`, one phrase per setting, for `plan`.
    pub fn changes_from(&self, before: &ClientDecl) -> Vec<String> {
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.join(" ")
            }
        };
        let teams = |v: &[TeamId]| {
            if v.is_empty() {
                "(anyone)".to_owned()
            } else {
                v.iter().map(TeamId::as_str).collect::<Vec<_>>().join(" ")
            }
        };
        let mut out = Vec::new();
        if self.name != before.name {
            out.push(format!("name \"{}\" -> \"{}\"", before.name, self.name));
        }
        if self.public != before.public {
            out.push(format!("public {} -> {}", before.public, self.public));
        }
        if self.redirect_uris != before.redirect_uris {
            out.push(format!(
                "redirect_uris {} -> {}",
                list(&before.redirect_uris),
                list(&self.redirect_uris)
            ));
        }
        if self.post_logout_redirect_uris != before.post_logout_redirect_uris {
            out.push(format!(
                "post_logout_redirect_uris {} -> {}",
                list(&before.post_logout_redirect_uris),
                list(&self.post_logout_redirect_uris)
            ));
        }
        if self.allowed_teams != before.allowed_teams {
            out.push(format!(
                "allowed_teams {} -> {}",
                teams(&before.allowed_teams),
                teams(&self.allowed_teams)
            ));
        }
        if self.claims != before.claims {
            out.push(format!(
                "claims {} -> {}",
                list(&before.claims),
                list(&self.claims)
            ));
        }
        if self.id_token_alg != before.id_token_alg {
            out.push(format!(
                "id_token_alg {} -> {}",
                before.id_token_alg, self.id_token_alg
            ));
        }
        out
    }
}

/// A client whose settings change, with what changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ClientChange {
    pub id: String,
    pub changes: Vec<String>,
}

/// One declared team.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TeamDecl {
    pub name: String,
    /// The scope the team belongs to (its bindings are on it or beneath it).
    pub scope: Option<Scope>,
    pub roles: BTreeSet<RoleBinding>,
    /// Lowercased emails named in the team's `members`.
    pub members: BTreeSet<String>,
}

/// One mapping: a group of a provider grants a team. `group` is normalised the way
/// [`MappingTable`] compares it, so views built from the file and from the database agree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Mapping {
    pub provider: ProviderId,
    pub group: String,
    pub team: TeamId,
}

impl Mapping {
    pub fn new(provider: ProviderId, group: &str, team: TeamId) -> Self {
        Self {
            provider,
            group: MappingTable::normalise(group),
            team,
        }
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} group {} -> team {}",
            self.provider, self.group, self.team
        )
    }
}

impl ConfigView {
    /// The reconcile inputs this view describes (the same as `Config::policy`).
    pub fn policy(&self) -> Policy {
        let mut mappings = MappingTable::default();
        for m in &self.mappings {
            mappings.insert(m.provider.clone(), &m.group, m.team.clone());
        }
        Policy {
            mappings,
            known_teams: self.teams.keys().cloned().collect(),
            teams_without_groups: self.teams_without_groups.clone(),
        }
    }

    fn has_mapping(&self, provider: &ProviderId, group: &str, team: &TeamId) -> bool {
        self.mappings
            .contains(&Mapping::new(provider.clone(), group, team.clone()))
    }

    /// Every (team, binding) pair.
    fn bindings(&self) -> BTreeSet<TeamBinding> {
        self.teams
            .iter()
            .flat_map(|(team, decl)| {
                decl.roles.iter().map(move |b| TeamBinding {
                    team: team.clone(),
                    scope: b.scope.to_string(),
                    role: b.role.to_string(),
                })
            })
            .collect()
    }

    fn members(&self) -> BTreeSet<TeamMember> {
        self.teams
            .iter()
            .flat_map(|(team, decl)| {
                decl.members.iter().map(move |email| TeamMember {
                    team: team.clone(),
                    email: email.clone(),
                })
            })
            .collect()
    }

    /// The role bindings `teams` give together, with the roles they imply.
    pub fn roles_of<'a>(
        &self,
        teams: impl IntoIterator<Item = &'a TeamId>,
    ) -> BTreeSet<RoleBinding> {
        let mut out = BTreeSet::new();
        for decl in teams.into_iter().filter_map(|t| self.teams.get(t)) {
            for b in &decl.roles {
                out.insert(b.clone());
                for implied in self.hierarchy.implied(&b.role) {
                    out.insert(RoleBinding {
                        scope: b.scope.clone(),
                        role: implied,
                    });
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TeamSummary {
    pub id: TeamId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Rename {
    pub id: TeamId,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TeamBinding {
    pub team: TeamId,
    pub scope: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TeamMember {
    pub team: TeamId,
    pub email: String,
}

/// A team whose scope changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Rescope {
    pub id: TeamId,
    pub from: Option<Scope>,
    pub to: Option<Scope>,
}

/// A role whose included roles changed (`[[role]] includes`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Includes {
    pub role: Role,
    pub from: Vec<Role>,
    pub to: Vec<Role>,
}

/// What changes in the config itself, before looking at any user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub teams_added: Vec<TeamSummary>,
    pub teams_removed: Vec<TeamSummary>,
    /// Same id, new display name.
    pub teams_renamed: Vec<Rename>,
    /// Same id, another scope.
    pub teams_rescoped: Vec<Rescope>,
    /// Roles that now include other roles than before.
    pub includes_changed: Vec<Includes>,
    pub bindings_added: Vec<TeamBinding>,
    pub bindings_removed: Vec<TeamBinding>,
    pub mappings_added: Vec<Mapping>,
    pub mappings_removed: Vec<Mapping>,
    pub members_added: Vec<TeamMember>,
    pub members_removed: Vec<TeamMember>,
    /// `defaults.teams_without_groups` before and after, when it changed.
    pub default_teams: Option<(Vec<TeamId>, Vec<TeamId>)>,
    pub locked_added: Vec<String>,
    pub locked_removed: Vec<String>,
    /// OpenID clients added or removed (by id), and clients whose settings change.
    pub clients_added: Vec<String>,
    pub clients_removed: Vec<String>,
    pub clients_changed: Vec<ClientChange>,
}

impl ConfigDiff {
    pub fn count(&self) -> usize {
        self.teams_added.len()
            + self.teams_removed.len()
            + self.teams_renamed.len()
            + self.teams_rescoped.len()
            + self.includes_changed.len()
            + self.bindings_added.len()
            + self.bindings_removed.len()
            + self.mappings_added.len()
            + self.mappings_removed.len()
            + self.members_added.len()
            + self.members_removed.len()
            + usize::from(self.default_teams.is_some())
            + self.locked_added.len()
            + self.locked_removed.len()
            + self.clients_added.len()
            + self.clients_removed.len()
            + self.clients_changed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// The elements of `a` that are not in `b`.
fn only_in<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> Vec<T> {
    a.difference(b).cloned().collect()
}

/// The config-level difference from `old` to `new`.
pub fn diff_configs(old: &ConfigView, new: &ConfigView) -> ConfigDiff {
    let summary = |(id, decl): (&TeamId, &TeamDecl)| TeamSummary {
        id: id.clone(),
        name: decl.name.clone(),
    };
    let (old_bindings, new_bindings) = (old.bindings(), new.bindings());
    let (old_members, new_members) = (old.members(), new.members());
    ConfigDiff {
        teams_added: new
            .teams
            .iter()
            .filter(|(id, _)| !old.teams.contains_key(*id))
            .map(summary)
            .collect(),
        teams_removed: old
            .teams
            .iter()
            .filter(|(id, _)| !new.teams.contains_key(*id))
            .map(summary)
            .collect(),
        teams_renamed: new
            .teams
            .iter()
            .filter_map(|(id, decl)| {
                let before = old.teams.get(id)?;
                (before.name != decl.name).then(|| Rename {
                    id: id.clone(),
                    from: before.name.clone(),
                    to: decl.name.clone(),
                })
            })
            .collect(),
        teams_rescoped: new
            .teams
            .iter()
            .filter_map(|(id, decl)| {
                let before = old.teams.get(id)?;
                (before.scope != decl.scope).then(|| Rescope {
                    id: id.clone(),
                    from: before.scope.clone(),
                    to: decl.scope.clone(),
                })
            })
            .collect(),
        includes_changed: includes_changed(&old.hierarchy, &new.hierarchy),
        bindings_added: only_in(&new_bindings, &old_bindings),
        bindings_removed: only_in(&old_bindings, &new_bindings),
        mappings_added: only_in(&new.mappings, &old.mappings),
        mappings_removed: only_in(&old.mappings, &new.mappings),
        members_added: only_in(&new_members, &old_members),
        members_removed: only_in(&old_members, &new_members),
        default_teams: (old.teams_without_groups != new.teams_without_groups).then(|| {
            (
                old.teams_without_groups.clone(),
                new.teams_without_groups.clone(),
            )
        }),
        locked_added: only_in(&new.locked_users, &old.locked_users),
        locked_removed: only_in(&old.locked_users, &new.locked_users),
        clients_added: new
            .clients
            .keys()
            .filter(|id| !old.clients.contains_key(*id))
            .cloned()
            .collect(),
        clients_removed: old
            .clients
            .keys()
            .filter(|id| !new.clients.contains_key(*id))
            .cloned()
            .collect(),
        clients_changed: new
            .clients
            .iter()
            .filter_map(|(id, decl)| {
                let changes = decl.changes_from(old.clients.get(id)?);
                (!changes.is_empty()).then(|| ClientChange {
                    id: id.clone(),
                    changes,
                })
            })
            .collect(),
    }
}

fn includes_changed(old: &RoleHierarchy, new: &RoleHierarchy) -> Vec<Includes> {
    let roles: BTreeSet<&Role> = old.direct().keys().chain(new.direct().keys()).collect();
    let of = |h: &RoleHierarchy, r: &Role| -> Vec<Role> {
        h.direct().get(r).into_iter().flatten().cloned().collect()
    };
    roles
        .into_iter()
        .filter_map(|r| {
            let (from, to) = (of(old, r), of(new, r));
            (from != to).then(|| Includes {
                role: r.clone(),
                from,
                to,
            })
        })
        .collect()
}

fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        "nothing".into()
    } else {
        roles
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a membership would be added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The team is new in the config.
    TeamAdded,
    /// The team is no longer in the config.
    TeamRemoved,
    /// The user's group now maps to the team.
    MappingAdded { mapping: Mapping },
    /// The user's group no longer maps to the team.
    MappingRemoved { mapping: Mapping },
    /// The mapping is unchanged, but the user's stored groups now include the group (the
    /// database was behind its own inputs).
    GroupJoined { group: String },
    /// The mapping is unchanged, but the user's stored groups no longer include the group.
    GroupLeft { group: String },
    /// The user is now named in the team's `members`.
    MemberAdded,
    /// The user is no longer named in the team's `members`.
    MemberRemoved,
    /// None of the user's groups or config entries maps to a team any more.
    DefaultApplies,
    /// The user now holds another team, so the default team no longer applies.
    DefaultNoLongerApplies,
    /// `defaults.teams_without_groups` changed.
    DefaultTeamsChanged,
    /// The user is deactivated (SCIM) and holds nothing.
    Deactivated,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TeamAdded => f.write_str("the team is new in the config"),
            Reason::TeamRemoved => f.write_str("the team is removed from the config"),
            Reason::MappingAdded { mapping } => write!(f, "mapping added: {mapping}"),
            Reason::MappingRemoved { mapping } => write!(f, "mapping removed: {mapping}"),
            Reason::GroupJoined { group } => {
                write!(f, "the user's stored groups now include {group}")
            }
            Reason::GroupLeft { group } => {
                write!(f, "the user's stored groups no longer include {group}")
            }
            Reason::MemberAdded => f.write_str("the user is now listed in the team's members"),
            Reason::MemberRemoved => {
                f.write_str("the user is no longer listed in the team's members")
            }
            Reason::DefaultApplies => {
                f.write_str("none of the user's groups maps to a team: default team")
            }
            Reason::DefaultNoLongerApplies => {
                f.write_str("the user now holds another team, so the default no longer applies")
            }
            Reason::DefaultTeamsChanged => f.write_str("defaults.teams_without_groups changed"),
            Reason::Deactivated => f.write_str("the user is deactivated"),
        }
    }
}

/// One membership that would change, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChange {
    #[serde(flatten)]
    pub row: MembershipRow,
    pub reason: Reason,
    /// `reason` in words.
    pub why: String,
}

impl RowChange {
    fn new(row: MembershipRow, reason: Reason) -> Self {
        Self {
            why: reason.to_string(),
            row,
            reason,
        }
    }
}

/// What plan needs to know about one stored user.
#[derive(Debug, Clone)]
pub struct PlanUser {
    /// What to call the user (email, else provider:subject).
    pub label: String,
    pub public_id: String,
    /// The user's stored inputs read against the NEW config (its members, locks, group keys).
    pub input: UserInput,
    pub current: BTreeSet<MembershipRow>,
}

/// The changes for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserChange {
    pub user: String,
    pub public_id: String,
    pub add: Vec<RowChange>,
    pub remove: Vec<RowChange>,
    /// Effective role bindings gained and lost (a role change needs no membership change).
    pub roles_added: Vec<RoleBinding>,
    pub roles_removed: Vec<RoleBinding>,
}

impl UserChange {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.remove.is_empty()
            && self.roles_added.is_empty()
            && self.roles_removed.is_empty()
    }
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub config: ConfigDiff,
    /// Only users with a change, in input order.
    pub users: Vec<UserChange>,
    /// How many stored users were looked at.
    pub users_checked: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.users.is_empty()
    }

    pub fn memberships_added(&self) -> usize {
        self.users.iter().map(|u| u.add.len()).sum()
    }

    pub fn memberships_removed(&self) -> usize {
        self.users.iter().map(|u| u.remove.len()).sum()
    }
}

/// Plan the move from `old` to `new` for `users`.
pub fn plan(old: &ConfigView, new: &ConfigView, users: &[PlanUser]) -> Plan {
    let policy = new.policy();
    let users_changed = users
        .iter()
        .map(|u| user_change(old, new, &policy, u))
        .filter(|c| !c.is_empty())
        .collect();
    Plan {
        config: diff_configs(old, new),
        users: users_changed,
        users_checked: users.len(),
    }
}

fn user_change(old: &ConfigView, new: &ConfigView, policy: &Policy, user: &PlanUser) -> UserChange {
    let target = reconcile::reconcile(&user.input, policy, &user.current);
    let diff = reconcile::diff(&user.current, &target.rows);
    let old_roles = old.roles_of(&reconcile::teams_of(&user.current));
    let new_roles = new.roles_of(&reconcile::teams_of(&target.rows));
    UserChange {
        user: user.label.clone(),
        public_id: user.public_id.clone(),
        add: diff
            .add
            .into_iter()
            .map(|row| RowChange::new(row.clone(), why_added(old, &user.input, &row)))
            .collect(),
        remove: diff
            .remove
            .into_iter()
            .map(|row| RowChange::new(row.clone(), why_removed(new, &user.input, &row)))
            .collect(),
        roles_added: new_roles.difference(&old_roles).cloned().collect(),
        roles_removed: old_roles.difference(&new_roles).cloned().collect(),
    }
}

fn why_added(old: &ConfigView, input: &UserInput, row: &MembershipRow) -> Reason {
    if !old.teams.contains_key(&row.team) {
        return Reason::TeamAdded;
    }
    match row.source {
        Source::Claims | Source::Scim if !old.has_mapping(&input.provider, &row.via, &row.team) => {
            Reason::MappingAdded {
                mapping: Mapping::new(input.provider.clone(), &row.via, row.team.clone()),
            }
        }
        Source::Claims | Source::Scim => Reason::GroupJoined {
            group: row.via.clone(),
        },
        Source::Config => Reason::MemberAdded,
        Source::Default if !old.teams_without_groups.contains(&row.team) => {
            Reason::DefaultTeamsChanged
        }
        Source::Default => Reason::DefaultApplies,
    }
}

fn why_removed(new: &ConfigView, input: &UserInput, row: &MembershipRow) -> Reason {
    if !input.active {
        return Reason::Deactivated;
    }
    if !new.teams.contains_key(&row.team) {
        return Reason::TeamRemoved;
    }
    match row.source {
        Source::Claims | Source::Scim if !new.has_mapping(&input.provider, &row.via, &row.team) => {
            Reason::MappingRemoved {
                mapping: Mapping::new(input.provider.clone(), &row.via, row.team.clone()),
            }
        }
        Source::Claims | Source::Scim => Reason::GroupLeft {
            group: row.via.clone(),
        },
        Source::Config => Reason::MemberRemoved,
        Source::Default if !new.teams_without_groups.contains(&row.team) => {
            Reason::DefaultTeamsChanged
        }
        Source::Default => Reason::DefaultNoLongerApplies,
    }
}

fn row_text(row: &MembershipRow) -> String {
    match row.source {
        Source::Claims | Source::Scim => format!(
            "team {} ({} group {})",
            row.team,
            row.source.as_str(),
            row.via
        ),
        Source::Config | Source::Default => format!("team {} ({})", row.team, row.source.as_str()),
    }
}

fn team_list(teams: &[TeamId]) -> String {
    if teams.is_empty() {
        "(none)".into()
    } else {
        teams
            .iter()
            .map(TeamId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The plan as text for a terminal: `+` added, `-` removed, `~` changed.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let c = &plan.config;
    if !c.is_empty() {
        out.push_str("Config changes:\n");
        for t in &c.teams_added {
            let _ = writeln!(out, "  + team {} \"{}\"", t.id, t.name);
        }
        for t in &c.teams_removed {
            let _ = writeln!(out, "  - team {} \"{}\"", t.id, t.name);
        }
        for r in &c.teams_renamed {
            let _ = writeln!(
                out,
                "  ~ team {} renamed \"{}\" -> \"{}\"",
                r.id, r.from, r.to
            );
        }
        for r in &c.teams_rescoped {
            let show = |s: &Option<Scope>| {
                s.as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "(any scope)".into())
            };
            let _ = writeln!(
                out,
                "  ~ team {} scope {} -> {}",
                r.id,
                show(&r.from),
                show(&r.to)
            );
        }
        for i in &c.includes_changed {
            let _ = writeln!(
                out,
                "  ~ role {} includes {} -> {}",
                i.role,
                role_list(&i.from),
                role_list(&i.to)
            );
        }
        for b in &c.bindings_added {
            let _ = writeln!(
                out,
                "  + role {} on {} for team {}",
                b.role, b.scope, b.team
            );
        }
        for b in &c.bindings_removed {
            let _ = writeln!(
                out,
                "  - role {} on {} for team {}",
                b.role, b.scope, b.team
            );
        }
        for m in &c.mappings_added {
            let _ = writeln!(out, "  + mapping {m}");
        }
        for m in &c.mappings_removed {
            let _ = writeln!(out, "  - mapping {m}");
        }
        for m in &c.members_added {
            let _ = writeln!(out, "  + member {} of team {}", m.email, m.team);
        }
        for m in &c.members_removed {
            let _ = writeln!(out, "  - member {} of team {}", m.email, m.team);
        }
        if let Some((from, to)) = &c.default_teams {
            let _ = writeln!(
                out,
                "  ~ default teams: {} -> {}",
                team_list(from),
                team_list(to)
            );
        }
        for e in &c.locked_added {
            let _ = writeln!(out, "  + locked user {e}");
        }
        for e in &c.locked_removed {
            let _ = writeln!(out, "  - locked user {e}");
        }
        for id in &c.clients_added {
            let _ = writeln!(out, "  + client {id}");
        }
        for id in &c.clients_removed {
            let _ = writeln!(out, "  - client {id} (its refresh tokens stop working)");
        }
        for ch in &c.clients_changed {
            for what in &ch.changes {
                let _ = writeln!(out, "  ~ client {}: {what}", ch.id);
            }
        }
        out.push('\n');
    }
    if !plan.users.is_empty() {
        let _ = writeln!(
            out,
            "User changes ({} of {} users):",
            plan.users.len(),
            plan.users_checked
        );
        for u in &plan.users {
            let _ = writeln!(out, "  {}", u.user);
            for ch in &u.add {
                let _ = writeln!(out, "    + {}: {}", row_text(&ch.row), ch.reason);
            }
            for ch in &u.remove {
                let _ = writeln!(out, "    - {}: {}", row_text(&ch.row), ch.reason);
            }
            for b in &u.roles_added {
                let _ = writeln!(out, "    + role {} on {}", b.role, b.scope);
            }
            for b in &u.roles_removed {
                let _ = writeln!(out, "    - role {} on {}", b.role, b.scope);
            }
        }
        out.push('\n');
    }
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "No changes. The config matches what is applied, and all {} users keep their teams.",
            plan.users_checked
        );
    } else {
        let _ = writeln!(
            out,
            "Plan: {} config change(s); {} of {} users change ({} membership(s) added, {} removed).",
            c.count(),
            plan.users.len(),
            plan.users_checked,
            plan.memberships_added(),
            plan.memberships_removed()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, Scope};

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    fn provider() -> ProviderId {
        ProviderId::parse("entra").unwrap()
    }

    fn binding(scope: &str, role: &str) -> RoleBinding {
        RoleBinding {
            scope: Scope::parse(scope).unwrap(),
            role: Role::parse(role).unwrap(),
        }
    }

    /// Two teams: `admins` (owner on org/acme, group G-ADM) and `everyone` (viewer, default).
    fn base() -> ConfigView {
        let mut v = ConfigView::default();
        v.teams.insert(
            team("admins"),
            TeamDecl {
                name: "Admins".into(),
                scope: None,
                roles: [binding("org/acme", "owner")].into(),
                members: BTreeSet::new(),
            },
        );
        v.teams.insert(
            team("everyone"),
            TeamDecl {
                name: "Everyone".into(),
                scope: None,
                roles: [binding("org/acme", "viewer")].into(),
                members: BTreeSet::new(),
            },
        );
        v.mappings
            .insert(Mapping::new(provider(), "G-ADM", team("admins")));
        v.teams_without_groups = vec![team("everyone")];
        v
    }

    fn user(label: &str, groups: &[&str], view: &ConfigView) -> PlanUser {
        let input = UserInput {
            provider: provider(),
            claims_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            scim_groups: None,
            config_teams: view
                .teams
                .iter()
                .filter(|(_, d)| d.members.contains(label))
                .map(|(t, _)| t.clone())
                .collect(),
            active: true,
            locked: false,
        };
        // The stored state is what the old config gave: in sync, as after a sync_config.
        let current = reconcile::reconcile(&input, &view.policy(), &BTreeSet::new()).rows;
        PlanUser {
            label: label.into(),
            public_id: format!("id-{label}"),
            input,
            current,
        }
    }

    /// The same users, their inputs re-read against `new` (as the store does).
    fn reread(users: &[PlanUser], new: &ConfigView) -> Vec<PlanUser> {
        users
            .iter()
            .map(|u| {
                let mut u = u.clone();
                u.input.config_teams = new
                    .teams
                    .iter()
                    .filter(|(_, d)| d.members.contains(&u.label))
                    .map(|(t, _)| t.clone())
                    .collect();
                u
            })
            .collect()
    }

    fn users(view: &ConfigView) -> Vec<PlanUser> {
        vec![
            user("alice@example.com", &["g-adm"], view),
            user("bob@example.com", &["g-ops"], view),
        ]
    }

    #[test]
    fn an_unchanged_config_plans_nothing() {
        let old = base();
        let plan = plan(&old, &old.clone(), &users(&old));
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.users_checked, 2);
        assert!(render_text(&plan).starts_with("No changes."));
    }

    #[test]
    fn adding_a_mapping_moves_the_user_from_the_default_team() {
        let old = base();
        let mut new = old.clone();
        new.teams.insert(
            team("operators"),
            TeamDecl {
                name: "Ops".into(),
                ..TeamDecl::default()
            },
        );
        new.mappings
            .insert(Mapping::new(provider(), "G-OPS", team("operators")));
        // Existing team gains a mapping too, to see `MappingAdded` rather than `TeamAdded`.
        new.mappings
            .insert(Mapping::new(provider(), "g-ops", team("admins")));
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(plan.config.teams_added.len(), 1);
        assert_eq!(plan.config.mappings_added.len(), 2);
        let bob = plan
            .users
            .iter()
            .find(|u| u.user == "bob@example.com")
            .unwrap();
        let reasons: Vec<(&str, &Reason)> = bob
            .add
            .iter()
            .map(|c| (c.row.team.as_str(), &c.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    "admins",
                    &Reason::MappingAdded {
                        mapping: Mapping::new(provider(), "g-ops", team("admins"))
                    }
                ),
                ("operators", &Reason::TeamAdded),
            ]
        );
        assert_eq!(bob.remove.len(), 1);
        assert_eq!(bob.remove[0].reason, Reason::DefaultNoLongerApplies);
        // Owner includes editor and viewer: the viewer role of the default team stays held.
        assert_eq!(
            bob.roles_added,
            vec![binding("org/acme", "editor"), binding("org/acme", "owner")]
        );
        assert!(bob.roles_removed.is_empty());
        assert!(plan.users.iter().all(|u| u.user != "alice@example.com"));
    }

    #[test]
    fn removing_a_mapping_gives_the_user_the_default_team() {
        let old = base();
        let mut new = old.clone();
        new.mappings.clear();
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(plan.config.mappings_removed.len(), 1);
        let alice = &plan.users[0];
        assert_eq!(alice.user, "alice@example.com");
        assert_eq!(
            alice.remove[0].reason,
            Reason::MappingRemoved {
                mapping: Mapping::new(provider(), "g-adm", team("admins"))
            }
        );
        assert_eq!(alice.add[0].row.team, team("everyone"));
        assert_eq!(alice.add[0].reason, Reason::DefaultApplies);
        assert_eq!(plan.users.len(), 1);
    }

    #[test]
    fn renaming_a_team_changes_the_config_but_no_membership() {
        let old = base();
        let mut new = old.clone();
        if let Some(t) = new.teams.get_mut(&team("admins")) {
            t.name = "Administrators".into();
        }
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(
            plan.config.teams_renamed,
            vec![Rename {
                id: team("admins"),
                from: "Admins".into(),
                to: "Administrators".into()
            }]
        );
        assert!(plan.users.is_empty());
        assert!(!plan.is_empty());
        assert!(
            render_text(&plan).contains("~ team admins renamed \"Admins\" -> \"Administrators\"")
        );
    }

    #[test]
    fn changing_a_role_shows_the_binding_and_each_affected_users_roles() {
        let old = base();
        let mut new = old.clone();
        if let Some(t) = new.teams.get_mut(&team("everyone")) {
            t.roles = [binding("org/acme/space/infra", "editor")].into();
        }
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(plan.config.bindings_added.len(), 1);
        assert_eq!(plan.config.bindings_removed.len(), 1);
        assert_eq!(plan.users.len(), 1);
        let bob = &plan.users[0];
        assert!(bob.add.is_empty() && bob.remove.is_empty());
        // Editor includes viewer, on the same scope.
        assert_eq!(
            bob.roles_added,
            vec![
                binding("org/acme/space/infra", "editor"),
                binding("org/acme/space/infra", "viewer")
            ]
        );
        assert_eq!(bob.roles_removed, vec![binding("org/acme", "viewer")]);
    }

    #[test]
    fn a_new_implication_or_team_scope_is_a_config_change_and_changes_roles() {
        let old = base();
        let mut new = old.clone();
        let auditor = Role::parse("auditor").unwrap();
        new.hierarchy
            .declare(Role::parse("viewer").unwrap(), [auditor.clone()]);
        if let Some(t) = new.teams.get_mut(&team("everyone")) {
            t.scope = Some(Scope::parse("org/acme").unwrap());
        }
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(
            plan.config.includes_changed,
            vec![Includes {
                role: Role::parse("viewer").unwrap(),
                from: vec![],
                to: vec![auditor],
            }]
        );
        assert_eq!(plan.config.teams_rescoped.len(), 1);
        let text = render_text(&plan);
        assert!(
            text.contains("~ role viewer includes nothing -> auditor"),
            "{text}"
        );
        assert!(
            text.contains("~ team everyone scope (any scope) -> org/acme"),
            "{text}"
        );
        let bob = plan
            .users
            .iter()
            .find(|u| u.user == "bob@example.com")
            .unwrap();
        assert_eq!(bob.roles_added, vec![binding("org/acme", "auditor")]);
    }

    #[test]
    fn removing_a_team_removes_its_memberships_with_that_reason() {
        let old = base();
        let mut new = old.clone();
        new.teams.remove(&team("admins"));
        new.mappings.clear();
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(plan.config.teams_removed[0].id, team("admins"));
        assert_eq!(plan.config.bindings_removed.len(), 1);
        let alice = &plan.users[0];
        assert_eq!(alice.remove[0].reason, Reason::TeamRemoved);
        assert_eq!(alice.add[0].reason, Reason::DefaultApplies);
    }

    #[test]
    fn config_members_and_defaults_changes_are_explained() {
        let old = base();
        let mut new = old.clone();
        if let Some(t) = new.teams.get_mut(&team("admins")) {
            t.members.insert("bob@example.com".into());
        }
        new.locked_users.insert("ceo@example.com".into());
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        assert_eq!(plan.config.members_added.len(), 1);
        assert_eq!(
            plan.config.locked_added,
            vec!["ceo@example.com".to_string()]
        );
        let bob = &plan.users[0];
        assert_eq!(bob.add[0].reason, Reason::MemberAdded);
        assert_eq!(bob.add[0].row.source, Source::Config);

        let mut no_default = old.clone();
        no_default.teams_without_groups.clear();
        let plan = super::plan(&old, &no_default, &reread(&users(&old), &no_default));
        assert!(plan.config.default_teams.is_some());
        assert_eq!(plan.users[0].remove[0].reason, Reason::DefaultTeamsChanged);
    }

    #[test]
    fn a_locked_user_is_never_planned_to_change() {
        let old = base();
        let mut new = old.clone();
        new.mappings.clear();
        let mut users = reread(&users(&old), &new);
        users[0].input.locked = true;
        let plan = plan(&old, &new, &users);
        assert!(plan.users.iter().all(|u| u.user != "alice@example.com"));
    }

    #[test]
    fn a_deactivated_user_loses_everything_for_that_reason() {
        let old = base();
        let mut users = users(&old);
        users[0].input.active = false;
        let plan = plan(&old, &old, &users);
        assert_eq!(plan.users[0].remove[0].reason, Reason::Deactivated);
    }

    #[test]
    fn the_json_form_names_the_reason_kind() {
        let old = base();
        let mut new = old.clone();
        new.mappings.clear();
        let plan = plan(&old, &new, &reread(&users(&old), &new));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["users"][0]["remove"][0]["reason"]["kind"],
            "mapping_removed"
        );
        assert_eq!(json["users"][0]["remove"][0]["team"], "admins");
        assert_eq!(json["config"]["mappings_removed"][0]["group"], "g-adm");
    }
}
