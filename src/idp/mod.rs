//! The client side of the identity providers: everything teamgate asks of an IdP and every
//! check of what it answers. Discovery and JWKS caches per provider ([`provider`]), ID-token
//! verification on top of the `openidconnect` crate ([`verify`], [`jwk`]), claim reading
//! ([`claims`]), userinfo, and group resolution beyond the token (Microsoft Graph, the Okta
//! Groups API, and their cache). One HTTP client for all of it ([`http_client`]: redirects
//! off, timeouts, size caps). It knows no HTTP routes and no database.

pub mod claims;
pub mod error;
pub mod graph;
pub mod groups_cache;
pub mod http_client;
pub mod jwk;
pub mod metadata;
pub mod okta;
pub mod provider;
pub mod userinfo;
pub mod verify;

pub use error::IdpError;
pub use provider::{ProviderRuntime, Providers};
