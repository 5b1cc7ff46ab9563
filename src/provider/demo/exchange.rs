//! The demo's token request (RFC 6749 §4.1.3): the shared envelope and client authentication
//! of [`crate::provider::protocol`], then the code redeemed once from the in-memory grants, the
//! redirect URI and the PKCE verifier (RFC 7636 §4.6) checked, and an access token with a signed
//! ID token (OIDC Core §3.1.3.3).

use std::time::Instant;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::DemoIdp;
use super::grants::{ACCESS_TOKEN_TTL, RedeemError};
use super::tokens::UserClaims;
use crate::authorize::tokens::is_code_verifier;
use crate::provider::protocol::client_auth::authenticate;
use crate::provider::protocol::jwt::{IdTokenClaims, at_hash, random_token};
use crate::provider::protocol::token::{self, TokenError, TokenResponse};

/// ID tokens are for the login that is happening now.
const ID_TOKEN_TTL_SECS: i64 = 300;

impl DemoIdp {
    pub(super) fn exchange(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TokenResponse, TokenError> {
        let params = token::form(headers, body)?;
        authenticate(headers, &params, |id| self.registered(id))?;
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
            sid: None,
            user: UserClaims::new(&grant.user, &grant.scopes),
        };
        Ok(TokenResponse {
            id_token: self
                .key
                .sign(&claims)
                .map_err(|e| TokenError::Internal(e.to_string()))?,
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL.as_secs(),
            refresh_token: None,
            scope: grant.scopes.join(" "),
        })
    }
}
