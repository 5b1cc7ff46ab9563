//! The roles a config knows: the built-in list, `custom_roles = [...]` (roles that include
//! nothing), and `[[role]]` blocks declaring a role with the roles it includes
//! (`includes = ["viewer"]`). Both forms may be used; a name is declared once. The built-in
//! order (`owner` ⊇ `editor` ⊇ `viewer`) is fixed, so `[[role]]` names a new role only.
//! Includes must name known roles and never form a cycle.

use std::collections::{BTreeMap, BTreeSet};

use super::Validator;
use crate::config::raw::{self, S};
use crate::domain::Role;
use crate::domain::ids::BUILTIN_ROLES;
use crate::domain::roles::{HierarchyError, RoleHierarchy};

impl Validator<'_> {
    pub(super) fn roles(
        &mut self,
        custom: &[S<String>],
        declared: &[S<raw::RawRole>],
    ) -> (BTreeSet<Role>, RoleHierarchy) {
        let mut known: BTreeSet<Role> = BUILTIN_ROLES
            .iter()
            .filter_map(|r| Role::parse(r).ok())
            .collect();
        let builtin = known.clone();
        for r in custom {
            if let Some(role) = self.parse_with(r, "custom_roles", Role::parse) {
                known.insert(role);
            }
        }
        // First pass: every declared name, so includes may name a role declared further down.
        let mut lines: BTreeMap<Role, usize> = BTreeMap::new();
        let mut names: Vec<Option<Role>> = Vec::with_capacity(declared.len());
        for d in declared {
            let r = d.get_ref();
            let role = self.parse_with(&r.name, "role.name", Role::parse);
            let role = match role {
                Some(role) if builtin.contains(&role) => {
                    self.err(&r.name, format!("[[role]] \"{role}\" is a built-in role, whose implications are fixed (owner includes editor, editor includes viewer); declare a role of your own"));
                    None
                }
                Some(role) if !known.insert(role.clone()) => {
                    self.err(&r.name, format!("role \"{role}\" is declared twice (in custom_roles or another [[role]]); declare it once"));
                    None
                }
                other => other,
            };
            if let Some(role) = &role {
                lines.insert(role.clone(), self.line_of(&d.span()));
            }
            names.push(role);
        }
        let mut hierarchy = RoleHierarchy::default();
        for (d, role) in declared.iter().zip(names) {
            let Some(role) = role else { continue };
            let mut includes = Vec::new();
            for inc in &d.get_ref().includes {
                let Some(included) = self.parse_with(inc, "role.includes", Role::parse) else {
                    continue;
                };
                if !known.contains(&included) {
                    self.err(inc, format!("role \"{role}\" includes \"{included}\", which is not a known role; fix the spelling, or declare it in custom_roles or a [[role]] block"));
                } else if included == role {
                    self.err(
                        inc,
                        format!("role \"{role}\" includes itself; remove it from its includes"),
                    );
                } else {
                    includes.push(included);
                }
            }
            hierarchy.declare(role, includes);
        }
        if let Err(e) = hierarchy.check(&known) {
            let (line, e) = match e {
                HierarchyError::Cycle(mut path) => {
                    // Name the cycle from the role declared first, on that role's line.
                    path.pop();
                    let first = (0..path.len())
                        .min_by_key(|i| lines.get(&path[*i]).copied().unwrap_or(usize::MAX))
                        .unwrap_or(0);
                    path.rotate_left(first);
                    if let Some(start) = path.first().cloned() {
                        path.push(start);
                    }
                    let line = path.first().and_then(|r| lines.get(r)).copied();
                    (line, HierarchyError::Cycle(path))
                }
                other @ HierarchyError::Unknown { .. } => {
                    let line = match &other {
                        HierarchyError::Unknown { role, .. } => lines.get(role).copied(),
                        HierarchyError::Cycle(_) => None,
                    };
                    (line, other)
                }
            };
            self.push(
                line.unwrap_or(0),
                format!("{e}; remove one of the includes so that no role includes itself"),
            );
        }
        (known, hierarchy)
    }
}
