//! Pure domain types and rules: identifiers, scopes and roles, the group mapping, the
//! reconcile function that decides memberships, plan and explain, the SCIM resource model,
//! secrets and the clock. Nothing here does I/O or knows about axum or a database; the layers
//! above apply what these functions decide.

pub mod clock;
pub mod explain;
pub mod ids;
pub mod plan;
pub mod reconcile;
#[cfg(test)]
mod reconcile_props;
pub mod roles;
pub mod scim;
pub mod secret;
pub mod tenant;

pub use clock::Clock;
pub use ids::{ParseError, ProviderId, Role, Scope, TeamId};
