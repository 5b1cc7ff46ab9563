//! The OpenID Connect relying party: provider runtimes (discovery and JWKS caches), the
//! login flow (start and callback), ID-token verification, claim reading, and group
//! resolution beyond the token (Microsoft Graph, the Okta Groups API, refresh re-evaluation).
//! Built on the `openidconnect` crate; this module adds what it leaves to the application.

pub mod claims;
pub mod error;
pub mod graph;
pub mod groups_cache;
pub mod http_client;
pub mod jwk;
pub mod login;
pub mod metadata;
pub mod okta;
pub mod pending;
pub mod provider;
pub mod refresh;
pub mod userinfo;
pub mod verify;

pub use error::LoginError;
pub use provider::{ProviderRuntime, Providers};
