//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §3, with the RFC 8414 and
//! RFC 9207 fields): what relying parties configure themselves from. Answered only while the
//! config has at least one `[[client]]`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::authorize::claims::{CLAIMS_SUPPORTED, SUPPORTED_SCOPES};
use crate::state::AppState;

pub(super) async fn document(State(state): State<AppState>) -> Response {
    let config = state.config.get();
    if config.clients.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "teamgate's OpenID provider has no clients; add a [[client]] to the config",
        )
            .into_response();
    }
    let issuer = config.issuer();
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        // Decision in crate::authorize::claims: one global subject per user.
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        // Discovery §3: this one defaults to true, so it must be said.
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    let mut response = Json(doc).into_response();
    // Changes only with the config; a short cache saves relying parties round trips.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
