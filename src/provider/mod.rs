//! teamgate as an OpenID provider: applications (Grafana, GitLab, Argo CD, any OIDC library)
//! sign in through teamgate and receive the user's teams and roles as claims. Issuer:
//! `public_url`. The protocol is written once ([`protocol`]) and shared with the demo IdP
//! ([`demo`]), which is the same provider with a user picker instead of a login.
//!
//! - [`protocol`]: the shared OpenID provider protocol (requests, client authentication, token
//!   envelope, bearer tokens, ID-token claims, pages).
//! - [`demo`]: the demo IdP under `/demo-idp`.
//! - `discovery`: `/.well-known/openid-configuration`. The keys are teamgate's one JWKS,
//!   `/.well-known/jwks.json` (see [`crate::signing`] for why it is shared).
//! - `authorization`: `/oauth2/authorize`: the checks, the session (or a detour through
//!   teamgate's own login and back), `allowed_teams`, the code.
//! - `pending`: authorization requests waiting for the login to finish.
//! - `token`: `/oauth2/token`: codes and refresh tokens for tokens, the signed ID token.
//! - `userinfo`: `/oauth2/userinfo`.
//! - `logout`: `/oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0).
//!
//! The use case behind the endpoints is [`crate::authorize`]; this module parses, checks the
//! client, signs, and answers.

mod authorization;
pub mod demo;
mod discovery;
mod logout;
mod pending;
pub mod protocol;
mod token;
mod userinfo;

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;

use crate::config::{ClientConfig, Config, SigningAlg};
use crate::signing::{KeySet, SigningError};
use crate::state::AppState;
use crate::web::headers::no_store_layer;
use protocol::Registered;
use protocol::jwt::{compact, signing_input};

/// What the provider's routes keep between requests: the signing keys (loaded on first use,
/// refreshed every minute like forward-auth's).
#[derive(Default)]
pub struct Provider {
    pub keys: crate::signing::Keys,
}

/// The provider's endpoints (absent answers 404 while the config has no `[[client]]`).
pub fn routes() -> Router<AppState> {
    let provider = Arc::new(Provider::default());
    let flows = Router::new()
        .route(
            "/oauth2/authorize",
            get(authorization::authorize_get).post(authorization::authorize_post),
        )
        .route("/oauth2/authorize/resume", get(authorization::resume))
        .route("/oauth2/token", axum::routing::post(token::token))
        // OIDC Core §5.3.1: userinfo answers GET and POST.
        .route(
            "/oauth2/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/oauth2/logout", get(logout::logout).post(logout::confirm))
        // Nothing that carries a code, a token or a session decision is cached.
        .layer(axum::middleware::map_response(no_store_layer));
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::document),
        )
        .merge(flows)
        .layer(Extension(provider))
}

/// A configured client as the protocol code looks clients up.
fn registered(client: &ClientConfig) -> Registered {
    Registered {
        id: client.id.clone(),
        secret_digest: client
            .secret
            .as_ref()
            .map(|s| Registered::digest(s.expose())),
        redirect_uris: client.redirect_uris.clone(),
        pkce_required: client.public,
    }
}

/// The lookup of the clients of `config`.
fn lookup(config: &Config) -> impl Fn(&str) -> Option<Registered> + '_ {
    move |id| config.client(id).map(registered)
}

#[derive(Serialize)]
struct JoseHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// A compact JWS of `claims` with the client's ID-token algorithm and teamgate's current key
/// of that kind (`kid` set, so relying parties pick the right key after a rotation).
fn sign_id_token(
    keys: &KeySet,
    alg: SigningAlg,
    claims: &impl Serialize,
) -> Result<String, SigningError> {
    match alg {
        SigningAlg::Rs256 => {
            let key = keys
                .rsa
                .as_ref()
                .ok_or_else(|| SigningError::Key("no RS256 key loaded".into()))?;
            let header = JoseHeader {
                alg: "RS256",
                kid: &key.kid,
                typ: "JWT",
            };
            let input = signing_input(&header, claims).map_err(SigningError::Sign)?;
            Ok(compact(&input, &key.sign(input.as_bytes())?))
        }
        SigningAlg::Es256 => {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(keys.signing.kid.clone());
            header.typ = Some("JWT".into());
            jsonwebtoken::encode(&header, claims, &keys.signing.encoding)
                .map_err(|e| SigningError::Sign(e.to_string()))
        }
    }
}

/// The ID token's `sid` (OIDC Front-Channel Logout §2.1): stable for one teamgate session,
/// derived from the stored (already hashed) session id, so it reveals nothing usable.
fn sid_of(session_hash: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("teamgate-sid:{session_hash}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}
