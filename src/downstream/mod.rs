//! Handing identity to protected applications: forward-auth for reverse proxies (`/auth`), the
//! signed assertion (ES256 JWT) and the key set that verifies it (`/.well-known/jwks.json`).
//!
//! - [`forward_auth`]: the `/auth` decision: session check, route rules, trusted-proxy headers,
//!   the 200/401/302/403/5xx answers.
//! - [`assertion`]: the claims, the signature and the per-user cache that keeps `/auth` from
//!   signing or reading memberships on every request.
//! - [`keys`]: teamgate's own keys ([`crate::signing`], shared with the OpenID provider).

pub mod assertion;
pub mod forward_auth;
pub mod keys;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};

use crate::state::AppState;
use crate::store::StoreError;
use crate::web::session::SessionError;

pub use keys::{Rotation, rotate};

/// Why a downstream request could not be answered. Every variant is answered with a 5xx:
/// forward-auth fails closed (security case 55).
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("cannot sign the assertion: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("identity header: {0}")]
    Header(String),
    /// `/auth` was mounted outside the session layer (a wiring bug in the router).
    #[error("no session layer around /auth")]
    NoSessionLayer,
}

/// What the downstream routes keep between requests: the key set and the assertion cache.
/// Created with the router; the key is read (or made, on first start) on first use.
#[derive(Default)]
pub struct Downstream {
    pub keys: keys::Keys,
    pub cache: assertion::Cache,
}

/// `/auth` (any method: nginx's `auth_request` subrequest keeps the client's method) and
/// `/.well-known/jwks.json`.
pub fn routes() -> Router<AppState> {
    let downstream = Arc::new(Downstream::default());
    Router::new()
        .route("/auth", any(forward_auth::handler))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(Extension(downstream))
}

/// The public keys: the signing key and every retired key still inside its publication window
/// (RFC 7517 §5), read fresh from the database (see [`keys::published_now`]). Cacheable for a
/// minute, the interval at which servers follow a rotation; verifiers refetch on an unknown
/// `kid`.
async fn jwks(
    State(state): State<AppState>,
    Extension(downstream): Extension<Arc<Downstream>>,
) -> Response {
    // The first request of a new installation creates the key; later ones only read.
    let published = match downstream.keys.get(&state.store, &state.clock).await {
        Ok(set) => match keys::published_now(&state.store, &state.clock).await {
            Ok(json) => Ok(json),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the signing keys; serving the loaded set");
                Ok(set.jwks_json.to_string())
            }
        },
        Err(e) => Err(e),
    };
    match published {
        Ok(json) => {
            let mut response = json.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot load the signing keys for the JWKS");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the key set is unavailable; try again",
            )
                .into_response()
        }
    }
}
