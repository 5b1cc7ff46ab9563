//! SCIM errors by meaning, with what RFC 7644 §3.12 says each is on the wire: its HTTP
//! status, its `scimType`, and the error body
//! (`{"schemas":[Error],"status":"400","scimType":...,"detail":...}`). Details shown to the
//! IdP are safe by construction; internal causes never reach the body.

use http::StatusCode;
use serde_json::json;

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
    /// 413: the body exceeds [`super::MAX_PAYLOAD`]; decided before any parsing.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: a body that is neither `application/scim+json` nor `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 501: a feature the server does not offer (Bulk, sorting...).
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// 503 + `Retry-After`: the database stayed locked past its busy timeout (security case 85).
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
                super::MAX_PAYLOAD
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
            "schemas": [super::ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
            "detail": self.detail(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type(), body.as_object_mut()) {
            obj.insert("scimType".into(), t.into());
        }
        body
    }
}
