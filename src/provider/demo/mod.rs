//! The built-in demo OpenID provider: teamgate's OpenID provider protocol
//! ([`super::protocol`]) with a user picker where teamgate's provider has its login, served
//! under `/demo-idp/` (discovery, JWKS, authorization code flow with PKCE S256, token and
//! userinfo endpoints), so that a demo login runs through exactly the relying-party code used
//! for Entra and Okta. Anyone may sign in as any configured demo user; it exists for demos and
//! tests only. It stays an identity provider *upstream* of teamgate: its own issuer, its own
//! key, users from `[[demo_user]]` with their groups, one client (teamgate itself).
//!
//! - `keys`: the RS256 signing key, its JWK, and its persistence in the `settings` table.
//! - `authorize`: the demo's rules on top of the shared checks, and the pick page.
//! - `discovery`: the discovery document and the JWK Set.
//! - `exchange`: the token request: code redemption, PKCE, the token response.
//! - `grants`: codes and access tokens in memory, expiring and bounded.
//! - `tokens`: the demo's user claims and subjects.
//! - `userinfo`: the userinfo endpoint.
//! - `endpoints`: the router and its thin handlers.

mod authorize;
mod discovery;
mod endpoints;
mod exchange;
mod grants;
mod keys;
mod tokens;
mod userinfo;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use url::Url;

use super::protocol::Registered;
use crate::config::DemoUser;
use crate::domain::secret::Secret;
use crate::web::templates::Templates;

pub use endpoints::router;
pub use keys::load_or_create_key;

/// Why the demo IdP could not be built or could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum DemoIdpError {
    #[error(
        "the demo IdP issuer {0:?} is not an absolute http(s) URL without query or fragment; it is derived from server.public_url, check that"
    )]
    InvalidIssuer(String),
    #[error("the demo IdP redirect URI {0:?} is not an absolute http(s) URL without a fragment")]
    InvalidRedirectUri(String),
    #[error("the demo IdP needs a non-empty {0}")]
    Empty(&'static str),
    #[error("the demo IdP has no users; add at least one [[demo_user]]")]
    NoUsers,
    #[error("the demo IdP signing key has {0} bits; at least 2048 are required")]
    WeakKey(usize),
    #[error("cannot generate the demo IdP signing key: {0}")]
    KeyGeneration(#[source] rsa::Error),
    #[error("the key generation task stopped before finishing")]
    KeyTask,
    #[error("cannot encode the demo IdP signing key: {0}")]
    KeyEncoding(String),
    #[error(
        "the stored demo IdP key (settings row demo_idp.rsa_private_pem) is not a PKCS#8 RSA key: {0}; delete the row to make a new one"
    )]
    StoredKeyCorrupt(#[source] rsa::pkcs8::Error),
    #[error("the demo IdP key was written but cannot be read back")]
    KeyNotStored,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot sign an ID token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Absolute URLs of the endpoints, all under the issuer (OIDC Discovery §3).
#[derive(Debug, Clone)]
struct Endpoints {
    authorization: String,
    token: String,
    userinfo: String,
    jwks: String,
    /// Path (not URL) of the pick form's target, so the form posts back to the host the
    /// browser is on even when it reaches teamgate through a differently named proxy.
    pick_path: String,
}

/// One demo OpenID provider with one registered confidential client.
pub struct DemoIdp {
    /// Exactly as configured; compared as a string by relying parties (OIDC Core §3.1.3.7).
    issuer: String,
    endpoints: Endpoints,
    client_id: String,
    /// SHA-256 of the client secret: the secret itself is never needed again, and comparing
    /// fixed-length digests in constant time also hides the secret's length.
    client_secret_digest: [u8; 32],
    /// The only redirect URI accepted, compared as an exact string (RFC 9700 §4.1.3).
    redirect_uri: String,
    users: Vec<DemoUser>,
    key: keys::SigningKey,
    templates: Arc<Templates>,
    grants: grants::Grants,
}

impl DemoIdp {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: Secret,
        redirect_uri: String,
        users: Vec<DemoUser>,
        key: rsa::RsaPrivateKey,
        templates: Arc<Templates>,
    ) -> Result<Self, DemoIdpError> {
        let issuer_url =
            http_url(&issuer).ok_or_else(|| DemoIdpError::InvalidIssuer(issuer.clone()))?;
        // OIDC Discovery §3: the issuer has no query or fragment.
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(DemoIdpError::InvalidIssuer(issuer));
        }
        // RFC 6749 §3.1.2: an absolute URI without a fragment.
        if http_url(&redirect_uri).is_none_or(|url| url.fragment().is_some()) {
            return Err(DemoIdpError::InvalidRedirectUri(redirect_uri));
        }
        if client_id.is_empty() {
            return Err(DemoIdpError::Empty("client_id"));
        }
        if client_secret.expose().is_empty() {
            return Err(DemoIdpError::Empty("client secret"));
        }
        if users.is_empty() {
            return Err(DemoIdpError::NoUsers);
        }
        let base = issuer.trim_end_matches('/');
        let endpoints = Endpoints {
            authorization: format!("{base}/authorize"),
            token: format!("{base}/token"),
            userinfo: format!("{base}/userinfo"),
            jwks: format!("{base}/jwks"),
            pick_path: format!("{}/authorize/pick", issuer_url.path().trim_end_matches('/')),
        };
        Ok(Self {
            key: keys::SigningKey::new(&key)?,
            client_secret_digest: Sha256::digest(client_secret.expose().as_bytes()).into(),
            issuer,
            endpoints,
            client_id,
            redirect_uri,
            users,
            templates,
            grants: grants::Grants::default(),
        })
    }

    /// The one registered client, as the shared protocol code looks clients up.
    fn registered(&self, id: &str) -> Option<Registered> {
        (id == self.client_id).then(|| Registered {
            id: self.client_id.clone(),
            secret_digest: Some(self.client_secret_digest),
            redirect_uris: vec![self.redirect_uri.clone()],
            pkce_required: true,
        })
    }

    fn user_by_email(&self, email: &str) -> Option<&DemoUser> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }
}

fn http_url(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}
