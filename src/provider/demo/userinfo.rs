//! The demo's userinfo endpoint (OIDC Core §5.3): the claims of the user an access token was
//! issued for, released per the granted scopes.

use std::time::Instant;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::DemoIdp;
use super::tokens::UserClaims;
use crate::provider::protocol::bearer::{BearerError, bearer};
use crate::provider::protocol::token::token_no_store;

impl DemoIdp {
    pub(super) fn userinfo(&self, headers: &HeaderMap) -> Result<UserClaims, BearerError> {
        let token = bearer(headers)?;
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
