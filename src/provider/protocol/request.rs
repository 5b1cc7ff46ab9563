//! The authorization endpoint's rules (RFC 6749 §4.1.1, OIDC Core §3.1.2, RFC 7636 §4.3), the
//! same for every provider teamgate runs: which requests are refused on a page because the
//! client or its redirect URI cannot be trusted, which go back to the client as `error=`
//! redirects, and the redirect URLs themselves (with RFC 9207 `iss`).

use url::Url;

use super::Registered;
use super::params::Params;

/// The nonce is stored with the code; capping it bounds what a flood of requests can store.
pub const MAX_NONCE_LEN: usize = 512;
/// The state is only echoed, but a huge one would bloat every redirect and page.
pub const MAX_STATE_LEN: usize = 2048;

/// What `prompt` asked for (OIDC Core §3.1.2.1). `consent` and `select_account` are accepted
/// and need nothing: clients are registered by the administrator, so there is no consent
/// screen, and the account is the one of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No page may be shown: answer at once, or `login_required`.
    pub none: bool,
    /// The user must authenticate again, even with a session.
    pub login: bool,
}

/// An authorization request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The requested scopes this provider understands, in the provider's order (`openid` first).
    pub scopes: Vec<String>,
    /// RFC 7636 S256 challenge; always present when the client requires PKCE.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// OIDC Core §3.1.2.1: the longest time since the user last authenticated, in seconds.
    pub max_age: Option<i64>,
}

/// An error for the client, sent to its redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}: {description}")]
pub struct ClientError {
    pub error: &'static str,
    /// Plain ASCII without quotes or backslashes, as RFC 6749 §4.1.2.1 requires.
    pub description: &'static str,
    pub state: Option<String>,
    /// The client's registered redirect URI, already checked.
    pub redirect_uri: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// RFC 6749 §4.1.2.1 (first paragraph) and §10.15: the client or redirect URI is missing,
    /// unknown or mismatched, so the user is told on a page and never redirected (an open
    /// redirector otherwise).
    #[error("untrusted request: {0}")]
    Untrusted(&'static str),
    #[error(transparent)]
    ToClient(#[from] ClientError),
}

/// Check an authorization request against the registered clients (`lookup`), keeping the
/// scopes of `supported` (in its order).
pub fn check(
    params: &Params,
    lookup: impl Fn(&str) -> Option<Registered>,
    supported: &[&str],
) -> Result<AuthorizationRequest, Refusal> {
    if params.is_repeated("client_id") {
        return Err(Refusal::Untrusted("the client_id parameter is repeated"));
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(Refusal::Untrusted("the request names no client_id"));
    };
    let Some(client) = lookup(client_id) else {
        return Err(Refusal::Untrusted("the client_id is not registered"));
    };
    if params.is_repeated("redirect_uri") {
        return Err(Refusal::Untrusted("the redirect_uri parameter is repeated"));
    }
    // OIDC Core §3.1.2.1: redirect_uri is required and must match a registered one exactly
    // (RFC 9700 §4.1.3: simple string comparison).
    let redirect_uri = match params.get("redirect_uri") {
        None => return Err(Refusal::Untrusted("the request names no redirect_uri")),
        Some(uri) if !client.redirect_uris.iter().any(|r| r == uri) => {
            return Err(Refusal::Untrusted(
                "the redirect_uri is not one registered for this client",
            ));
        }
        Some(uri) => uri.to_owned(),
    };
    // From here on the redirect URI is trusted, so errors go back to the client with the
    // state it sent (when it sent exactly one that is safe to echo).
    let state = params
        .get("state")
        .filter(|s| !params.is_repeated("state") && s.len() <= MAX_STATE_LEN)
        .map(str::to_owned);
    let refuse = |error, description| ClientError {
        error,
        description,
        state: state.clone(),
        redirect_uri: redirect_uri.clone(),
    };
    if params.any_repeated() {
        return Err(refuse("invalid_request", "a parameter is repeated").into());
    }
    if params.get("state").is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(refuse("invalid_request", "state is too long").into());
    }
    // OIDC Core §3.1.2.6: request objects (§6) are not supported, and saying so is required.
    if params.get("request").is_some() {
        return Err(refuse("request_not_supported", "request objects are not supported").into());
    }
    if params.get("request_uri").is_some() {
        return Err(refuse("request_uri_not_supported", "request_uri is not supported").into());
    }
    match params.get("response_type") {
        None => return Err(refuse("invalid_request", "response_type is required").into()),
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
            .into());
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(refuse("invalid_request", "only response_mode=query is supported").into());
    }
    // RFC 6749 §3.3: space-delimited. OIDC Core §3.1.2.1: openid is what makes it OIDC.
    let Some(scope) = params.get("scope") else {
        return Err(refuse("invalid_request", "scope is required").into());
    };
    let requested: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !requested.contains(&"openid") {
        return Err(refuse("invalid_scope", "the openid scope is required").into());
    }
    let scopes = supported
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| (*s).to_owned())
        .collect();
    // RFC 7636 §4.4.1 and RFC 9700 §2.1.1: PKCE is accepted from every client and required
    // of those that cannot keep a secret; only S256 (plain gives no protection).
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) if !client.pkce_required => None,
        (None, _) => {
            return Err(refuse("invalid_request", "code_challenge is required (PKCE)").into());
        }
        (Some(_), method) if method != Some("S256") => {
            return Err(refuse("invalid_request", "code_challenge_method must be S256").into());
        }
        (Some(c), _) if !is_s256_challenge(c) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge is not a base64url SHA-256",
            )
            .into());
        }
        (Some(c), _) => Some(c.to_owned()),
    };
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(refuse("invalid_request", "nonce is too long").into());
    }
    let mut prompt = Prompt::default();
    if let Some(p) = params.get("prompt") {
        let values: Vec<&str> = p.split(' ').filter(|v| !v.is_empty()).collect();
        for v in &values {
            match *v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" | "select_account" => {}
                _ => return Err(refuse("invalid_request", "prompt has an unknown value").into()),
            }
        }
        // OIDC Core §3.1.2.1: none with any other value is an error.
        if prompt.none && values.len() > 1 {
            return Err(refuse(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            )
            .into());
        }
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(refuse("invalid_request", "max_age is not a number of seconds").into());
            }
        },
    };
    Ok(AuthorizationRequest {
        client_id: client_id.to_owned(),
        redirect_uri,
        state,
        nonce,
        scopes,
        code_challenge,
        prompt,
        max_age,
    })
}

/// The client's redirect URI with the authorization response (RFC 6749 §4.1.2) or error
/// (§4.1.2.1), plus `iss` (RFC 9207 §2) so the client can tell which provider answered.
/// `redirect_uri` is a registered URI, already checked to parse.
pub fn redirect_url(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        // RFC 6749 §3.1.2: any query the registered URI has is kept.
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    url.into()
}

/// The error redirect of `e`.
pub fn error_redirect_url(e: &ClientError, issuer: &str) -> String {
    redirect_url(
        &e.redirect_uri,
        &[("error", e.error), ("error_description", e.description)],
        e.state.as_deref(),
        issuer,
    )
}

/// RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(verifier)) is always 43 characters.
pub fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
