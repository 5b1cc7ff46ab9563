//! The token endpoint's envelope (RFC 6749 §3.2, §5.1, §5.2): the form-encoded request, the
//! JSON response, and the errors, whatever grant is being redeemed and by which provider.

use axum::Json;
use axum::http::header::{CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::params::Params;

/// A refused or failed token request. The descriptions are written for clients and reveal
/// nothing internal; `Internal` is logged and answered with a bare `server_error`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("internal: {0}")]
    Internal(String),
}

/// RFC 6749 §5.1 and OIDC Core §3.1.3.3.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// RFC 6749 §5.1: the granted scope, which may be narrower than the requested one.
    pub scope: String,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'static str>,
}

/// The token request's parameters: RFC 6749 §3.2 says form-encoded, §3.1 no repeats.
pub fn form(headers: &HeaderMap, body: &[u8]) -> Result<Params, TokenError> {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(TokenError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    if params.any_repeated() {
        return Err(TokenError::InvalidRequest("a parameter is repeated"));
    }
    Ok(params)
}

/// RFC 6749 §5.1: token responses must not be cached (`Pragma` for HTTP/1.0 caches).
pub fn token_no_store(response: Response) -> Response {
    let mut response = crate::web::headers::no_store(response);
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        token_no_store(Json(self).into_response())
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            TokenError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", Some(*d)),
            TokenError::InvalidClient(d) => (StatusCode::UNAUTHORIZED, "invalid_client", Some(*d)),
            TokenError::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", Some(*d)),
            TokenError::UnsupportedGrantType => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type", None)
            }
            TokenError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "token request failed");
        } else {
            tracing::warn!(error = %self, "token request refused");
        }
        let mut response = token_no_store(
            (
                status,
                Json(ErrorBody {
                    error,
                    error_description: description,
                }),
            )
                .into_response(),
        );
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="token endpoint""#),
            );
        }
        response
    }
}
