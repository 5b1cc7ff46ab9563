//! Entra ID flavour: v2 ID-token claim sets (IdP quirk E1, E4, E8-E10), including group
//! overage, and a mock of the Microsoft Graph calls that resolve overage (E5):
//! `POST /v1.0/me/checkMemberGroups` and paged `GET /v1.0/me/transitiveMemberOf`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post};
use serde_json::{Map, Value, json};

use super::endpoints::bearer_user;
use super::faults::{before, json_response};
use super::keys::b64;
use super::knobs::Endpoint;
use super::{LoginSpec, TestIdp, random_guid, random_token};

/// `checkMemberGroups` takes at most this many ids (E5).
const CHECK_MEMBER_GROUPS_MAX: usize = 20;
/// Graph's default and largest `$top` for `transitiveMemberOf` (E5).
const GRAPH_DEFAULT_PAGE: usize = 100;
const GRAPH_MAX_PAGE: usize = 999;

/// A deterministic group object id, so tests can map teams to groups by number.
pub fn entra_group_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// An Entra user: the claims of their v2 ID token and their directory memberships.
#[derive(Clone, Debug)]
pub struct EntraUser {
    pub tid: String,
    /// The object id: the stable key (E10).
    pub oid: String,
    /// Entra's `sub` is pairwise per application, unrelated to `oid`.
    pub sub: String,
    pub preferred_username: String,
    pub name: String,
    /// Entra's `email` is optional and may be unverified (E10); none by default.
    pub email: Option<String>,
    /// Group object ids the user belongs to, transitively.
    pub groups: Vec<String>,
    /// Directory role ids: Graph lists them too, they are not groups (E5).
    pub directory_roles: Vec<String>,
}

impl EntraUser {
    /// A user of tenant `tid` with sign-in name `upn`, a random `oid` and no groups.
    pub fn new(tid: &str, upn: &str) -> Self {
        Self {
            tid: tid.to_owned(),
            oid: random_guid(),
            sub: random_token(32),
            preferred_username: upn.to_owned(),
            name: format!("{} Example", upn.split('@').next().unwrap_or(upn)),
            email: None,
            groups: Vec::new(),
            directory_roles: Vec::new(),
        }
    }

    pub fn with_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The ID token lists every group in `groups` (at most 200 in real Entra, E4).
    pub fn login_spec(&self) -> LoginSpec {
        let mut spec = self.base_spec();
        spec.groups = Some(json!(self.groups));
        spec
    }

    /// Overage (E4): no `groups` claim; `_claim_names`/`_claim_sources` point at the retired
    /// AAD Graph URL (served by this IdP as `Endpoint::LegacyGraph`, which a client must not
    /// call); the real list is only in the Graph mock.
    pub fn overage_login_spec(&self, idp: &TestIdp) -> LoginSpec {
        let endpoint = format!(
            "{}/aad-graph/{}/users/{}/getMemberObjects",
            idp.base_url(),
            self.tid,
            self.oid
        );
        self.base_spec()
            .claim("_claim_names", json!({ "groups": "src1" }))
            .claim(
                "_claim_sources",
                json!({ "src1": { "endpoint": endpoint } }),
            )
    }

    /// The implicit-flow overage marker (E4): no `groups`, `hasgroups: true`.
    pub fn hasgroups_login_spec(&self) -> LoginSpec {
        self.base_spec().claim("hasgroups", json!(true))
    }

    fn base_spec(&self) -> LoginSpec {
        let mut extra = Map::new();
        extra.insert("oid".into(), json!(self.oid));
        extra.insert("tid".into(), json!(self.tid));
        extra.insert("ver".into(), json!("2.0"));
        extra.insert("preferred_username".into(), json!(self.preferred_username));
        LoginSpec {
            sub: self.sub.clone(),
            email: self.email.clone(),
            // Entra sends no `email_verified` (E10).
            email_verified: None,
            name: Some(self.name.clone()),
            groups: None,
            extra_claims: extra,
            directory_groups: Some(self.groups.clone()),
            directory_roles: self.directory_roles.clone(),
        }
    }
}

