//! Effective roles: the union of the role bindings of a user's teams, and of the roles those
//! roles imply. A role on a scope applies to everything beneath it, so a check asks whether
//! some binding's scope covers the target; a role that includes others (`owner` includes
//! `editor`, which includes `viewer`) is held together with them on the same scope.
//!
//! The built-in order is `owner` ⊇ `editor` ⊇ `viewer`; the specialised built-in roles
//! (`agent`, `platform-admin`, `policy-manager`, ...) stand alone. A config may declare roles
//! of its own that include others (`[[role]] name = "auditor", includes = ["viewer"]`);
//! [`RoleHierarchy::check`] refuses unknown names and cycles.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ids::{Role, Scope, TeamId};

/// One role a team holds on one scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RoleBinding {
    pub scope: Scope,
    pub role: Role,
}

/// The built-in implications: (role, the roles it includes directly).
pub const BUILTIN_INCLUDES: &[(&str, &[&str])] = &[("owner", &["editor"]), ("editor", &["viewer"])];

/// Which roles each role includes directly. The closure is what a holder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleHierarchy {
    includes: BTreeMap<Role, BTreeSet<Role>>,
}

impl Default for RoleHierarchy {
    /// The built-in order.
    fn default() -> Self {
        let mut h = Self {
            includes: BTreeMap::new(),
        };
        for (role, included) in BUILTIN_INCLUDES {
            if let Ok(role) = Role::parse(role) {
                h.declare(role, included.iter().filter_map(|r| Role::parse(r).ok()));
            }
        }
        h
    }
}

/// Why a set of declared implications cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HierarchyError {
    #[error("role \"{role}\" includes \"{unknown}\", which is not a known role")]
    Unknown { role: Role, unknown: Role },
    #[error("roles include each other in a cycle: {}", .0.iter().map(Role::as_str).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<Role>),
}

impl RoleHierarchy {
    /// No implications at all (to rebuild a stored hierarchy, built-in order included).
    pub fn empty() -> Self {
        Self {
            includes: BTreeMap::new(),
        }
    }

    /// Add `includes` to what `role` includes directly.
    pub fn declare(&mut self, role: Role, includes: impl IntoIterator<Item = Role>) {
        self.includes.entry(role).or_default().extend(includes);
    }

    /// Every (role, directly included roles) pair, sorted.
    pub fn direct(&self) -> &BTreeMap<Role, BTreeSet<Role>> {
        &self.includes
    }

    /// Every name used is in `known`, and no role includes itself through any chain.
    pub fn check(&self, known: &BTreeSet<Role>) -> Result<(), HierarchyError> {
        for (role, included) in &self.includes {
            if let Some(unknown) = included.iter().find(|r| !known.contains(*r)) {
                return Err(HierarchyError::Unknown {
                    role: role.clone(),
                    unknown: unknown.clone(),
                });
            }
        }
        for start in self.includes.keys() {
            if let Some(cycle) = self.cycle_from(start) {
                return Err(HierarchyError::Cycle(cycle));
            }
        }
        Ok(())
    }

    /// A path from `start` back to itself, if there is one (depth-first).
    fn cycle_from(&self, start: &Role) -> Option<Vec<Role>> {
        let mut path = vec![start.clone()];
        let mut seen = BTreeSet::new();
        self.walk(start, start, &mut path, &mut seen)
    }

    fn walk(
        &self,
        start: &Role,
        at: &Role,
        path: &mut Vec<Role>,
        seen: &mut BTreeSet<Role>,
    ) -> Option<Vec<Role>> {
        for next in self.includes.get(at).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if let Some(c) = self.walk(start, next, path, seen) {
                    return Some(c);
                }
                path.pop();
            }
        }
        None
    }

    /// The roles holding `role` also gives, directly or through others (not `role` itself).
    /// Terminates on any input: a role is visited once.
    pub fn implied(&self, role: &Role) -> BTreeSet<Role> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&Role> = vec![role];
        while let Some(r) = todo.pop() {
            for next in self.includes.get(r).into_iter().flatten() {
                if next != role && out.insert(next.clone()) {
                    todo.push(next);
                }
            }
        }
        out
    }
}

/// Where an effective role comes from: a team's binding of it, or a team's binding of a role
/// that implies it (`through`, the role bound).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    pub team: TeamId,
    /// `None`: the team binds this role itself; `Some(r)`: the team binds `r`, which includes it.
    pub through: Option<Role>,
}

impl Origin {
    /// `team`, or `team (as owner)` for an implied role.
    pub fn describe(&self) -> String {
        match &self.through {
            None => self.team.to_string(),
            Some(r) => format!("{} (as {r})", self.team),
        }
    }
}

/// A user's roles with where each comes from, ordered by scope then role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveRoles {
    pub grants: BTreeMap<RoleBinding, BTreeSet<Origin>>,
}

