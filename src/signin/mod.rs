//! The sign-in use case: what happens after the IdP's answer is verified. Settle the user's
//! groups ([`groups`]), run the login transaction ([`complete`]), and keep re-evaluating the
//! groups of signed-in users with their refresh tokens ([`refresh`]). It calls the IdP client
//! ([`crate::idp`]), the membership use case and the storage port; it knows no HTTP routes,
//! cookies or SQL. The OIDC adapter ([`crate::oidc`]) drives it.

pub mod complete;
pub mod error;
pub mod groups;
pub mod refresh;
pub mod sealed;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use complete::{Accepted, check_email_domain};
pub use error::LoginError;
pub use refresh::RefreshGrants;

use crate::config::{LiveConfig, ProviderConfig, ProviderKind};
use crate::domain::Clock;
use crate::domain::secret::Secret;
use crate::idp::Providers;
use crate::idp::claims::GroupsClaim;
use crate::store::Store;

/// What a verified login tells teamgate (built by the OIDC adapter from the callback).
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    pub provider: String,
    /// The stable subject: `sub`, or Entra's `oid`.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: GroupsClaim,
    /// Every claim of the verified ID token.
    pub claims: Map<String, Value>,
    /// The issuer the ID token was verified against (Entra multi-tenant: the tenant's).
    pub issuer: String,
    pub access_token: Secret,
    /// The ID token as received, for `id_token_hint` at an RP-initiated logout.
    pub id_token: Secret,
    /// Issued when the provider grants offline access; used to re-read groups (E7).
    pub refresh_token: Option<Secret>,
    pub return_to: String,
}

/// The sign-in use case and what it works with; cheap to clone.
#[derive(Clone)]
pub struct SignIn {
    pub store: Store,
    pub config: Arc<LiveConfig>,
    /// Discovery and JWKS caches of the identity providers, and the resolved-groups cache.
    pub providers: Arc<Providers>,
    /// Refresh tokens of signed-in users, for group re-evaluation (IdP quirk E7).
    pub grants: Arc<RefreshGrants>,
    /// The demo IdP's client secret, made at start (there is no file to read it from).
    pub demo_client_secret: Option<Secret>,
    pub clock: Clock,
}

impl SignIn {
    /// The client secret teamgate presents to `provider`'s token endpoint.
    pub fn client_secret(&self, provider: &ProviderConfig) -> Option<openidconnect::ClientSecret> {
        let secret = match provider.kind {
            ProviderKind::Demo => self.demo_client_secret.as_ref(),
            _ => provider.client_secret.as_ref(),
        };
        secret.map(|s| openidconnect::ClientSecret::new(s.expose().to_owned()))
    }
}