pub fn routes() -> Router<TestIdp> {
    Router::new()
        .route("/v1.0/me/checkMemberGroups", post(check_member_groups))
        .route("/v1.0/me/transitiveMemberOf", get(transitive_member_of))
        .route(
            "/aad-graph/{tid}/users/{oid}/getMemberObjects",
            any(legacy_graph),
        )
}

/// Graph's error shape: `{"error": {"code", "message"}}`.
pub fn graph_error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &graph_error_body(code, message), None)
}

/// Graph's answer to a bearer token the token endpoint did not issue.
fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token is empty or invalid.",
    )
}

async fn check_member_groups(
    State(idp): State<TestIdp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pad = match before(&idp, Endpoint::Graph).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    idp.lock()
        .directory_requests
        .push("POST /v1.0/me/checkMemberGroups".into());
    // "me" is the user the bearer token was issued to.
    let Some(user) = bearer_user(&idp, &headers) else {
        return unauthorized();
    };
    let ids: Option<Vec<String>> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("groupIds")?
            .as_array()?
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect()
    });
    let Some(ids) = ids else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "groupIds must be an array of strings.",
        );
    };
    if ids.len() > CHECK_MEMBER_GROUPS_MAX {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The number of group ids in the request exceeds the maximum of 20.",
        );
    }
    let member_of = user.directory_groups();
    let value: Vec<&String> = ids.iter().filter(|id| member_of.contains(id)).collect();
    let answer = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
        "value": value,
    });
    json_response(StatusCode::OK, &answer, pad)
}

/// Paged with `$top` and an opaque `$skiptoken` in `@odata.nextLink`. Directory roles come
/// first, so the first pages may hold no group at all: a client must follow every link and
/// keep only `#microsoft.graph.group` objects.
async fn transitive_member_of(
    State(idp): State<TestIdp>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pad = match before(&idp, Endpoint::Graph).await {
        Ok(pad) => pad,
        Err(answer) => return answer,
    };
    let query = query.unwrap_or_default();
    idp.lock()
        .directory_requests
        .push(format!("GET /v1.0/me/transitiveMemberOf?{query}"));
    let cap = idp.knobs().graph_page_size_cap;
    // "me" is the user the bearer token was issued to.
    let Some(user) = bearer_user(&idp, &headers) else {
        return unauthorized();
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
    let top = match param("$top").map(str::parse::<usize>) {
        None => GRAPH_DEFAULT_PAGE,
        Some(Ok(top)) if (1..=GRAPH_MAX_PAGE).contains(&top) => top,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid $top.",
            );
        }
    };
    let offset = match param("$skiptoken").map(decode_skiptoken) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid $skiptoken.",
            );
        }
    };
    let roles = user.directory_roles.iter().map(|id| {
        json!({ "@odata.type": "#microsoft.graph.directoryRole", "id": id,
                "displayName": format!("Role {id}"), "roleTemplateId": id })
    });
    let groups = user.directory_groups().into_iter().map(|id| {
        json!({ "@odata.type": "#microsoft.graph.group", "id": id,
                "displayName": format!("Group {id}"), "securityEnabled": true })
    });
    let objects: Vec<Value> = roles.chain(groups).collect();
    let page = top.min(cap).max(1);
    let end = (offset + page).min(objects.len());
    let mut answer = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
        "value": objects.get(offset..end).unwrap_or_default(),
    });
    if end < objects.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| k != "$skiptoken") {
            next.append_pair(k, v);
        }
        next.append_pair("$skiptoken", &b64(format!("offset:{end}")));
        answer["@odata.nextLink"] = json!(format!(
            "{}/v1.0/me/transitiveMemberOf?{}",
            idp.base_url(),
            next.finish()
        ));
    }
    json_response(StatusCode::OK, &answer, pad)
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

/// The retired AAD Graph (E4): counted, and refused as a retired service would.
async fn legacy_graph(State(idp): State<TestIdp>) -> Response {
    if let Err(answer) = before(&idp, Endpoint::LegacyGraph).await {
        return answer;
    }
    graph_error(
        StatusCode::GONE,
        "Service_Retired",
        "Azure AD Graph is retired; use Microsoft Graph.",
    )
}
