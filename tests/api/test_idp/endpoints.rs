//! The IdP's OpenID endpoints: discovery (OpenID Connect Discovery 1.0 §3), authorization
//! (RFC 6749 §4.1.1-2, RFC 7636, RFC 9207), token (RFC 6749 §4.1.3 and §6, OIDC Core §3.1.3),
//! JWKS (RFC 7517 §5) and userinfo (OIDC Core §5.3); plus the fault injection every endpoint
//! (Graph and Okta's included) goes through first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::keys::{self, ROGUE, b64};
use super::knobs::{Endpoint, GroupsPlacement, IssParam, Knobs, TokenAuth};
use super::tokens::{self, Issue, TOKEN_LIFETIME_SECS, apply};
use super::{
    AuthorizeRequest, LoginSpec, PendingCode, State as IdpState, TestIdp, TokenRequest, entra,
    first, okta, random_token, unix_now,
};

/// How long an authorization code stays redeemable (RFC 6749 §4.1.2: "a maximum ... of 10
/// minutes is RECOMMENDED").
const CODE_LIFETIME: Duration = Duration::from_secs(600);

pub fn router(idp: &TestIdp) -> Router {
    let prefix = &idp.inner.prefix;
    let discovery = format!("{}/.well-known/openid-configuration", idp.inner.issuer_path);
    Router::new()
        .route(&discovery, get(discovery_document))
        .route(&format!("{prefix}/authorize"), get(authorize))
        .route(&format!("{prefix}/token"), post(token))
        .route(&format!("{prefix}/jwks"), get(jwks))
        .route(&format!("{prefix}/userinfo"), get(userinfo).post(userinfo))
        .route("/moved/jwks", get(moved_jwks))
        .merge(entra::routes())
        .merge(okta::routes())
        .with_state(idp.clone())
}

// ---- faults, shared by every endpoint ----

/// Count the call and apply `endpoint`'s fault. `Err` is the answer to send instead of the
/// normal one; `Ok` carries the size to pad the normal answer to, if any.
pub async fn before(idp: &TestIdp, endpoint: Endpoint) -> Result<Option<usize>, Response> {
    idp.inner.calls[endpoint as usize].fetch_add(1, Ordering::SeqCst);
    let fault = {
        let mut knobs = idp.inner.knobs.lock().unwrap();
        let Some(fault) = knobs.faults.get_mut(&endpoint) else {
            return Ok(None);
        };
        let applied = fault.clone();
        if let Some(times) = &mut fault.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                knobs.faults.remove(&endpoint);
            }
        }
        applied
    };
    if fault.times == Some(0) {
        return Ok(None);
    }
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(location) = fault.redirect_to {
        return Err((StatusCode::FOUND, [(LOCATION, location)]).into_response());
    }
    if let Some(status) = fault.status {
        let status = StatusCode::from_u16(status).unwrap();
        return Err(json_response(status, &fault_body(endpoint, status), None));
    }
    if let Some(body) = fault.raw_body {
        return Err(([(CONTENT_TYPE, "application/json")], body).into_response());
    }
    Ok(fault.pad_to)
}

/// An error body in the dialect of the endpoint that fails.
fn fault_body(endpoint: Endpoint, status: StatusCode) -> Value {
    let reason = status.canonical_reason().unwrap_or("error");
    match endpoint {
        Endpoint::Graph => {
            let code = match status.as_u16() {
                401 => "InvalidAuthenticationToken",
                403 => "Authorization_RequestDenied",
                429 => "TooManyRequests",
                _ => "generalException",
            };
            entra::graph_error_body(code, reason)
        }
        Endpoint::OktaGroups => okta::error_body("E0000009", reason),
        _ => json!({ "error": "server_error", "error_description": reason }),
    }
}

