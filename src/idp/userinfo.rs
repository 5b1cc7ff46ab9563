//! The UserInfo endpoint (OIDC Core §5.3), used when a provider releases groups only there
//! (Okta custom authorization servers, IdP quirk O2). Its `sub` must equal the ID token's
//! (OIDC Core §5.3.2, security case 11), otherwise the answer is discarded.

use serde_json::{Map, Value};

use super::error::IdpError;
use super::http_client::read_capped;
use super::provider::ProviderRuntime;

/// Fetch the userinfo claims with the access token; `expected_sub` is the ID token's `sub`.
pub async fn fetch(
    runtime: &ProviderRuntime,
    access_token: &str,
    expected_sub: &str,
) -> Result<Map<String, Value>, IdpError> {
    let metadata = runtime.metadata().await?;
    let endpoint = metadata
        .userinfo_endpoint()
        .ok_or_else(|| IdpError::Userinfo("the provider has no userinfo endpoint".into()))?;
    let response = runtime
        .http()
        .client()
        .get(endpoint.url().as_str())
        .bearer_auth(access_token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?;
    if !response.status().is_success() {
        return Err(IdpError::Userinfo(format!("status {}", response.status())));
    }
    let body = read_capped(response)
        .await
        .map_err(|e| IdpError::Userinfo(e.to_string()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| IdpError::Userinfo(format!("not a JSON object: {e}")))?;
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if sub == expected_sub => Ok(claims),
        other => Err(IdpError::Userinfo(format!(
            "userinfo sub {other:?} differs from the ID token's"
        ))),
    }
}
