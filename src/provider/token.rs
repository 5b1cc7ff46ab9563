//! `/oauth2/token` (RFC 6749 §3.2): the shared envelope and client authentication, then the
//! `authorization_code` or `refresh_token` grant through [`crate::authorize`], and a signed ID
//! token (OIDC Core §3.1.3.3; on refresh §12.2: same `iss`, `sub`, `aud` and `auth_time`, no
//! `nonce`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::protocol::client_auth::authenticate;
use super::protocol::jwt::{IdTokenClaims, at_hash, random_token};
use super::protocol::token::{self, TokenError, TokenResponse};
use super::{Provider, lookup, sid_of, sign_id_token};
use crate::authorize::{ID_TOKEN_TTL_SECS, Issued, TokenRefusal};
use crate::state::AppState;
use crate::web::request_id::RequestId;

pub(super) async fn token(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Extension(provider): Extension<Arc<Provider>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&state, &rid, &provider, &headers, &body).await {
        Ok(response) => response.into_response(),
        Err(e) => e.into_response(),
    }
}

fn refused(e: TokenRefusal) -> TokenError {
    match e {
        TokenRefusal::Store(e) => TokenError::Internal(e.to_string()),
        other => {
            tracing::warn!(reason = %other, "token grant refused");
            TokenError::InvalidGrant(other.public())
        }
    }
}

async fn exchange(
    state: &AppState,
    rid: &RequestId,
    provider: &Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, TokenError> {
    let config = state.config.get();
    let params = token::form(headers, body)?;
    let client_id = authenticate(headers, &params, lookup(&config))?;
    let (access, refresh) = (random_token(), random_token());
    let (issued, refreshed) = match params.get("grant_type") {
        None => return Err(TokenError::InvalidRequest("grant_type is required")),
        Some("authorization_code") => {
            let code = params
                .get("code")
                .ok_or(TokenError::InvalidRequest("code is required"))?;
            let issued = state
                .authorize
                .redeem_code(
                    &client_id,
                    code,
                    params.get("redirect_uri"),
                    params.get("code_verifier"),
                    &access,
                    &refresh,
                    &rid.0,
                )
                .await
                .map_err(refused)?;
            (issued, false)
        }
        Some("refresh_token") => {
            let old = params
                .get("refresh_token")
                .ok_or(TokenError::InvalidRequest("refresh_token is required"))?;
            let issued = state
                .authorize
                .refresh(&client_id, old, &access, &refresh, &rid.0)
                .await
                .map_err(refused)?;
            (issued, true)
        }
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    };
    let id_token = id_token(
        state,
        provider,
        &config.issuer(),
        &issued,
        &access,
        refreshed,
    )
    .await?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: u64::try_from(issued.access_expires_in).unwrap_or(0),
        id_token,
        refresh_token: Some(refresh),
        scope: issued.scopes.join(" "),
    })
}

async fn id_token(
    state: &AppState,
    provider: &Provider,
    issuer: &str,
    issued: &Issued,
    access: &str,
    refreshed: bool,
) -> Result<String, TokenError> {
    let keys = provider
        .keys
        .get_with_rsa(&state.store, &state.clock)
        .await
        .map_err(|e| TokenError::Internal(e.to_string()))?;
    let now = state.clock.unix();
    let claims = IdTokenClaims {
        iss: issuer.to_owned(),
        aud: issued.client.id.clone(),
        azp: issued.client.id.clone(),
        exp: now + ID_TOKEN_TTL_SECS,
        iat: now,
        auth_time: issued.auth_time,
        nonce: if refreshed {
            None
        } else {
            issued.nonce.clone()
        },
        at_hash: at_hash(access),
        sid: Some(sid_of(&issued.session_id)),
        user: &issued.claims,
    };
    sign_id_token(&keys, issued.client.id_token_alg, &claims)
        .map_err(|e| TokenError::Internal(e.to_string()))
}
