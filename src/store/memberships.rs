//! Records of team memberships and of the config tables (teams, role bindings, mappings) that
//! a config sync keeps equal to the file.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::reconcile::MembershipRow;

/// A stored membership with its timestamps.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMembership {
    pub row: MembershipRow,
    pub since: String,
    pub confirmed_at: String,
}

/// One member of a team, for the admin teams page.
#[derive(Debug, Clone, Serialize)]
pub struct TeamMemberRow {
    pub public_id: String,
    pub label: String,
    pub source: String,
    pub via: String,
}

/// Per team: how many distinct users are members, and the first few memberships.
pub type TeamMembers = BTreeMap<String, (i64, Vec<TeamMemberRow>)>;

/// What the config tables must hold after a sync: every role binding and every mapping.
#[derive(Debug, Clone, Default)]
pub struct ConfigTables {
    /// (team, scope, role)
    pub bindings: Vec<(String, String, String)>,
    /// (provider, normalised group key, team)
    pub mappings: Vec<(String, String, String)>,
}
