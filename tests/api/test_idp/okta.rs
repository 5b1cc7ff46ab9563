//! Okta flavour: users whose `groups` claim holds group names, cut at 100 as Okta's claim
//! filter does (IdP quirk O1, O3), and a mock of the Okta Groups API that returns the full
//! list: `GET /api/v1/users/{id}/groups`, `Authorization: SSWS {token}`, `Link: rel="next"`
//! paging.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, LINK};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::faults::{before, json_response};
use super::knobs::Endpoint;
use super::{LoginSpec, TestIdp};

/// Okta's groups claim can list at most 100 groups (O3).
pub const OKTA_CLAIM_LIMIT: usize = 100;
/// The Groups API's default and largest page.
const OKTA_DEFAULT_PAGE: usize = 200;

/// `n` group names: `Okta Group 001`, `Okta Group 002`, ...
pub fn okta_group_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("Okta Group {i:03}")).collect()
}

/// A stable Okta-looking group id (`00g` + 17 characters) for a group name.
pub fn okta_group_id(name: &str) -> String {
    let hash: String = Sha256::digest(name)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("00g{}", &hash[..17])
}

/// An Okta user (`sub` is the Okta user id, `00u...`) in `groups`: the claim lists the first
/// 100 names, as Okta's claim filter would (O3); the Groups API returns them all.
pub fn okta_login_spec(email: &str, groups: &[String]) -> LoginSpec {
    let user_id = format!("00u{}", &okta_group_id(email)[3..]);
    let claimed = &groups[..groups.len().min(OKTA_CLAIM_LIMIT)];
    let mut spec = LoginSpec::new(&user_id, email).with_groups(claimed.iter().cloned());
    spec.directory_groups = Some(groups.to_vec());
    spec.claim("preferred_username", json!(email))
}

pub fn routes() -> Router<TestIdp> {
    Router::new().route("/api/v1/users/{id}/groups", get(user_groups))
}

/// Okta's error shape.
pub fn error_body(code: &str, summary: &str) -> Value {
    json!({ "errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae-test", "errorCauses": [] })
}

async fn user_groups(
    State(idp): State<TestIdp>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pad = match before(&idp, Endpoint::OktaGroups).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let query = query.unwrap_or_default();
    let user = {
        let mut st = idp.lock();
        st.directory_requests
            .push(format!("GET /api/v1/users/{user_id}/groups?{query}"));
        st.users.get(&user_id).cloned()
    };
    let cap = idp.knobs().okta_page_size_cap;
    // Okta API tokens use their own scheme, not Bearer.
    let expected = format!("SSWS {}", idp.okta_api_token());
    if headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        let body = error_body("E0000011", "Invalid token provided");
        return json_response(StatusCode::UNAUTHORIZED, &body, None);
    }
    let Some(user) = user else {
        let body = error_body(
            "E0000007",
            &format!("Not found: Resource not found: {user_id} (User)"),
        );
        return json_response(StatusCode::NOT_FOUND, &body, None);
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => OKTA_DEFAULT_PAGE,
        Some(Ok(limit)) if limit >= 1 => limit.min(OKTA_DEFAULT_PAGE),
        Some(_) => {
            let body = error_body("E0000001", "Api validation failed: limit");
            return json_response(StatusCode::BAD_REQUEST, &body, None);
        }
    };
    let names = user.directory_groups();
    // `after` is the id of the last group of the previous page; an unknown one is an error
    // rather than a restart, so a broken client cannot loop forever.
    let start = match param("after") {
        None => 0,
        Some(after) => match names.iter().position(|n| okta_group_id(n) == after) {
            Some(i) => i + 1,
            None => {
                let body = error_body("E0000001", "Api validation failed: after");
                return json_response(StatusCode::BAD_REQUEST, &body, None);
            }
        },
    };
    let page = limit.min(cap).max(1);
    let end = (start + page).min(names.len());
    let groups: Vec<Value> = names[start..end]
        .iter()
        .map(|name| {
            json!({ "id": okta_group_id(name), "type": "OKTA_GROUP",
                    "profile": { "name": name, "description": null } })
        })
        .collect();
    let base = format!(
        "{}/api/v1/users/{user_id}/groups?limit={limit}",
        idp.base_url()
    );
    let mut response = json_response(StatusCode::OK, &json!(groups), pad);
    let links = response.headers_mut();
    links.append(
        LINK,
        HeaderValue::from_str(&format!("<{base}>; rel=\"self\"")).unwrap(),
    );
    if end < names.len() {
        let after = okta_group_id(&names[end - 1]);
        let next = format!("<{base}&after={after}>; rel=\"next\"");
        links.append(LINK, HeaderValue::from_str(&next).unwrap());
    }
    response
}
