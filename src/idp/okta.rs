//! Okta's groups beyond the token (IdP quirk O3): a groups claim is capped at 100 values, so a
//! token listing exactly 100 may be truncated. With an API token configured
//! (`okta_api_token_env`), the full list is read from the Okta Groups API:
//! `GET {issuer origin}/api/v1/users/{sub}/groups`, `Authorization: SSWS <token>`, paged through
//! the `Link: <…>; rel="next"` header (RFC 8288), only on the issuer's origin.

use serde::Deserialize;

use super::http_client::{IdpHttp, read_capped};
use crate::config::GroupKey;

/// The Okta limit on a groups claim; a list of exactly this length may be truncated.
pub const CLAIM_LIMIT: usize = 100;
/// Most pages followed (200 groups each).
pub const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum OktaApiError {
    #[error("the Okta Groups API answered {0}")]
    Status(u16),
    #[error("the Okta Groups API is unreachable: {0}")]
    Unreachable(String),
    #[error("the Okta Groups API's answer is malformed: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct OktaGroup {
    id: String,
    profile: Option<OktaProfile>,
}

#[derive(Deserialize)]
struct OktaProfile {
    name: Option<String>,
}

/// Every group of user `sub`, as ids or names according to `key`.
pub async fn user_groups(
    http: &IdpHttp,
    issuer: &str,
    api_token: &str,
    sub: &str,
    key: GroupKey,
) -> Result<Vec<String>, OktaApiError> {
    let issuer =
        url::Url::parse(issuer).map_err(|e| OktaApiError::Malformed(format!("issuer: {e}")))?;
    let origin = issuer.origin();
    let mut url = issuer.clone();
    url.set_query(None);
    // The user id is one path segment, encoded as such (an `sub` with `/` cannot escape it).
    url.set_path("/api/v1/users");
    url.path_segments_mut()
        .map_err(|()| OktaApiError::Malformed("issuer cannot be a base URL".into()))?
        .push(sub)
        .push("groups");
    url.set_query(Some("limit=200"));
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let response = http
            .client()
            .get(url.as_str())
            .header("authorization", format!("SSWS {api_token}"))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OktaApiError::Unreachable(super::provider::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(OktaApiError::Status(response.status().as_u16()));
        }
        let next = next_link(response.headers());
        let body = read_capped(response)
            .await
            .map_err(|e| OktaApiError::Malformed(e.to_string()))?;
        let page: Vec<OktaGroup> =
            serde_json::from_slice(&body).map_err(|e| OktaApiError::Malformed(e.to_string()))?;
        for g in page {
            let value = match key {
                GroupKey::Id => Some(g.id),
                GroupKey::Name => g.profile.and_then(|p| p.name),
            };
            if let Some(v) = value.filter(|v| !out.contains(v)) {
                out.push(v);
            }
        }
        match next {
            None => return Ok(out),
            Some(n) => {
                let n = url::Url::parse(&n)
                    .map_err(|e| OktaApiError::Malformed(format!("next link: {e}")))?;
                if n.origin() != origin {
                    return Err(OktaApiError::Malformed(
                        "next link leaves the Okta org".into(),
                    ));
                }
                url = n;
            }
        }
    }
    Err(OktaApiError::Malformed(format!(
        "more than {MAX_PAGES} pages of groups"
    )))
}

/// The `rel="next"` target of a `Link` header (RFC 8288 §3), if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_found_among_several_relations() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            reqwest::header::LINK,
            "<https://x.okta.com/api/v1/users/1/groups?limit=200>; rel=\"self\", <https://x.okta.com/api/v1/users/1/groups?after=g2&limit=200>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users/1/groups?after=g2&limit=200")
        );
        let mut only_self = reqwest::header::HeaderMap::new();
        only_self.append(
            reqwest::header::LINK,
            "<https://x/a>; rel=\"self\"".parse().unwrap(),
        );
        assert_eq!(next_link(&only_self), None);
    }
}