/// `value` as JSON, padded with trailing whitespace (still valid JSON) to `pad_to` bytes.
pub fn json_response(status: StatusCode, value: &Value, pad_to: Option<usize>) -> Response {
    let mut body = value.to_string();
    if let Some(size) = pad_to {
        body.push_str(&" ".repeat(size.saturating_sub(body.len())));
    }
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// The first parameter name that occurs twice (RFC 6749 §3.1, §3.2: none may repeat).
fn repeated(pairs: &[(String, String)]) -> Option<&str> {
    pairs
        .iter()
        .enumerate()
        .find(|(i, (k, _))| pairs[..*i].iter().any(|(seen, _)| seen == k))
        .map(|(_, (k, _))| k.as_str())
}

/// The bearer token of `Authorization: Bearer ...` (RFC 6750 §2.1).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The directory entry of the user an issued access token belongs to (userinfo, Graph).
pub fn bearer_user(idp: &TestIdp, headers: &HeaderMap) -> Option<LoginSpec> {
    let st = idp.lock();
    let sub = st.access_tokens.get(bearer(headers)?)?;
    st.users.get(sub).cloned()
}

/// `client_secret_basic` credentials: Base64 of `id:secret`, each form-url-encoded first
/// (RFC 6749 §2.3.1), so `+` in the decoded text is a space and `%2B` a plus.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |part: &str| {
        url::form_urlencoded::parse(format!("v={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((form_decode(id), form_decode(secret)))
}

// ---- discovery and JWKS ----

async fn discovery_document(State(idp): State<TestIdp>) -> Response {
    let pad = match before(&idp, Endpoint::Discovery).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let knobs = idp.knobs();
    let auth_methods = match knobs.token_auth {
        TokenAuth::BasicOrPost => json!(["client_secret_basic", "client_secret_post"]),
        TokenAuth::BasicOnly => json!(["client_secret_basic"]),
        TokenAuth::PostOnly => json!(["client_secret_post"]),
    };
    let mut doc = json!({
        "issuer": knobs.discovery_issuer.clone().unwrap_or_else(|| idp.metadata_issuer()),
        "authorization_endpoint": idp.authorization_endpoint(),
        "token_endpoint": idp.token_endpoint(),
        "userinfo_endpoint": idp.userinfo_endpoint(),
        "jwks_uri": idp.jwks_uri(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": ["openid", "email", "profile", "groups", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "email", "email_verified", "name", "groups"
        ],
        "code_challenge_methods_supported": ["S256"],
    });
    let map = doc.as_object_mut().unwrap();
    if let Some(supported) = knobs.iss_parameter_supported {
        map.insert(
            "authorization_response_iss_parameter_supported".into(),
            json!(supported),
        );
    }
    apply(map, &knobs.discovery_set, &knobs.discovery_remove);
    json_response(StatusCode::OK, &doc, pad)
}

async fn jwks(State(idp): State<TestIdp>) -> Response {
    let pad = match before(&idp, Endpoint::Jwks).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let knobs = idp.knobs();
    json_response(StatusCode::OK, &jwks_document(&idp.lock(), &knobs), pad)
}

async fn moved_jwks(State(idp): State<TestIdp>) -> Response {
    if let Err(answer) = before(&idp, Endpoint::MovedJwks).await {
        return answer;
    }
    let knobs = idp.knobs();
    json_response(StatusCode::OK, &jwks_document(&idp.lock(), &knobs), None)
}

fn jwks_document(state: &IdpState, knobs: &Knobs) -> Value {
    let pool = keys::pool();
    let current = &pool.rsa[state.current_key];
    let mut keys: Vec<Value> = Vec::new();
    if knobs.jwks_malformed_entries {
        keys.extend([
            json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "malformed-base64",
                    "n": "***not base64url***", "e": "AQAB" }),
            json!({ "use": "sig", "kid": "malformed-no-kty", "n": "AQAB", "e": "AQAB" }),
            json!({ "kty": "XYZ", "use": "sig", "kid": "malformed-unknown-kty" }),
            json!({ "kty": "oct", "use": "sig", "alg": "HS256", "kid": "malformed-symmetric",
                    "k": b64("a shared secret") }),
            json!({ "kty": "EC", "use": "sig", "crv": "P-256", "kid": "malformed-off-curve",
                    "x": b64([1u8; 32]), "y": b64([2u8; 32]) }),
        ]);
    }
    let mut current_jwk = current.jwk.clone();
    if knobs.jwks_alg_mismatch {
        current_jwk["alg"] = json!("ES256");
    }
    keys.push(current_jwk);
    if let Some(previous) = state.previous_key.filter(|_| knobs.jwks_keep_previous) {
        keys.push(pool.rsa[previous].jwk.clone());
    }
    if knobs.jwks_duplicate_kid {
        let mut impostor = pool.rsa[ROGUE].jwk.clone();
        impostor["kid"] = json!(current.kid);
        keys.push(impostor);
    }
    if knobs.jwks_enc_key {
        // Only `use` says it is not for signatures (`alg` is optional in a JWK, RFC 7517
        // §4.4), so a client that ignores `use` would pick it.
        let mut enc = pool.rsa[ROGUE].jwk.clone();
        enc["use"] = json!("enc");
        enc.as_object_mut().unwrap().remove("alg");
        keys.push(enc);
    }
    if knobs.jwks_ec_key {
        keys.push(pool.ec.jwk.clone());
    }
    for key in &mut keys {
        let key = key.as_object_mut().unwrap();
        if knobs.jwks_omit_kid {
            key.remove("kid");
        }
        if let Some(issuer) = &knobs.jwks_key_issuer {
            key.insert("issuer".into(), json!(issuer));
        }
    }
    if knobs.jwks_empty {
        keys.clear();
    }
    json!({ "keys": keys })
}

// ---- authorization endpoint ----

