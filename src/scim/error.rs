//! SCIM errors and their wire form: the RFC 7644 §3.12 error body
//! (`{"schemas":[Error],"status":"400","scimType":...,"detail":...}`) served as
//! `application/scim+json`. Details shown to the IdP are safe by construction; internal causes
//! are logged once, here, and replaced by a generic detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// The media type of every SCIM response (RFC 7644 §3.1, §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Why a SCIM request failed, classified by what the client did (or what we could not do).
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// RFC 7644 §3.12 `invalidFilter`: bad syntax, unknown attribute or unsupported operator.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// `tooMany`: the query would return more than the server is willing to process.
    #[error("too many results: {0}")]
    TooMany(String),
    /// `uniqueness` (409): a unique attribute (`userName`, `displayName`, `externalId`) is taken.
    #[error("uniqueness: {0}")]
    Uniqueness(String),
    /// `mutability`: a change to a `readOnly` or already set `immutable` attribute.
    #[error("mutability: {0}")]
    Mutability(String),
    /// `invalidSyntax`: the body is not JSON, not the right message, or an unknown PATCH op.
    #[error("invalid syntax: {0}")]
    InvalidSyntax(String),
    /// `invalidPath`: a PATCH path that is malformed or names an unknown attribute.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// `noTarget`: a PATCH path (or its filter) that matches nothing, or `remove` without path.
    #[error("no target: {0}")]
    NoTarget(String),
    /// `invalidValue`: a missing required value, a wrong type, an unknown member id.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// 404: no such resource for this provider, or no such endpoint.
    #[error("not found: {0}")]
    NotFound(String),
    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3). `invalid_token` distinguishes a
    /// presented-but-refused token from a missing one.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: &'static str,
        invalid_token: bool,
    },
    /// 403: the provider exists but SCIM is switched off for it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 405 on write methods of read-only endpoints; `allow` lists what is accepted.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 412: `If-Match` names a version that is no longer current (RFC 7644 §3.14).
    #[error("precondition failed: the resource has changed")]
    PreconditionFailed,
    /// 413: the body exceeds [`crate::scim::MAX_PAYLOAD`]; decided before any parsing.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: a body that is neither `application/scim+json` nor `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 501: a feature the server does not offer (Bulk, sorting...).
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// 503 + `Retry-After`: the database stayed locked past its busy timeout (SECURITY.md 85).
    #[error("the database is busy")]
    Busy,
    /// 500: a bug or a storage failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScimError {
    pub fn status(&self) -> StatusCode {
        match self {
            ScimError::InvalidFilter(_)
            | ScimError::TooMany(_)
            | ScimError::Mutability(_)
            | ScimError::InvalidSyntax(_)
            | ScimError::InvalidPath(_)
            | ScimError::NoTarget(_)
            | ScimError::InvalidValue(_) => StatusCode::BAD_REQUEST,
            ScimError::Uniqueness(_) => StatusCode::CONFLICT,
            ScimError::NotFound(_) => StatusCode::NOT_FOUND,
            ScimError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ScimError::Forbidden(_) => StatusCode::FORBIDDEN,
            ScimError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ScimError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ScimError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ScimError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ScimError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ScimError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ScimError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 7644 §3.12 Table 9 `scimType`, for the 400 and 409 errors that have one.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            ScimError::InvalidFilter(_) => Some("invalidFilter"),
            ScimError::TooMany(_) => Some("tooMany"),
            ScimError::Uniqueness(_) => Some("uniqueness"),
            ScimError::Mutability(_) => Some("mutability"),
            ScimError::InvalidSyntax(_) => Some("invalidSyntax"),
            ScimError::InvalidPath(_) => Some("invalidPath"),
            ScimError::NoTarget(_) => Some("noTarget"),
            ScimError::InvalidValue(_) => Some("invalidValue"),
            ScimError::NotFound(_)
            | ScimError::Unauthorized { .. }
            | ScimError::Forbidden(_)
            | ScimError::MethodNotAllowed { .. }
            | ScimError::PreconditionFailed
            | ScimError::PayloadTooLarge
            | ScimError::UnsupportedMediaType
            | ScimError::NotImplemented(_)
            | ScimError::Busy
            | ScimError::Internal(_) => None,
        }
    }

    /// The human-readable `detail`: what the client sent wrong, never an internal cause.
    pub fn detail(&self) -> String {
        match self {
            ScimError::InvalidFilter(d)
            | ScimError::TooMany(d)
            | ScimError::Uniqueness(d)
            | ScimError::Mutability(d)
            | ScimError::InvalidSyntax(d)
            | ScimError::InvalidPath(d)
            | ScimError::NoTarget(d)
            | ScimError::InvalidValue(d)
            | ScimError::NotFound(d)
            | ScimError::Forbidden(d) => d.clone(),
            ScimError::Unauthorized { detail, .. } => (*detail).to_owned(),
            ScimError::MethodNotAllowed { allow } => {
                format!("this endpoint is read-only; allowed methods: {allow}")
            }
            ScimError::PreconditionFailed => {
                "the resource has changed since the version named in If-Match; read it again".into()
            }
            ScimError::PayloadTooLarge => format!(
                "the request body is larger than {} bytes (maxPayloadSize)",
                crate::scim::MAX_PAYLOAD
            ),
            ScimError::UnsupportedMediaType => {
                "send the body as application/scim+json or application/json".into()
            }
            ScimError::NotImplemented(what) => format!("{what} is not supported by this server"),
            ScimError::Busy => "the server is busy; retry shortly".into(),
            ScimError::Internal(_) => {
                "internal error; give the X-Request-Id of this response to the administrator".into()
            }
        }
    }

    /// The RFC 7644 §3.12 error body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [crate::scim::ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
            "detail": self.detail(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type(), body.as_object_mut()) {
            obj.insert("scimType".into(), t.into());
        }
        body
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => ScimError::Busy,
            StoreError::NotFound => ScimError::NotFound("no such resource".into()),
            StoreError::Conflict(what) => ScimError::Uniqueness(what),
            StoreError::Refused(_)
            | StoreError::Corrupt(_)
            | StoreError::Open { .. }
            | StoreError::WriterGone
            | StoreError::Sqlite(_) => ScimError::Internal(e.to_string()),
        }
    }
}

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
        assert_eq!(body["schemas"][0], crate::scim::ERROR_SCHEMA);
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

    #[test]
    fn store_errors_map_by_meaning() {
        assert!(matches!(ScimError::from(StoreError::Busy), ScimError::Busy));
        assert!(matches!(
            ScimError::from(StoreError::Conflict("x".into())),
            ScimError::Uniqueness(_)
        ));
        assert!(matches!(
            ScimError::from(StoreError::WriterGone),
            ScimError::Internal(_)
        ));
    }
}
