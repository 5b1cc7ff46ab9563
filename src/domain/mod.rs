//! Pure domain types and rules: identifiers, scopes and roles, the group mapping, and the
//! reconcile function that decides memberships. Nothing here does I/O or knows about axum or
//! SQLite; the store applies what these functions decide.

pub mod explain;
pub mod ids;
pub mod plan;
pub mod reconcile;
#[cfg(test)]
mod reconcile_props;
pub mod roles;

pub use ids::{ParseError, ProviderId, Role, Scope, TeamId};
