//! `ScimError` as an HTTP response: the RFC 7644 §3.12 error body served as
//! `application/scim+json`, with the headers some errors carry (`WWW-Authenticate`, `Allow`,
//! `Retry-After`). Each error is logged once, here, inside the request's span; internal causes
//! are logged and replaced by a generic detail.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::domain::scim::ScimError;

/// The media type of every SCIM response (RFC 7644 §3.1, §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Logged inside the request's span, so the line carries the request id.
        match &self {
            ScimError::Internal(cause) => tracing::error!(cause = %cause, "SCIM request failed"),
            ScimError::Busy => tracing::warn!("SCIM request refused: database busy"),
            other => {
                tracing::info!(status = status.as_u16(), error = %other, "SCIM request refused")
            }
        }
        let mut response = (status, self.body().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ScimError::Unauthorized { invalid_token, .. } => {
                // RFC 6750 §3: a missing token gets the bare challenge, a refused one says why.
                let challenge = if *invalid_token {
                    "Bearer realm=\"teamgate-scim\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"teamgate-scim\""
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            ScimError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ScimError::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    async fn parts(e: ScimError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn an_invalid_filter_is_a_400_with_the_rfc_error_body() {
        let (status, headers, body) = parts(ScimError::InvalidFilter("bad".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], SCIM_CONTENT_TYPE);
        assert_eq!(
            body,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad",
            })
        );
    }

    #[tokio::test]
    async fn a_uniqueness_error_is_a_409() {
        let (status, _, body) = parts(ScimError::Uniqueness("userName taken".into())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
    }

    #[tokio::test]
    async fn a_not_found_has_no_scim_type() {
        let (status, _, body) = parts(ScimError::NotFound("no such user".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.get("scimType").is_none());
        assert_eq!(body["schemas"][0], crate::domain::scim::ERROR_SCHEMA);
    }

    #[tokio::test]
    async fn a_missing_token_gets_a_bare_bearer_challenge_and_a_refused_one_says_invalid_token() {
        let (status, headers, _) = parts(ScimError::Unauthorized {
            detail: "no token",
            invalid_token: false,
        })
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"teamgate-scim\""
        );
        let (_, headers, _) = parts(ScimError::Unauthorized {
            detail: "bad token",
            invalid_token: true,
        })
        .await;
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
    }

    #[tokio::test]
    async fn an_internal_error_never_shows_its_cause() {
        let (status, _, body) = parts(ScimError::Internal(
            "sqlite: disk I/O error at /secret/path".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn busy_is_a_503_with_retry_after() {
        let (status, headers, _) = parts(ScimError::Busy).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn method_not_allowed_lists_the_allowed_methods() {
        let (status, headers, _) = parts(ScimError::MethodNotAllowed { allow: "GET" }).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET");
    }
}
