//! The IdP's front: the router, discovery (OpenID Connect Discovery 1.0 §3), JWKS (RFC 7517
//! §5), the authorization endpoint (RFC 6749 §4.1.1-2, RFC 7636, RFC 9207), and the request
//! parsing the other endpoints share.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use url::Url;

use super::faults::{before, json_response};
use super::keys::{self, ROGUE, b64};
use super::knobs::{Endpoint, IssParam, Knobs, TokenAuth};
use super::spec::first;
use super::token::{token, userinfo};
use super::tokens::apply;
use super::{
    AuthorizeRequest, LoginSpec, PendingCode, State as IdpState, TestIdp, entra, okta, random_token,
};

pub fn router(idp: &TestIdp) -> Router {
    let prefix = &idp.inner.prefix;
    let discovery = format!("{}/.well-known/openid-configuration", idp.inner.issuer_path);
    Router::new()
        .route(&discovery, get(discovery_document))
        .route(&format!("{prefix}/authorize"), get(authorize))
        .route(&format!("{prefix}/token"), post(token))
        .route(&format!("{prefix}/jwks"), get(jwks))
        .route(&format!("{prefix}/userinfo"), get(userinfo).post(userinfo))
        .route(&format!("{prefix}/end-session"), get(end_session))
        .route("/moved/jwks", get(moved_jwks))
        .merge(entra::routes())
        .merge(okta::routes())
        .with_state(idp.clone())
}

pub fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// The first parameter name that occurs twice (RFC 6749 §3.1, §3.2: none may repeat).
pub fn repeated(pairs: &[(String, String)]) -> Option<&str> {
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
        "end_session_endpoint": idp.end_session_endpoint(),
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

/// OpenID Connect RP-Initiated Logout 1.0 §2-3: the IdP's session ends, the request is
/// recorded, and the browser goes to `post_logout_redirect_uri` (with `state`) when the client
/// registered it; otherwise a page says the user is signed out.
async fn end_session(State(idp): State<TestIdp>, RawQuery(raw): RawQuery) -> Response {
    let params = form_pairs(raw.unwrap_or_default().as_bytes());
    let request = AuthorizeRequest {
        params: params.clone(),
    };
    let target = request.get("post_logout_redirect_uri").map(str::to_owned);
    let state = request.get("state").map(str::to_owned);
    idp.lock().end_session_requests.push(request);
    let registered = target.as_ref().is_some_and(|t| {
        idp.lock()
            .post_logout_redirect_uris
            .iter()
            .any(|allowed| allowed == t)
    });
    match target {
        Some(mut target) if registered => {
            if let Some(state) = state {
                let mut url = Url::parse(&target).unwrap();
                url.query_pairs_mut().append_pair("state", &state);
                target = url.to_string();
            }
            (StatusCode::FOUND, [(LOCATION, target)]).into_response()
        }
        _ => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<!doctype html><title>signed out</title><p id=\"idp-signed-out\">You are signed out of the test IdP.</p>",
        )
            .into_response(),
    }
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
pub fn is_pkce_value(s: &str) -> bool {
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
