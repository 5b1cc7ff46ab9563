//! The userinfo endpoint (OIDC Core §5.3): the claims of the user an access token was issued
//! for, released per the granted scopes. Bearer tokens come in the header (RFC 6750 §2.1).

use std::time::Instant;

use axum::Json;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::DemoIdp;
use super::exchange::token_no_store;
use super::tokens::UserClaims;

/// Why userinfo refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub(super) enum BearerError {
    /// No credentials at all: the challenge carries no error code (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    #[error("invalid_request: {0}")]
    Malformed(&'static str),
    #[error("invalid_token")]
    InvalidToken,
}

impl DemoIdp {
    pub(super) fn userinfo(&self, headers: &HeaderMap) -> Result<UserClaims, BearerError> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(BearerError::Missing);
        };
        if values.next().is_some() {
            return Err(BearerError::Malformed("more than one Authorization header"));
        }
        let value = value
            .to_str()
            .map_err(|_| BearerError::Malformed("the Authorization header is not ASCII"))?;
        let token = value
            .split_once(' ')
            // RFC 9110 §11.1: the scheme name is case-insensitive.
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or(BearerError::Malformed("expected a Bearer token"))?;
        let grant = self
            .grants
            .access(token, Instant::now())
            .ok_or(BearerError::InvalidToken)?;
        Ok(UserClaims::new(&grant.user, &grant.scopes))
    }
}

impl IntoResponse for UserClaims {
    fn into_response(self) -> Response {
        token_no_store(Json(self).into_response())
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge) = match &self {
            BearerError::Missing => (StatusCode::UNAUTHORIZED, r#"Bearer realm="demo-idp""#),
            BearerError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                r#"Bearer realm="demo-idp", error="invalid_request""#,
            ),
            BearerError::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="demo-idp", error="invalid_token", error_description="unknown or expired access token""#,
            ),
        };
        tracing::warn!(error = %self, "demo IdP userinfo refused");
        let mut response = token_no_store(status.into_response());
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        response
    }
}
