//! Effective roles: the union of the role bindings of a user's teams. A role on a scope applies
//! to everything beneath it, so a check asks whether some binding's scope covers the target.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::ids::{Role, Scope, TeamId};

/// One role a team holds on one scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RoleBinding {
    pub scope: Scope,
    pub role: Role,
}

/// A user's roles with the teams that grant each, ordered by scope then role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveRoles {
    pub grants: BTreeMap<RoleBinding, BTreeSet<TeamId>>,
}

impl EffectiveRoles {
    /// Union of the bindings of `teams`, looked up in `bindings_of`.
    pub fn of<'a>(
        teams: impl IntoIterator<Item = &'a TeamId>,
        bindings_of: impl Fn(&TeamId) -> &'a [RoleBinding],
    ) -> Self {
        let mut grants: BTreeMap<RoleBinding, BTreeSet<TeamId>> = BTreeMap::new();
        for team in teams {
            for binding in bindings_of(team) {
                grants
                    .entry(binding.clone())
                    .or_default()
                    .insert(team.clone());
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

    /// `scope=role` pairs, the form of the `X-Teamgate-Roles` header.
    pub fn pairs(&self) -> Vec<String> {
        self.grants
            .keys()
            .map(|b| format!("{}={}", b.scope, b.role))
            .collect()
    }
}