impl EffectiveRoles {
    /// Union of the bindings of `teams`, looked up in `bindings_of`, and of the roles they
    /// imply under `hierarchy` (on the same scope).
    pub fn of<'a>(
        teams: impl IntoIterator<Item = &'a TeamId>,
        bindings_of: impl Fn(&TeamId) -> &'a [RoleBinding],
        hierarchy: &RoleHierarchy,
    ) -> Self {
        let mut grants: BTreeMap<RoleBinding, BTreeSet<Origin>> = BTreeMap::new();
        for team in teams {
            for binding in bindings_of(team) {
                grants.entry(binding.clone()).or_default().insert(Origin {
                    team: team.clone(),
                    through: None,
                });
                for implied in hierarchy.implied(&binding.role) {
                    grants
                        .entry(RoleBinding {
                            scope: binding.scope.clone(),
                            role: implied,
                        })
                        .or_default()
                        .insert(Origin {
                            team: team.clone(),
                            through: Some(binding.role.clone()),
                        });
                }
            }
        }
        Self { grants }
    }

    /// True when the user holds `role` on `scope` or on a scope above it.
    pub fn has(&self, role: &Role, scope: &Scope) -> bool {
        self.grants
            .keys()
            .any(|b| &b.role == role && b.scope.covers(scope))
    }

    /// True when the user holds `role` on some scope.
    pub fn holds(&self, role: &Role) -> bool {
        self.grants.keys().any(|b| &b.role == role)
    }

    /// `scope=role` pairs, implied roles included: the form of the `X-Teamgate-Roles` header
    /// and the assertion's `roles`.
    pub fn pairs(&self) -> Vec<String> {
        self.grants
            .keys()
            .map(|b| format!("{}={}", b.scope, b.role))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(s: &str) -> Role {
        Role::parse(s).unwrap()
    }

    fn binding(scope: &str, r: &str) -> RoleBinding {
        RoleBinding {
            scope: Scope::parse(scope).unwrap(),
            role: role(r),
        }
    }

    fn known(extra: &[&str]) -> BTreeSet<Role> {
        super::super::ids::BUILTIN_ROLES
            .iter()
            .chain(extra)
            .map(|r| role(r))
            .collect()
    }

    #[test]
    fn owner_includes_editor_and_viewer_and_specialised_roles_stand_alone() {
        let h = RoleHierarchy::default();
        assert_eq!(
            h.implied(&role("owner")),
            [role("editor"), role("viewer")].into()
        );
        assert_eq!(h.implied(&role("editor")), [role("viewer")].into());
        assert!(h.implied(&role("viewer")).is_empty());
        assert!(h.implied(&role("platform-admin")).is_empty());
        assert!(h.check(&known(&[])).is_ok());
    }

    #[test]
    fn an_owner_on_an_org_passes_a_viewer_check_beneath_it_and_says_why() {
        let team = TeamId::parse("platform").unwrap();
        let bindings = [binding("org/acme", "owner")];
        let e = EffectiveRoles::of([&team], |_| &bindings[..], &RoleHierarchy::default());
        let space = Scope::parse("org/acme/space/infra").unwrap();
        assert!(e.has(&role("viewer"), &space));
        assert!(e.has(&role("editor"), &space));
        assert!(!e.has(&role("platform-admin"), &space));
        assert!(!e.has(&role("viewer"), &Scope::parse("org/other").unwrap()));
        assert_eq!(
            e.pairs(),
            vec!["org/acme=editor", "org/acme=owner", "org/acme=viewer"]
        );
        let origins = &e.grants[&binding("org/acme", "viewer")];
        assert_eq!(
            origins.iter().map(Origin::describe).collect::<Vec<_>>(),
            vec!["platform (as owner)"]
        );
        let own = &e.grants[&binding("org/acme", "owner")];
        assert_eq!(
            own.iter().map(Origin::describe).collect::<Vec<_>>(),
            vec!["platform"]
        );
    }

    #[test]
    fn custom_roles_include_others_and_chains_are_followed() {
        let mut h = RoleHierarchy::default();
        h.declare(
            role("auditor"),
            [role("viewer"), role("exception-reviewer")],
        );
        h.declare(role("lead"), [role("auditor"), role("editor")]);
        assert!(h.check(&known(&["auditor", "lead"])).is_ok());
        assert_eq!(
            h.implied(&role("lead")),
            [
                role("auditor"),
                role("editor"),
                role("exception-reviewer"),
                role("viewer")
            ]
            .into()
        );
    }

    #[test]
    fn unknown_names_and_cycles_are_refused() {
        let mut h = RoleHierarchy::default();
        h.declare(role("auditor"), [role("auditer")]);
        assert!(matches!(
            h.check(&known(&["auditor"])),
            Err(HierarchyError::Unknown { .. })
        ));
        let mut h = RoleHierarchy::default();
        h.declare(role("a-role"), [role("b-role")]);
        h.declare(role("b-role"), [role("c-role")]);
        h.declare(role("c-role"), [role("a-role")]);
        let err = h
            .check(&known(&["a-role", "b-role", "c-role"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "roles include each other in a cycle: a-role -> b-role -> c-role -> a-role"
        );
        let mut h = RoleHierarchy::default();
        h.declare(role("viewer"), [role("owner")]);
        assert!(matches!(
            h.check(&known(&[])),
            Err(HierarchyError::Cycle(_))
        ));
        // Even a cyclic hierarchy never loops when asked.
        assert!(h.implied(&role("viewer")).contains(&role("editor")));
    }
}
