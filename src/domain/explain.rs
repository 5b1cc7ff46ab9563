//! `teamgate explain USER`: why a user holds each team and role. For every stored membership,
//! the source, the group and the mapping that granted it and when it was last confirmed; the
//! roles those teams give; the user's groups that map to nothing; and whatever reconcile would
//! still change (normally nothing: the store applies every decision at once).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::ids::TeamId;
use super::plan::{ConfigView, Mapping};
use super::reconcile::{self, MembershipRow, Source, UserInput};
use super::roles::{EffectiveRoles, Origin, RoleBinding};

/// A stored membership with its timestamps (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldMembership {
    pub row: MembershipRow,
    pub since: String,
    /// When the source last re-asserted the membership (a login for claims, a SCIM push for
    /// scim). Config and default rows keep the time they were added: they hold for as long
    /// as the file says so.
    pub confirmed_at: String,
}

/// Who the user is, for the heading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub label: String,
    pub public_id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub active: bool,
    pub last_login_at: Option<String>,
    /// When the stored claims groups were read (the user's last login carrying them).
    pub claims_groups_at: Option<String>,
}

/// One grant of one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantExplained {
    pub source: Source,
    /// The external group, for claims and scim grants.
    pub group: Option<String>,
    /// The mapping that turns the group into the team, when the config still has it.
    pub mapping: Option<Mapping>,
    pub why: String,
    pub since: String,
    pub confirmed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamExplained {
    pub id: TeamId,
    /// `None` when the team is no longer in the config.
    pub name: Option<String>,
    pub grants: Vec<GrantExplained>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleExplained {
    pub scope: String,
    pub role: String,
    /// The teams that give this role on this scope, directly or through a role including it.
    pub teams: Vec<TeamId>,
    /// Each team and, for an implied role, the role the team binds that includes it
    /// (`through`: `null` when the team binds this role itself).
    pub origins: Vec<Origin>,
    /// True when no team binds the role itself: it is held through roles that include it.
    pub implied: bool,
}

impl RoleExplained {
    /// `ops, platform (as owner)`.
    pub fn via(&self) -> String {
        self.origins
            .iter()
            .map(Origin::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A group the user has that maps to no team.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourcedGroup {
    pub source: Source,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub user: UserSummary,
    /// `defaults.locked_users`: reconcile leaves this user's teams alone.
    pub locked: bool,
    /// The claims groups stored from the last login; `None` when never known.
    pub claims_groups: Option<Vec<String>>,
    /// The SCIM groups; `None` when the user was never provisioned over SCIM.
    pub scim_groups: Option<Vec<String>>,
    pub teams: Vec<TeamExplained>,
    pub roles: Vec<RoleExplained>,
    pub unmapped_groups: Vec<SourcedGroup>,
    /// What a reconcile with this config would still change (empty when in sync).
    pub pending: reconcile::Plan,
}

/// Explain `held` for a user whose stored inputs are `input`, against `view`.
pub fn explain(
    user: UserSummary,
    input: &UserInput,
    held: &[HeldMembership],
    view: &ConfigView,
) -> Explanation {
    let mut teams: BTreeMap<TeamId, TeamExplained> = BTreeMap::new();
    for m in held {
        let (group, mapping) = match m.row.source {
            Source::Claims | Source::Scim => {
                let mapping = Mapping::new(input.provider.clone(), &m.row.via, m.row.team.clone());
                let mapped = view.mappings.contains(&mapping);
                (Some(m.row.via.clone()), mapped.then_some(mapping))
            }
            Source::Config | Source::Default => (None, None),
        };
        let why = why_held(&m.row, mapping.is_some(), view);
        teams
            .entry(m.row.team.clone())
            .or_insert_with(|| TeamExplained {
                id: m.row.team.clone(),
                name: view.teams.get(&m.row.team).map(|t| t.name.clone()),
                grants: Vec::new(),
            })
            .grants
            .push(GrantExplained {
                source: m.row.source,
                group,
                mapping,
                why,
                since: m.since.clone(),
                confirmed_at: m.confirmed_at.clone(),
            });
    }
    let bindings: BTreeMap<&TeamId, Vec<RoleBinding>> = teams
        .keys()
        .map(|id| {
            (
                id,
                view.teams
                    .get(id)
                    .map(|t| t.roles.iter().cloned().collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let effective = EffectiveRoles::of(
        teams.keys(),
        |t| bindings.get(t).map(Vec::as_slice).unwrap_or(&[]),
        &view.hierarchy,
    );
    let policy = view.policy();
    let mut unmapped = BTreeSet::new();
    for (source, groups) in [
        (Source::Claims, &input.claims_groups),
        (Source::Scim, &input.scim_groups),
    ] {
        for g in groups.iter().flatten() {
            let mapped = policy
                .mappings
                .teams_for(&input.provider, g)
                .any(|t| policy.known_teams.contains(t));
            if !mapped {
                unmapped.insert(SourcedGroup {
                    source,
                    group: g.trim().to_owned(),
                });
            }
        }
    }
    let current: BTreeSet<MembershipRow> = held.iter().map(|m| m.row.clone()).collect();
    let target = reconcile::reconcile(input, &policy, &current);
    Explanation {
        user,
        locked: input.locked,
        claims_groups: input.claims_groups.clone(),
        scim_groups: input.scim_groups.clone(),
        teams: teams.into_values().collect(),
        roles: effective
            .grants
            .into_iter()
            .map(|(b, origins)| {
                let mut teams: Vec<TeamId> = origins.iter().map(|o| o.team.clone()).collect();
                teams.dedup();
                RoleExplained {
                    scope: b.scope.to_string(),
                    role: b.role.to_string(),
                    teams,
                    implied: origins.iter().all(|o| o.through.is_some()),
                    origins: origins.into_iter().collect(),
                }
            })
            .collect(),
        unmapped_groups: unmapped.into_iter().collect(),
        pending: reconcile::diff(&current, &target.rows),
    }
}

fn why_held(row: &MembershipRow, mapped: bool, view: &ConfigView) -> String {
    let gone = if view.teams.contains_key(&row.team) {
        ""
    } else {
        " (the team is no longer in the config; the next reconcile removes this)"
    };
    let text = match row.source {
        Source::Claims if mapped => format!(
            "group {} from the user's last sign-in maps to this team",
            row.via
        ),
        Source::Scim if mapped => format!("SCIM group {} maps to this team", row.via),
        Source::Claims | Source::Scim => format!(
            "group {} no longer maps to this team in the config; the next reconcile removes this",
            row.via
        ),
        Source::Config => "the user is named in this team's members in the config file".into(),
        Source::Default => {
            "none of the user's groups maps to a team, so defaults.teams_without_groups applies"
                .into()
        }
    };
    format!("{text}{gone}")
}

/// The explanation as text for a terminal.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    let u = &e.user;
    let _ = writeln!(
        out,
        "{}{}",
        u.label,
        u.name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  id {}  provider {}  subject {}  {}{}",
        u.public_id,
        u.provider,
        u.subject,
        if u.active { "active" } else { "DEACTIVATED" },
        if e.locked {
            "  LOCKED (reconcile leaves this user's teams alone)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  last sign-in: {}",
        u.last_login_at.as_deref().unwrap_or("never")
    );
    let groups = |g: &Option<Vec<String>>| match g {
        None => "unknown".to_owned(),
        Some(g) if g.is_empty() => "none".to_owned(),
        Some(g) => g.join(", "),
    };
    let _ = writeln!(
        out,
        "  claims groups{}: {}",
        u.claims_groups_at
            .as_deref()
            .map(|at| format!(" (from sign-in at {at})"))
            .unwrap_or_default(),
        groups(&e.claims_groups)
    );
    let _ = writeln!(
        out,
        "  SCIM groups: {}",
        if e.scim_groups.is_none() {
            "not provisioned over SCIM".to_owned()
        } else {
            groups(&e.scim_groups)
        }
    );
    out.push_str("\nTeams:\n");
    if e.teams.is_empty() {
        out.push_str("  (none)\n");
    }
    for t in &e.teams {
        let _ = writeln!(
            out,
            "  {}  \"{}\"",
            t.id,
            t.name.as_deref().unwrap_or("(not in the config)")
        );
        for g in &t.grants {
            let _ = writeln!(out, "    {:<8} {}", g.source.as_str(), g.why);
            if let Some(m) = &g.mapping {
                let _ = writeln!(out, "             mapping: {m}");
            }
            let _ = writeln!(
                out,
                "             since {}, last confirmed {}",
                g.since, g.confirmed_at
            );
        }
    }
    out.push_str("\nRoles:\n");
    if e.roles.is_empty() {
        out.push_str("  (none)\n");
    }
    for r in &e.roles {
        let _ = writeln!(
            out,
            "  {:<20} on {:<40} through {}",
            r.role,
            r.scope,
            r.via()
        );
    }
    if !e.roles.is_empty() {
        out.push_str("  (a role on a scope applies to everything beneath it)\n");
    }
    if e.roles
        .iter()
        .any(|r| r.origins.iter().any(|o| o.through.is_some()))
    {
        out.push_str("  (\"as owner\": implied by the role the team holds, which includes it)\n");
    }
    out.push_str("\nGroups that map to nothing:\n");
    if e.unmapped_groups.is_empty() {
        out.push_str("  (none)\n");
    }
    for g in &e.unmapped_groups {
        let _ = writeln!(out, "  {:<8} {}", g.source.as_str(), g.group);
    }
    if !e.pending.is_empty() {
        out.push_str("\nNot yet applied (the next reconcile makes these changes):\n");
        for r in &e.pending.add {
            let _ = writeln!(out, "  + team {} ({} {})", r.team, r.source.as_str(), r.via);
        }
        for r in &e.pending.remove {
            let _ = writeln!(out, "  - team {} ({} {})", r.team, r.source.as_str(), r.via);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::TeamDecl;
    use crate::domain::roles::RoleBinding;
    use crate::domain::{ProviderId, Role, Scope};

    fn team(id: &str) -> TeamId {
        TeamId::parse(id).unwrap()
    }

    fn provider() -> ProviderId {
        ProviderId::parse("okta").unwrap()
    }

    fn view() -> ConfigView {
        let mut v = ConfigView::default();
        for (id, scope, role) in [
            ("security", "org/acme", "viewer"),
            ("infra", "org/acme/space/infra", "editor"),
            ("everyone", "org/acme", "viewer"),
        ] {
            v.teams.insert(
                team(id),
                TeamDecl {
                    name: id.to_uppercase(),
                    scope: None,
                    roles: [RoleBinding {
                        scope: Scope::parse(scope).unwrap(),
                        role: Role::parse(role).unwrap(),
                    }]
                    .into(),
                    members: BTreeSet::new(),
                },
            );
        }
        v.mappings
            .insert(Mapping::new(provider(), "Security", team("security")));
        v.teams_without_groups = vec![team("everyone")];
        v
    }

    fn held(team_id: &str, source: Source, via: &str) -> HeldMembership {
        HeldMembership {
            row: MembershipRow {
                team: team(team_id),
                source,
                via: via.into(),
            },
            since: "2024-01-01T00:00:00Z".into(),
            confirmed_at: "2024-02-01T00:00:00Z".into(),
        }
    }

    fn input() -> UserInput {
        UserInput {
            provider: provider(),
            claims_groups: Some(vec!["Security".into(), "Unmapped".into()]),
            scim_groups: Some(vec!["Elsewhere".into()]),
            config_teams: vec![team("infra")],
            active: true,
            locked: false,
        }
    }

    #[test]
    fn each_grant_names_its_source_group_and_mapping() {
        let held = [
            held("security", Source::Claims, "security"),
            held("infra", Source::Config, ""),
        ];
        let e = explain(UserSummary::default(), &input(), &held, &view());
        assert_eq!(e.teams.len(), 2);
        let security = e.teams.iter().find(|t| t.id == team("security")).unwrap();
        assert_eq!(security.grants[0].source, Source::Claims);
        assert_eq!(security.grants[0].group.as_deref(), Some("security"));
        assert_eq!(
            security.grants[0].mapping,
            Some(Mapping::new(provider(), "security", team("security")))
        );
        assert_eq!(security.grants[0].confirmed_at, "2024-02-01T00:00:00Z");
        let infra = e.teams.iter().find(|t| t.id == team("infra")).unwrap();
        assert!(infra.grants[0].why.contains("members"));
        assert!(e.pending.is_empty(), "{:?}", e.pending);
    }

    #[test]
    fn roles_name_the_teams_that_grant_them() {
        let held = [
            held("security", Source::Claims, "security"),
            held("infra", Source::Config, ""),
        ];
        let e = explain(UserSummary::default(), &input(), &held, &view());
        let roles: Vec<(&str, &str, Vec<&str>)> = e
            .roles
            .iter()
            .map(|r| {
                (
                    r.scope.as_str(),
                    r.role.as_str(),
                    r.teams.iter().map(TeamId::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            roles,
            vec![
                ("org/acme", "viewer", vec!["security"]),
                ("org/acme/space/infra", "editor", vec!["infra"]),
                ("org/acme/space/infra", "viewer", vec!["infra"]),
            ]
        );
        // The implied viewer says where it comes from: infra's editor role includes it.
        let implied = &e.roles[2];
        assert!(implied.implied && !e.roles[1].implied);
        assert_eq!(implied.via(), "infra (as editor)");
        let text = render_text(&e);
        assert!(
            text.contains("viewer               on org/acme/space/infra                     through infra (as editor)"),
            "{text}"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json["roles"][2]["origins"],
            serde_json::json!([{"team": "infra", "through": "editor"}])
        );
        assert_eq!(json["roles"][2]["implied"], true);
    }

    #[test]
    fn groups_mapping_to_nothing_are_listed_per_source() {
        let e = explain(UserSummary::default(), &input(), &[], &view());
        assert_eq!(
            e.unmapped_groups,
            vec![
                SourcedGroup {
                    source: Source::Claims,
                    group: "Unmapped".into()
                },
                SourcedGroup {
                    source: Source::Scim,
                    group: "Elsewhere".into()
                },
            ]
        );
    }

    #[test]
    fn a_default_team_is_explained_and_stale_rows_show_as_pending() {
        let mut input = input();
        input.claims_groups = Some(vec![]);
        input.scim_groups = None;
        input.config_teams.clear();
        let held = [
            held("everyone", Source::Default, ""),
            held("security", Source::Claims, "security"),
        ];
        let e = explain(UserSummary::default(), &input, &held, &view());
        let everyone = e.teams.iter().find(|t| t.id == team("everyone")).unwrap();
        assert!(
            everyone.grants[0]
                .why
                .contains("defaults.teams_without_groups")
        );
        // The stored claims row is no longer backed by the stored groups.
        assert_eq!(e.pending.remove.len(), 1);
        assert!(render_text(&e).contains("Not yet applied"));
    }

    #[test]
    fn a_team_gone_from_the_config_says_so() {
        let held = [held("vanished", Source::Config, "")];
        let e = explain(UserSummary::default(), &input(), &held, &view());
        assert_eq!(e.teams[0].name, None);
        assert!(e.teams[0].grants[0].why.contains("no longer in the config"));
        assert!(render_text(&e).contains("(not in the config)"));
    }
}
