//! Who a signed-in user is, as applications see it: their teams (with the source and group
//! that granted each) and their effective roles. The home page, `/api/v1/me` and forward-auth
//! all render this one view.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::domain::TeamId;
use crate::domain::roles::{EffectiveRoles, RoleBinding};
use crate::store::memberships::StoredMembership;
use crate::store::users::UserRecord;
use crate::store::{Store, StoreError};

/// One reason a user is in a team: the source and the group that granted it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamGrant {
    pub source: &'static str,
    /// The external group that granted the membership (empty for config/default).
    pub via: String,
    pub since: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub grants: Vec<TeamGrant>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub scope: String,
    pub role: String,
    /// The teams that give it, directly or through a role that includes it.
    pub teams: Vec<String>,
    /// Where it comes from: `team`, or `team (as owner)` when it is implied by a bound role.
    pub via: Vec<String>,
    /// True when no team binds the role itself: it is held only through roles that include it.
    pub implied: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// The stable opaque id (`X-Teamgate-User`, assertion `sub`): THE identity.
    pub id: String,
    /// The email, only when the IdP verified it (an unverified email is anyone's claim: the
    /// "nOAuth" class of account takeover); informational, never an identity.
    pub email: Option<String>,
    /// Whether the IdP verified the user's email (`email_verified`, or Entra's `xms_edov`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub provider: String,
    pub teams: Vec<TeamView>,
    pub roles: Vec<RoleView>,
    #[serde(skip)]
    pub effective: EffectiveRoles,
}

impl Identity {
    /// Build from stored memberships; team names and role bindings come from `config`.
    pub fn build(config: &Config, user: &UserRecord, rows: Vec<StoredMembership>) -> Identity {
        let mut teams: BTreeMap<TeamId, TeamView> = BTreeMap::new();
        for m in rows {
            let Some(team) = config.team(&m.row.team) else {
                continue;
            };
            teams
                .entry(team.id.clone())
                .or_insert_with(|| TeamView {
                    id: team.id.to_string(),
                    name: team.name.clone(),
                    grants: Vec::new(),
                })
                .grants
                .push(TeamGrant {
                    source: m.row.source.as_str(),
                    via: m.row.via,
                    since: m.since,
                });
        }
        let no_bindings: &[RoleBinding] = &[];
        let effective = EffectiveRoles::of(
            teams.keys(),
            |t| {
                config
                    .team(t)
                    .map(|t| t.roles.as_slice())
                    .unwrap_or(no_bindings)
            },
            &config.role_hierarchy,
        );
        let roles = effective
            .grants
            .iter()
            .map(|(b, origins)| {
                let mut teams: Vec<String> = origins.iter().map(|o| o.team.to_string()).collect();
                teams.dedup();
                RoleView {
                    scope: b.scope.to_string(),
                    role: b.role.to_string(),
                    teams,
                    via: origins.iter().map(|o| o.describe()).collect(),
                    implied: origins.iter().all(|o| o.through.is_some()),
                }
            })
            .collect();
        Identity {
            id: user.public_id.clone(),
            email: user.email.clone().filter(|_| user.email_verified),
            email_verified: user.email_verified && user.email.is_some(),
            name: user.name.clone(),
            provider: user.provider.clone(),
            teams: teams.into_values().collect(),
            roles,
            effective,
        }
    }

    /// Read the user's memberships and build their identity.
    pub async fn load(
        store: &Store,
        config: &Config,
        user: &UserRecord,
    ) -> Result<Identity, StoreError> {
        let user_id = user.id;
        let rows = store.read(move |tx| tx.memberships(user_id)).await?;
        Ok(Self::build(config, user, rows))
    }

    pub fn team_ids(&self) -> Vec<&str> {
        self.teams.iter().map(|t| t.id.as_str()).collect()
    }
}
