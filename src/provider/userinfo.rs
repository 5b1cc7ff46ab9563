//! `/oauth2/userinfo` (OIDC Core §5.3): the claims behind an access token, read now.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::protocol::bearer::{BearerError, bearer};
use super::protocol::token::token_no_store;
use crate::authorize::UserinfoError;
use crate::state::AppState;

pub(super) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = match bearer(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match state.authorize.userinfo(token).await {
        Ok(claims) => token_no_store(Json(claims).into_response()),
        Err(UserinfoError::InvalidToken) => BearerError::InvalidToken.into_response(),
        Err(UserinfoError::Store(e)) => BearerError::Internal(e.to_string()).into_response(),
    }
}
