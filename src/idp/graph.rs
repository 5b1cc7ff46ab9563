//! Entra group overage (IdP quirk E4-E6): when the ID token says "too many groups to list"
//! (`_claim_names.groups` or `hasgroups`), ask Microsoft Graph with the user's access token.
//! The token's `_claim_sources` endpoint is the retired AAD Graph, so it is never called: the
//! Graph base URL comes from the provider config (`graph_url`), which also keeps an attacker's
//! token from steering teamgate to a URL of its choosing.
//!
//! Preferred: `POST /v1.0/me/checkMemberGroups` with only the group ids the mapping table
//! names (20 per call, transitive). Fallback, when the table names none or Graph refuses that
//! call (it needs `GroupMember.Read.All`): `GET /v1.0/me/transitiveMemberOf`, paged through
//! `@odata.nextLink`, keeping `#microsoft.graph.group` objects (`User.Read` suffices). Any other
//! failure (403, 5xx, timeout, malformed answer) is [`GraphError`]: membership UNKNOWN, never
//! "no groups".

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::http_client::{IdpHttp, read_capped};

/// checkMemberGroups accepts at most 20 group ids per call (E5).
pub const CHECK_BATCH: usize = 20;
/// Most pages of transitiveMemberOf followed (999 objects each: ~200,000 memberships).
pub const MAX_PAGES: usize = 200;
/// Why Graph could not say which groups the user is in.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(
        "Microsoft Graph refused the call ({status}); grant the app GroupMember.Read.All or User.Read"
    )]
    Refused { status: u16 },
    #[error("Microsoft Graph failed ({status})")]
    Failed { status: u16 },
    #[error("Microsoft Graph unreachable: {0}")]
    Unreachable(String),
    #[error("Microsoft Graph did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Microsoft Graph's answer is malformed: {0}")]
    Malformed(String),
}

/// Which call produced the groups (logged; tests check the path taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    CheckMemberGroups,
    TransitiveMemberOf,
}

/// Resolve the user's groups. `mapped` are the group ids this provider's mappings name;
/// with `checkMemberGroups` the answer is the subset of them the user is in.
pub async fn resolve(
    http: &IdpHttp,
    graph_url: &url::Url,
    access_token: &str,
    mapped: &[String],
) -> Result<(Vec<String>, Method), GraphError> {
    // The whole resolution, all calls and pages together, gets one call's time.
    let deadline = http.timeout();
    match tokio::time::timeout(
        deadline,
        resolve_inner(http, graph_url, access_token, mapped),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(GraphError::Timeout(deadline)),
    }
}

async fn resolve_inner(
    http: &IdpHttp,
    graph_url: &url::Url,
    access_token: &str,
    mapped: &[String],
) -> Result<(Vec<String>, Method), GraphError> {
    let base = graph_url.as_str().trim_end_matches('/');
    if !mapped.is_empty() {
        match check_member_groups(http, base, access_token, mapped).await {
            Ok(groups) => return Ok((groups, Method::CheckMemberGroups)),
            // GroupMember.Read.All not granted: transitiveMemberOf needs only User.Read.
            Err(GraphError::Refused { status }) => {
                tracing::info!(
                    status,
                    "checkMemberGroups refused; falling back to transitiveMemberOf"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let groups = transitive_member_of(http, graph_url, base, access_token).await?;
    Ok((groups, Method::TransitiveMemberOf))
}

#[derive(Deserialize)]
struct ValueList<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Microsoft Graph `POST /me/checkMemberGroups` (transitive), 20 ids per call.
async fn check_member_groups(
    http: &IdpHttp,
    base: &str,
    access_token: &str,
    mapped: &[String],
) -> Result<Vec<String>, GraphError> {
    let url = format!("{base}/v1.0/me/checkMemberGroups");
    let mut member_of = Vec::new();
    for chunk in mapped.chunks(CHECK_BATCH) {
        let request = http
            .client()
            .post(&url)
            .bearer_auth(access_token)
            .json(&json!({ "groupIds": chunk }));
        let body: ValueList<String> = send(http, request).await?;
        for id in body.value {
            // Only ids we asked about can come back; anything else is ignored.
            if chunk.iter().any(|asked| asked.eq_ignore_ascii_case(&id)) && !member_of.contains(&id)
            {
                member_of.push(id);
            }
        }
    }
    Ok(member_of)
}

/// Microsoft Graph `GET /me/transitiveMemberOf?$select=id`, following `@odata.nextLink` only
/// on the configured Graph origin (a link elsewhere would carry the user's token there).
async fn transitive_member_of(
    http: &IdpHttp,
    graph_url: &url::Url,
    base: &str,
    access_token: &str,
) -> Result<Vec<String>, GraphError> {
    let mut url = format!("{base}/v1.0/me/transitiveMemberOf?$select=id&$top=999");
    let mut groups = Vec::new();
    for _ in 0..MAX_PAGES {
        let request = http.client().get(&url).bearer_auth(access_token);
        let page: ValueList<Value> = send(http, request).await?;
        for object in &page.value {
            // Directory roles and administrative units come back too (E5); only groups count.
            let is_group =
                object.get("@odata.type").and_then(Value::as_str) == Some("#microsoft.graph.group");
            match (is_group, object.get("id").and_then(Value::as_str)) {
                (true, Some(id)) if !groups.iter().any(|g: &String| g == id) => {
                    groups.push(id.to_owned())
                }
                (true, None) => return Err(GraphError::Malformed("a group without an id".into())),
                _ => {}
            }
        }
        match page.next_link {
            None => return Ok(groups),
            Some(next) => {
                let next_url = url::Url::parse(&next)
                    .map_err(|e| GraphError::Malformed(format!("nextLink: {e}")))?;
                if next_url.origin() != graph_url.origin() {
                    return Err(GraphError::Malformed(
                        "nextLink points outside the configured Graph URL".into(),
                    ));
                }
                url = next;
            }
        }
    }
    Err(GraphError::Malformed(format!(
        "more than {MAX_PAGES} pages of memberships"
    )))
}

async fn send<T: serde::de::DeserializeOwned>(
    http: &IdpHttp,
    request: reqwest::RequestBuilder,
) -> Result<T, GraphError> {
    let response = request
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                GraphError::Timeout(http.timeout())
            } else {
                GraphError::Unreachable(super::provider::error_chain(&e))
            }
        })?;
    let status = response.status();
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(GraphError::Refused {
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Err(GraphError::Failed {
            status: status.as_u16(),
        });
    }
    let body = read_capped(response)
        .await
        .map_err(|e| GraphError::Malformed(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| GraphError::Malformed(e.to_string()))
}
