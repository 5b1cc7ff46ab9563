//! The token endpoint (RFC 6749 §4.1.3 and §6, OIDC Core §3.1.3) with the checks of a strict
//! OP: client authentication, single-use codes, redirect URI equality and PKCE; and userinfo
//! (OIDC Core §5.3) for the access tokens it issues.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::endpoints::{basic_credentials, bearer_user, form_pairs, is_pkce_value, repeated};
use super::faults::{before, json_response};
use super::keys::b64;
use super::knobs::{Endpoint, GroupsPlacement, Knobs, TokenAuth};
use super::spec::first;
use super::tokens::{self, Issue, TOKEN_LIFETIME_SECS, apply};
use super::{State as IdpState, TestIdp, TokenRequest, random_token, unix_now};

/// How long an authorization code stays redeemable (RFC 6749 §4.1.2: "a maximum ... of 10
/// minutes is RECOMMENDED").
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// An RFC 6749 §5.2 error response.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Answer `WWW-Authenticate: Basic` (the client tried Basic and failed, §5.2).
    basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_client(description: &str, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: basic,
            ..Self::new("invalid_client", description)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = json_response(self.status, &body, None);
        if self.basic_challenge {
            let challenge = "Basic realm=\"test-idp\"".parse().unwrap();
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

pub async fn token(State(idp): State<TestIdp>, headers: HeaderMap, body: Bytes) -> Response {
    let pad = match before(&idp, Endpoint::Token).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let form = form_pairs(&body);
    idp.lock().token_requests.push(TokenRequest {
        headers: headers.clone(),
        form: form.clone(),
    });
    match token_grant(&idp, &headers, &form) {
        Ok(value) => {
            let mut response = json_response(StatusCode::OK, &value, pad);
            // RFC 6749 §5.1: token responses must not be cached.
            let no_store = "no-store".parse().unwrap();
            response.headers_mut().insert(CACHE_CONTROL, no_store);
            response
        }
        Err(error) => error.into_response(),
    }
}

fn token_grant(
    idp: &TestIdp,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<Value, OAuthError> {
    if let Some(name) = repeated(form) {
        return Err(OAuthError::new(
            "invalid_request",
            format!("parameter {name} is repeated"),
        ));
    }
    let knobs = idp.knobs();
    authenticate_client(idp, knobs.token_auth, headers, form)?;
    let get = |name| first(form, name);
    let mut st = idp.lock();
    match get("grant_type") {
        Some("authorization_code") => {
            let code =
                get("code").ok_or_else(|| OAuthError::new("invalid_request", "code missing"))?;
            // Removed on first use, whatever the outcome: codes are single-use (RFC 6749 §4.1.2).
            let pending = st
                .codes
                .remove(code)
                .ok_or_else(|| OAuthError::new("invalid_grant", "unknown, expired or used code"))?;
            if pending.issued.elapsed() > CODE_LIFETIME {
                return Err(OAuthError::new("invalid_grant", "code expired"));
            }
            // RFC 6749 §4.1.3: identical to the authorization request's redirect_uri.
            if get("redirect_uri") != Some(pending.redirect_uri.as_str()) {
                return Err(OAuthError::new("invalid_grant", "redirect_uri differs"));
            }
            // RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge.
            let verifier = get("code_verifier")
                .ok_or_else(|| OAuthError::new("invalid_grant", "code_verifier missing"))?;
            if !(43..=128).contains(&verifier.len()) || !is_pkce_value(verifier) {
                return Err(OAuthError::new("invalid_grant", "malformed code_verifier"));
            }
            if b64(Sha256::digest(verifier)) != pending.code_challenge {
                return Err(OAuthError::new("invalid_grant", "PKCE verification failed"));
            }
            let grant = Grant {
                sub: &pending.sub,
                nonce: pending.nonce.as_deref(),
                scope: &pending.scope,
                with_refresh: knobs.issue_refresh_token,
            };
            Ok(issue(idp, &mut st, &knobs, &grant))
        }
        Some("refresh_token") => {
            let presented = get("refresh_token")
                .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token missing"))?;
            // Rotated on every use (RFC 9700 §4.14.2), so a replayed one is refused.
            let scope = st
                .refresh_tokens
                .remove(presented)
                .ok_or_else(|| OAuthError::new("invalid_grant", "unknown or used refresh token"))?;
            // The current user spec: a test changes it between login and refresh (security case 26).
            let sub = st.next_login.sub.clone();
            let grant = Grant {
                sub: &sub,
                nonce: None,
                scope: &scope,
                with_refresh: true,
            };
            Ok(issue(idp, &mut st, &knobs, &grant))
        }
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "authorization_code or refresh_token",
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type missing")),
    }
}

/// OIDC Core §9 `client_secret_basic` / `client_secret_post`; RFC 6749 §2.3: one method only.
fn authenticate_client(
    idp: &TestIdp,
    mode: TokenAuth,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(), OAuthError> {
    let basic_attempted = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")));
    let posted_secret = first(form, "client_secret");
    let posted_id = first(form, "client_id");
    let expected = (
        idp.inner.client_id.as_str(),
        idp.inner.client_secret.as_str(),
    );
    match (basic_attempted, posted_secret) {
        (true, Some(_)) => Err(OAuthError::new(
            "invalid_request",
            "more than one client authentication method",
        )),
        (true, None) => {
            if mode == TokenAuth::PostOnly {
                return Err(OAuthError::invalid_client(
                    "client_secret_basic is not allowed",
                    true,
                ));
            }
            let Some((id, secret)) = basic_credentials(headers) else {
                return Err(OAuthError::invalid_client(
                    "malformed Basic credentials",
                    true,
                ));
            };
            if (id.as_str(), secret.as_str()) != expected || posted_id.is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_client("wrong client credentials", true));
            }
            Ok(())
        }
        (false, Some(secret)) => {
            if mode == TokenAuth::BasicOnly {
                return Err(OAuthError::invalid_client(
                    "client_secret_post is not allowed",
                    false,
                ));
            }
            if (posted_id.unwrap_or_default(), secret) != expected {
                return Err(OAuthError::invalid_client(
                    "wrong client credentials",
                    false,
                ));
            }
            Ok(())
        }
        (false, None) => Err(OAuthError::invalid_client(
            "no client authentication",
            false,
        )),
    }
}

/// What a successful grant issues tokens for.
struct Grant<'a> {
    sub: &'a str,
    nonce: Option<&'a str>,
    scope: &'a str,
    with_refresh: bool,
}

/// Mint the tokens of one successful grant (RFC 6749 §5.1, OIDC Core §3.1.3.3).
fn issue(idp: &TestIdp, st: &mut IdpState, knobs: &Knobs, grant: &Grant<'_>) -> Value {
    let spec = st
        .users
        .get(grant.sub)
        .cloned()
        .unwrap_or_else(|| st.next_login.clone());
    let access_token = random_token(32);
    st.access_tokens
        .insert(access_token.clone(), spec.sub.clone());
    let iss = idp.token_issuer(&spec);
    let issue = Issue {
        iss: &iss,
        aud: &idp.inner.client_id,
        nonce: grant.nonce,
        access_token: &access_token,
        now: unix_now(),
    };
    let claims = tokens::claims(&spec, &issue, knobs);
    let id_token = tokens::sign(&claims, knobs, st.current_key);
    st.id_tokens.push(id_token.clone());
    let mut response = Map::new();
    response.insert("access_token".into(), json!(access_token));
    response.insert("token_type".into(), json!("Bearer"));
    response.insert("expires_in".into(), json!(TOKEN_LIFETIME_SECS));
    response.insert("scope".into(), json!(grant.scope));
    response.insert("id_token".into(), json!(id_token));
    if grant.with_refresh {
        let refresh_token = random_token(32);
        st.refresh_tokens
            .insert(refresh_token.clone(), grant.scope.to_owned());
        response.insert("refresh_token".into(), json!(refresh_token));
    }
    apply(
        &mut response,
        &knobs.token_response_set,
        &knobs.token_response_remove,
    );
    Value::Object(response)
}

/// OIDC Core §5.3; an unknown token gets RFC 6750 §3.1 `invalid_token`.
pub async fn userinfo(State(idp): State<TestIdp>, headers: HeaderMap) -> Response {
    let pad = match before(&idp, Endpoint::Userinfo).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let Some(spec) = bearer_user(&idp, &headers) else {
        let challenge = [(WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")];
        return (StatusCode::UNAUTHORIZED, challenge).into_response();
    };
    let knobs = idp.knobs();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(spec.sub));
    if let Some(email) = &spec.email {
        claims.insert("email".into(), json!(email));
    }
    if let Some(verified) = spec.email_verified {
        claims.insert("email_verified".into(), json!(verified));
    }
    if let Some(name) = &spec.name {
        claims.insert("name".into(), json!(name));
    }
    if let Some(groups) = &spec.groups
        && knobs.groups_placement != GroupsPlacement::IdTokenOnly
    {
        claims.insert("groups".into(), groups.clone());
    }
    apply(&mut claims, &knobs.userinfo_set, &knobs.userinfo_remove);
    json_response(StatusCode::OK, &Value::Object(claims), pad)
}
