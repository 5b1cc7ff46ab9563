//! `[[team]]` (ids, the optional scope the team belongs to, role bindings on known roles and
//! valid scopes within it, group mappings of known providers (with the tenant for a
//! multi-tenant provider), members) and `[defaults]` (default teams, locked users).

use std::collections::{BTreeMap, BTreeSet};

use super::Validator;
use crate::config::raw::{self, S};
use crate::config::{DefaultsConfig, GroupKey, TeamConfig, normalise_email};
use crate::domain::roles::RoleBinding;
use crate::domain::{ProviderId, Role, Scope, TeamId, tenant};

/// What a team mapping needs to know of the provider it names.
pub(super) struct MappedProvider {
    pub(super) key: GroupKey,
    /// `Some(allowed tenants)` for a multi-tenant Entra provider: its mappings name a tenant.
    pub(super) tenants: Option<Vec<String>>,
}

impl Validator<'_> {
    pub(super) fn teams(
        &mut self,
        raws: &[S<raw::RawTeam>],
        known_roles: &BTreeSet<Role>,
        providers: &BTreeMap<ProviderId, MappedProvider>,
    ) -> Vec<TeamConfig> {
        let mut out: Vec<TeamConfig> = Vec::new();
        for st in raws {
            let line = self.line_of(&st.span());
            let t = st.get_ref();
            let Some(id) = self.parse_with(&t.id, "team.id", TeamId::parse) else {
                continue;
            };
            if out.iter().any(|o| o.id == id) {
                self.err(&t.id, format!("team id \"{id}\" is declared twice; merge the two [[team]] blocks or rename one"));
                continue;
            }
            let team_scope = t
                .scope
                .as_ref()
                .and_then(|s| self.parse_with(s, "team.scope", Scope::parse));
            let mut roles = Vec::new();
            for b in &t.roles {
                let b = b.get_ref();
                let scope = self.parse_with(&b.scope, "team.roles.scope", Scope::parse);
                if let (Some(within), Some(scope)) = (&team_scope, &scope)
                    && !within.covers(scope)
                {
                    self.err(&b.scope, format!("team \"{id}\" belongs to scope {within}, but binds a role on {scope}, outside it; bind the role on {within} or beneath it, or move the team to a scope that covers both"));
                    continue;
                }
                let role = self.parse_with(&b.role, "team.roles.role", Role::parse);
                if let Some(role) = &role
                    && !known_roles.contains(role)
                {
                    self.err(&b.role, format!("team \"{id}\": role \"{role}\" is not a built-in role; fix the spelling or declare it in custom_roles = [...] or a [[role]] block"));
                    continue;
                }
                if let (Some(scope), Some(role)) = (scope, role) {
                    roles.push(RoleBinding { scope, role });
                }
            }
            let mut groups = Vec::new();
            for g in &t.groups {
                let g = g.get_ref();
                let Some(provider) =
                    self.parse_with(&g.provider, "team.groups.provider", ProviderId::parse)
                else {
                    continue;
                };
                let Some(mapped) = providers.get(&provider) else {
                    self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" is not configured; add a [[provider]] with that id or fix the name"));
                    continue;
                };
                // A multi-tenant provider's groups belong to one tenant each: the mapping names
                // it, and the key becomes `{tid}/{group}` (security case J1).
                let group_tenant = match (&mapped.tenants, &g.tenant) {
                    (None, None) => None,
                    (None, Some(t)) => {
                        self.err(t, format!("team \"{id}\": provider \"{provider}\" is not multi-tenant; remove tenant from this mapping"));
                        continue;
                    }
                    (Some(allowed), None) => {
                        let example = allowed.first().map(String::as_str).unwrap_or("<tenant-id>");
                        self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" is multi-tenant, so a group mapping names the tenant it belongs to: write {{ provider = \"{provider}\", tenant = \"{example}\", ... }}"));
                        continue;
                    }
                    (Some(allowed), Some(t)) => match tenant::parse(t.get_ref()) {
                        Some(tid) if allowed.contains(&tid) => Some(tid),
                        _ => {
                            self.err(t, format!("team \"{id}\": tenant \"{}\" is not in provider \"{provider}\"'s allowed_tenants ({}); use one of them", t.get_ref(), allowed.join(", ")));
                            continue;
                        }
                    },
                };
                let key = &mapped.key;
                let value = match (key, &g.id, &g.name) {
                    (GroupKey::Id, Some(v), None) | (GroupKey::Name, None, Some(v)) => v,
                    (GroupKey::Id, _, _) => {
                        self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" matches groups by id; write {{ provider = \"{provider}\", id = \"...\" }}"));
                        continue;
                    }
                    (GroupKey::Name, _, _) => {
                        self.err(&g.provider, format!("team \"{id}\": provider \"{provider}\" matches groups by name; write {{ provider = \"{provider}\", name = \"...\" }}"));
                        continue;
                    }
                };
                if value.get_ref().trim().is_empty() {
                    self.err(value, format!("team \"{id}\": the group is empty"));
                    continue;
                }
                groups.push((
                    provider,
                    tenant::qualify(group_tenant.as_deref(), value.get_ref().trim()),
                ));
            }
            let mut members = Vec::new();
            for m in &t.members {
                match normalise_email(m.get_ref()) {
                    Some(e) => members.push(e),
                    None => self.err(
                        m,
                        format!(
                            "team \"{id}\": member \"{}\" is not an email address",
                            m.get_ref()
                        ),
                    ),
                }
            }
            out.push(TeamConfig {
                name: t.name.clone().unwrap_or_else(|| id.to_string()),
                scope: team_scope,
                id,
                roles,
                groups,
                members,
                line,
            });
        }
        out
    }

    pub(super) fn defaults(
        &mut self,
        d: &raw::RawDefaults,
        teams: &BTreeSet<TeamId>,
    ) -> DefaultsConfig {
        let mut out = DefaultsConfig {
            refuse_without_teams: d.refuse_without_teams.unwrap_or(true),
            ..DefaultsConfig::default()
        };
        for t in &d.teams_without_groups {
            if let Some(id) = self.parse_with(t, "defaults.teams_without_groups", TeamId::parse) {
                if teams.contains(&id) {
                    out.teams_without_groups.push(id);
                } else {
                    self.err(t, format!("defaults.teams_without_groups names team \"{id}\", which is not declared; add a [[team]] with that id"));
                }
            }
        }
        for u in &d.locked_users {
            match normalise_email(u.get_ref()) {
                Some(e) => {
                    out.locked_users.insert(e);
                }
                None => self.err(
                    u,
                    format!(
                        "defaults.locked_users: \"{}\" is not an email address",
                        u.get_ref()
                    ),
                ),
            }
        }
        out
    }
}
