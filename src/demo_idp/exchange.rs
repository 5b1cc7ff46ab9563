//! The token request (RFC 6749 §4.1.3): authenticate the client, redeem the code once, check
//! the redirect URI and the PKCE verifier (RFC 7636 §4.6), and answer with an access token and
//! a signed ID token (OIDC Core §3.1.3.3). Errors are RFC 6749 §5.2 JSON.

use std::time::Instant;

use axum::Json;
use axum::http::header::{CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::{Params, is_code_verifier};
use super::grants::{ACCESS_TOKEN_TTL, RedeemError};
use super::tokens::{IdTokenClaims, UserClaims, at_hash, random_token};
use super::{DemoIdp, DemoIdpError};

/// ID tokens are for the login that is happening now.
const ID_TOKEN_TTL_SECS: i64 = 300;

/// A refused or failed token request. The descriptions are written here for clients and
/// reveal nothing internal; `Internal` is logged and answered with a bare `server_error`.
#[derive(Debug, thiserror::Error)]
pub(super) enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error(transparent)]
    Internal(#[from] DemoIdpError),
}

/// RFC 6749 §5.1 and OIDC Core §3.1.3.3.
#[derive(Debug, Serialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    id_token: String,
    /// RFC 6749 §5.1: the granted scope, which may be narrower than the requested one.
    scope: String,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'static str>,
}

impl DemoIdp {
    pub(super) fn exchange(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TokenResponse, TokenError> {
        // RFC 6749 §3.2: the token request is form-encoded.
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
        self.authenticate_client(headers, &params)?;
        match params.get("grant_type") {
            None => return Err(TokenError::InvalidRequest("grant_type is required")),
            Some("authorization_code") => {}
            Some(_) => return Err(TokenError::UnsupportedGrantType),
        }
        let code = params
            .get("code")
            .ok_or(TokenError::InvalidRequest("code is required"))?;
        // Required because every authorization request here carried it (RFC 6749 §4.1.3).
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or(TokenError::InvalidRequest("redirect_uri is required"))?;
        let verifier = params.get("code_verifier");

        let access_token = random_token();
        let grant =
            self.grants
                .redeem(code, &access_token, Instant::now(), |grant| {
                    if grant.client_id != self.client_id {
                        return Err(TokenError::InvalidGrant(
                            "the code was issued to another client",
                        ));
                    }
                    if grant.redirect_uri != redirect_uri {
                        return Err(TokenError::InvalidGrant(
                            "redirect_uri differs from the authorization request",
                        ));
                    }
                    // RFC 7636 §4.6: the code was bound to a challenge, so a verifier must match it.
                    let verifier = verifier.filter(|v| is_code_verifier(v)).ok_or(
                        TokenError::InvalidGrant("a valid code_verifier is required"),
                    )?;
                    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if bool::from(computed.as_bytes().ct_eq(grant.code_challenge.as_bytes())) {
                        Ok(())
                    } else {
                        Err(TokenError::InvalidGrant(
                            "the code_verifier does not match the code_challenge",
                        ))
                    }
                })
                .map_err(|e| match e {
                    RedeemError::Unknown => {
                        TokenError::InvalidGrant("the code is unknown or expired")
                    }
                    RedeemError::Replayed => TokenError::InvalidGrant("the code was already used"),
                    RedeemError::Check(e) => e,
                })?;

        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = IdTokenClaims {
            iss: self.issuer.clone(),
            aud: self.client_id.clone(),
            azp: self.client_id.clone(),
            exp: now + ID_TOKEN_TTL_SECS,
            iat: now,
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            at_hash: at_hash(&access_token),
            user: UserClaims::new(&grant.user, &grant.scopes),
        };
        Ok(TokenResponse {
            id_token: self.key.sign(&claims)?,
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL.as_secs(),
            scope: grant.scopes.join(" "),
        })
    }
}

/// RFC 6749 §5.1: token responses must not be cached (`Pragma` for HTTP/1.0 caches).
pub(super) fn token_no_store(response: Response) -> Response {
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
            tracing::error!(error = %self, "demo IdP token request failed");
        } else {
            tracing::warn!(error = %self, "demo IdP token request refused");
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
                HeaderValue::from_static(r#"Basic realm="demo-idp""#),
            );
        }
        response
    }
}
