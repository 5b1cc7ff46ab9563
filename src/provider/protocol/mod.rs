//! The OpenID provider protocol, written once and used by both providers teamgate runs: the
//! provider for applications (issuer `public_url`) and the demo IdP (issuer
//! `public_url/demo-idp`, the same provider with a user picker instead of a login). What differs
//! between them (where users come from, where grants are kept, which key signs) stays with each;
//! how requests are checked and answered is here.
//!
//! - [`params`]: form and query parameters, repeated names remembered.
//! - [`request`]: the authorization request's checks, error redirects, `iss` (RFC 9207).
//! - [`client_auth`]: `client_secret_basic`, `client_secret_post`, public clients.
//! - [`token`]: the token request's form, its errors (RFC 6749 §5.2) and response (§5.1).
//! - [`bearer`]: the bearer token of userinfo (RFC 6750) and its errors.
//! - [`jwt`]: ID-token claims, `at_hash`, random values.
//! - [`pages`]: the answers a browser sees: a 302 to the client, or a page when the client
//!   cannot be trusted.

pub mod bearer;
pub mod client_auth;
pub mod jwt;
pub mod pages;
pub mod params;
pub mod request;
pub mod token;

use sha2::{Digest, Sha256};

/// A registered client as the protocol sees it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: String,
    /// SHA-256 of the client secret; `None` for a public client. The secret itself is never
    /// needed again, and comparing fixed-length digests in constant time also hides its length.
    pub secret_digest: Option<[u8; 32]>,
    /// Compared as exact strings (RFC 9700 §4.1.3).
    pub redirect_uris: Vec<String>,
    /// PKCE is required of this client (public clients, and the demo's).
    pub pkce_required: bool,
}

impl Registered {
    pub fn digest(secret: &str) -> [u8; 32] {
        Sha256::digest(secret.as_bytes()).into()
    }
}
