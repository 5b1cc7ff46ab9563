//! The heart of teamgate: one pure function that decides which team memberships a user should
//! hold, from the user's external groups per source, the mapping table, the defaults and the
//! locks. The store applies the difference ([`diff`]) in one transaction; `plan` and `explain`
//! run the same function without applying it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ids::{ProviderId, TeamId};

/// Where a membership comes from. Rows of one source are only ever replaced by a newer input of
/// that same source, so a login never removes what SCIM granted and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Groups read from the ID token / userinfo / Graph at the user's last login.
    Claims,
    /// Groups the IdP pushed over SCIM.
    Scim,
    /// The user is named in a team's `members` list in the config file.
    Config,
    /// `defaults.teams_without_groups`: the user's groups map to nothing.
    Default,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Claims,
        Source::Scim,
        Source::Config,
        Source::Default,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Claims => "claims",
            Source::Scim => "scim",
            Source::Config => "config",
            Source::Default => "default",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|src| src.as_str() == s)
    }
}

/// One membership: the user is in `team` because of `source`, through group `via` (the
/// external group key; empty for config and default memberships).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MembershipRow {
    pub team: TeamId,
    pub source: Source,
    pub via: String,
}

/// Which external group (of which provider) grants which teams. Group keys are compared
/// case-insensitively: Entra object ids are GUIDs whose case varies between tools, and Okta
/// group names differing only by case are treated as one group (documented in the README).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingTable {
    by_group: BTreeMap<(ProviderId, String), BTreeSet<TeamId>>,
}

impl MappingTable {
    pub fn normalise(group: &str) -> String {
        group.trim().to_lowercase()
    }

    pub fn insert(&mut self, provider: ProviderId, group: &str, team: TeamId) {
        self.by_group
            .entry((provider, Self::normalise(group)))
            .or_default()
            .insert(team);
    }

    /// The teams a group of `provider` maps to (empty when it maps to nothing).
    pub fn teams_for(&self, provider: &ProviderId, group: &str) -> impl Iterator<Item = &TeamId> {
        self.by_group
            .get(&(provider.clone(), Self::normalise(group)))
            .into_iter()
            .flatten()
    }

    /// Every (provider, group, team) triple, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&ProviderId, &str, &TeamId)> {
        self.by_group
            .iter()
            .flat_map(|((p, g), teams)| teams.iter().map(move |t| (p, g.as_str(), t)))
    }

    /// The group keys of `provider` that map to at least one team.
    pub fn groups_of(&self, provider: &ProviderId) -> Vec<String> {
        self.by_group
            .keys()
            .filter(|(p, _)| p == provider)
            .map(|(_, g)| g.clone())
            .collect()
    }
}

/// Everything the config says that reconcile needs, apart from the user.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub mappings: MappingTable,
    /// Teams that exist in the config; rows for any other team are dropped.
    pub known_teams: BTreeSet<TeamId>,
    /// Given (source `default`) to a user whose groups and config entries map to nothing.
    pub teams_without_groups: Vec<TeamId>,
}

/// What is known about one user. `None` for a source means "unknown right now" (for example
/// the Graph call for an Entra overage failed): that source's current rows are kept as they
/// are, never read as "no groups".
#[derive(Debug, Clone)]
pub struct UserInput {
    /// The provider the user signs in with; group keys of both sources belong to it.
    pub provider: ProviderId,
    pub claims_groups: Option<Vec<String>>,
    pub scim_groups: Option<Vec<String>>,
    /// Teams whose `members` list names this user.
    pub config_teams: Vec<TeamId>,
    /// False for SCIM-deactivated or deleted users: they hold nothing, whatever their lock.
    pub active: bool,
    /// `defaults.locked_users`: reconcile never changes this user's teams once they have some
    /// (a locked user's first login still gives them their mapped teams).
    pub locked: bool,
}

/// The memberships a user should hold, plus the groups that mapped to nothing (for `explain`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    pub rows: BTreeSet<MembershipRow>,
    pub unmapped_groups: BTreeSet<String>,
}

/// Decide the memberships `input` should have. Pure: same inputs, same answer, whatever the
/// order or duplication of the group lists.
pub fn reconcile(input: &UserInput, policy: &Policy, current: &BTreeSet<MembershipRow>) -> Target {
    // Deprovisioning wins over everything, locks included: a deactivated user holds nothing.
    if !input.active {
        return Target::default();
    }
    // A lock holds the user's teams, not teams the config no longer has: the store drops those
    // memberships with the team, so `plan` must show them going, and a user left with none is
    // treated like one who never had any.
    let kept: BTreeSet<MembershipRow> = current
        .iter()
        .filter(|r| policy.known_teams.contains(&r.team))
        .cloned()
        .collect();
    if input.locked && !kept.is_empty() {
        return Target {
            rows: kept,
            unmapped_groups: BTreeSet::new(),
        };
    }
    let mut target = Target::default();
    for (source, groups) in [
        (Source::Claims, &input.claims_groups),
        (Source::Scim, &input.scim_groups),
    ] {
        match groups {
            None => target.rows.extend(
                current
                    .iter()
                    .filter(|r| r.source == source && policy.known_teams.contains(&r.team))
                    .cloned(),
            ),
            Some(groups) => {
                for group in groups {
                    let mut mapped = false;
                    for team in policy.mappings.teams_for(&input.provider, group) {
                        if policy.known_teams.contains(team) {
                            mapped = true;
                            target.rows.insert(MembershipRow {
                                team: team.clone(),
                                source,
                                via: MappingTable::normalise(group),
                            });
                        }
                    }
                    if !mapped {
                        target.unmapped_groups.insert(group.trim().to_owned());
                    }
                }
            }
        }
    }
    for team in &input.config_teams {
        if policy.known_teams.contains(team) {
            target.rows.insert(MembershipRow {
                team: team.clone(),
                source: Source::Config,
                via: String::new(),
            });
        }
    }
    if target.rows.is_empty() {
        for team in &policy.teams_without_groups {
            if policy.known_teams.contains(team) {
                target.rows.insert(MembershipRow {
                    team: team.clone(),
                    source: Source::Default,
                    via: String::new(),
                });
            }
        }
    }
    target
}

/// The change that takes `current` to `target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub add: Vec<MembershipRow>,
    pub remove: Vec<MembershipRow>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

pub fn diff(current: &BTreeSet<MembershipRow>, target: &BTreeSet<MembershipRow>) -> Plan {
    Plan {
        add: target.difference(current).cloned().collect(),
        remove: current.difference(target).cloned().collect(),
    }
}

/// The distinct teams of a set of rows.
pub fn teams_of(rows: &BTreeSet<MembershipRow>) -> BTreeSet<TeamId> {
    rows.iter().map(|r| r.team.clone()).collect()
}