async fn authorize(State(idp): State<TestIdp>, RawQuery(query): RawQuery) -> Response {
    if let Err(answer) = before(&idp, Endpoint::Authorize).await {
        return answer;
    }
    let params = form_pairs(query.unwrap_or_default().as_bytes());
    idp.lock().authorize_requests.push(AuthorizeRequest {
        params: params.clone(),
    });
    authorize_decision(&idp, &params)
}

/// RFC 6749 §4.1.2.1: a bad client or redirect URI gets an error page (never a redirect to an
/// unverified URI); every other error is sent back to the client with the state.
fn authorize_decision(idp: &TestIdp, params: &[(String, String)]) -> Response {
    let page = |why: String| (StatusCode::BAD_REQUEST, why).into_response();
    if let Some(name) = repeated(params) {
        return page(format!("parameter {name} is repeated"));
    }
    let get = |name| first(params, name);
    if get("client_id") != Some(idp.inner.client_id.as_str()) {
        return page("unknown client_id".into());
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return page("redirect_uri missing".into());
    };
    if !redirect_uri_allowed(&idp.lock().redirect_uris, redirect_uri) {
        return page(format!("redirect_uri {redirect_uri} is not registered"));
    }
    let state = get("state");
    let refuse = |error: &str, description: &str| {
        let mut back = vec![("error", error.to_owned())];
        back.push(("error_description", description.to_owned()));
        back.extend(state.map(|s| ("state", s.to_owned())));
        redirect_back(idp, redirect_uri, back)
    };
    if get("response_type") != Some("code") {
        return refuse("unsupported_response_type", "only the code flow is served");
    }
    if !get("scope").is_some_and(|s| s.split(' ').any(|scope| scope == "openid")) {
        return refuse("invalid_scope", "the openid scope is required");
    }
    // RFC 7636 §4.3: this IdP requires PKCE, and only S256 (RFC 9700 §2.1.1).
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (Some(challenge), Some("S256")) if is_pkce_value(challenge) && challenge.len() == 43 => {
            challenge
        }
        _ => {
            return refuse(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            );
        }
    };
    if let Some(error) = idp.knobs().authorize_error {
        return refuse(&error, "refused by the test IdP's knobs");
    }
    let code = random_token(32);
    {
        let mut st = idp.lock();
        let sub = st.next_login.sub.clone();
        st.codes.insert(
            code.clone(),
            PendingCode {
                client_id: idp.inner.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: challenge.to_owned(),
                nonce: get("nonce").map(str::to_owned),
                scope: get("scope").unwrap_or_default().to_owned(),
                sub,
                issued: std::time::Instant::now(),
            },
        );
    }
    let mut back = vec![("code", code)];
    back.extend(state.map(|s| ("state", s.to_owned())));
    redirect_back(idp, redirect_uri, back)
}

fn redirect_uri_allowed(registered: &[String], uri: &str) -> bool {
    if !registered.is_empty() {
        return registered.iter().any(|r| r == uri);
    }
    Url::parse(uri).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    })
}

/// RFC 7636 §4.1: the unreserved characters `[A-Z] / [a-z] / [0-9] / - . _ ~`.
fn is_pkce_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `302 Found` to the client's redirect URI, its own query kept (RFC 6749 §3.1.2), with
/// `params`, the RFC 9207 `iss` as the knobs say, and the knobs' extra parameters.
fn redirect_back(idp: &TestIdp, redirect_uri: &str, params: Vec<(&str, String)>) -> Response {
    let knobs = idp.knobs();
    let iss = match knobs.iss_param {
        IssParam::Correct => Some(idp.metadata_issuer()),
        IssParam::Omit => None,
        IssParam::TrailingSlash => Some(format!("{}/", idp.metadata_issuer())),
        IssParam::Custom(value) => Some(value),
    };
    let mut url = Url::parse(redirect_uri).unwrap();
    {
        let mut query = url.query_pairs_mut();
        let normal = params.into_iter().chain(iss.map(|i| ("iss", i)));
        let dropped = |name: &str| knobs.authorize_drop_params.iter().any(|d| d == name);
        for (name, value) in normal.filter(|(name, _)| !dropped(name)) {
            query.append_pair(name, &value);
        }
        for (name, value) in &knobs.authorize_extra_params {
            query.append_pair(name, value);
        }
    }
    (StatusCode::FOUND, [(LOCATION, url.to_string())]).into_response()
}

// ---- token endpoint ----

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

async fn token(State(idp): State<TestIdp>, headers: HeaderMap, body: Bytes) -> Response {
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
            if pending.client_id != idp.inner.client_id {
                return Err(OAuthError::new(
                    "invalid_grant",
                    "code issued to another client",
                ));
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
            // The current user spec: a test changes it between login and refresh (SECURITY.md 26).
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

// ---- userinfo ----

/// OIDC Core §5.3; an unknown token gets RFC 6750 §3.1 `invalid_token`.
async fn userinfo(State(idp): State<TestIdp>, headers: HeaderMap) -> Response {
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
