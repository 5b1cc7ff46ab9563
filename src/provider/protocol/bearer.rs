//! The bearer token of a userinfo request (RFC 6750 §2.1: in the `Authorization` header only;
//! a token in the query would end up in logs, RFC 9700 §4.3.2) and its errors (§3.1).

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::token::token_no_store;

/// Why userinfo refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials at all: the challenge carries no error code (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    #[error("invalid_request: {0}")]
    Malformed(&'static str),
    #[error("invalid_token")]
    InvalidToken,
    #[error("internal: {0}")]
    Internal(String),
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<&str, BearerError> {
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
    value
        .split_once(' ')
        // RFC 9110 §11.1: the scheme name is case-insensitive.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(BearerError::Malformed("expected a Bearer token"))
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge) = match &self {
            BearerError::Missing => (StatusCode::UNAUTHORIZED, r#"Bearer realm="userinfo""#),
            BearerError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                r#"Bearer realm="userinfo", error="invalid_request""#,
            ),
            BearerError::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="userinfo", error="invalid_token", error_description="unknown, expired or revoked access token""#,
            ),
            BearerError::Internal(_) => {
                tracing::error!(error = %self, "userinfo failed");
                return token_no_store(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        };
        tracing::warn!(error = %self, "userinfo refused");
        let mut response = token_no_store(status.into_response());
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        response
    }
}
