//! The authorization endpoint's rules (RFC 6749 §4.1.1, OIDC Core §3.1.2, RFC 7636 §4.3):
//! which requests are refused on a page because the client cannot be trusted, which go back to
//! the client as `error=` redirects, and the redirect URLs themselves (with RFC 9207 `iss`).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use super::DemoIdp;
use super::grants::CodeGrant;
use super::tokens::SUPPORTED_SCOPES;

/// The nonce is stored with the code; capping it bounds the memory a flood of requests takes.
const MAX_NONCE_LEN: usize = 512;
/// The state is only echoed, but a huge one would bloat every redirect and page.
const MAX_STATE_LEN: usize = 2048;
/// Parameters carried from the authorization request through the pick form, so the pick can be
/// validated exactly like the request it answers.
const CARRIED: [&str; 9] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// Form- or query-encoded parameters, remembering which names were repeated.
pub(super) struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    pub(super) fn parse(raw: &[u8]) -> Self {
        let mut values = HashMap::new();
        let mut repeated = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if values.insert(k.to_string(), v.into_owned()).is_some() {
                repeated.push(k.into_owned());
            }
        }
        Self { values, repeated }
    }

    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// RFC 6749 §3.1: request parameters must not be included more than once.
    pub(super) fn any_repeated(&self) -> bool {
        !self.repeated.is_empty()
    }
}

/// An authorization request that passed every check.
#[derive(Debug, Clone)]
pub(super) struct AuthorizationRequest {
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The requested scopes this provider understands, `openid` first.
    pub scopes: Vec<String>,
    pub code_challenge: String,
}

/// An error for the client, sent to its redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}: {description}")]
pub(super) struct ClientError {
    pub error: &'static str,
    /// Plain ASCII without quotes or backslashes, as RFC 6749 §4.1.2.1 requires.
    pub description: &'static str,
    pub state: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum Refusal {
    /// RFC 6749 §4.1.2.1 (first paragraph) and §10.15: the client or redirect URI is missing,
    /// unknown or mismatched, so the user is told on a page and never redirected (an open
    /// redirector otherwise).
    #[error("untrusted request: {0}")]
    Untrusted(&'static str),
    #[error(transparent)]
    ToClient(#[from] ClientError),
}

impl DemoIdp {
    /// Check an authorization request (or the pick form that repeats it).
    pub(super) fn check_authorization(
        &self,
        params: &Params,
    ) -> Result<AuthorizationRequest, Refusal> {
        if params.is_repeated("client_id") {
            return Err(Refusal::Untrusted("the client_id parameter is repeated"));
        }
        match params.get("client_id") {
            None => return Err(Refusal::Untrusted("the request names no client_id")),
            Some(id) if id != self.client_id => {
                return Err(Refusal::Untrusted("the client_id is not registered"));
            }
            Some(_) => {}
        }
        if params.is_repeated("redirect_uri") {
            return Err(Refusal::Untrusted("the redirect_uri parameter is repeated"));
        }
        // OIDC Core §3.1.2.1: redirect_uri is required and must match a registered one exactly.
        match params.get("redirect_uri") {
            None => return Err(Refusal::Untrusted("the request names no redirect_uri")),
            Some(uri) if uri != self.redirect_uri => {
                return Err(Refusal::Untrusted(
                    "the redirect_uri is not the one registered for this client",
                ));
            }
            Some(_) => {}
        }
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
        };
        if params.any_repeated() {
            return Err(refuse("invalid_request", "a parameter is repeated").into());
        }
        if params.get("state").is_some_and(|s| s.len() > MAX_STATE_LEN) {
            return Err(refuse("invalid_request", "state is too long").into());
        }
        // OIDC Core §3.1.2.6: request objects (§6) are not supported, and saying so is required.
        if params.get("request").is_some() {
            return Err(
                refuse("request_not_supported", "request objects are not supported").into(),
            );
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
        let scopes = SUPPORTED_SCOPES
            .iter()
            .filter(|s| requested.contains(s))
            .map(|s| (*s).to_owned())
            .collect();
        // RFC 7636 §4.4.1: PKCE is required here, and only S256 (plain gives no protection).
        let Some(code_challenge) = params.get("code_challenge") else {
            return Err(refuse("invalid_request", "code_challenge is required (PKCE)").into());
        };
        if params.get("code_challenge_method") != Some("S256") {
            return Err(refuse("invalid_request", "code_challenge_method must be S256").into());
        }
        if !is_s256_challenge(code_challenge) {
            return Err(refuse(
                "invalid_request",
                "code_challenge is not a base64url SHA-256",
            )
            .into());
        }
        let nonce = params.get("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
            return Err(refuse("invalid_request", "nonce is too long").into());
        }
        // OIDC Core §3.1.2.1: prompt=none asks for no interaction, and every demo login needs
        // the user to pick someone (§3.1.2.6).
        if params
            .get("prompt")
            .is_some_and(|p| p.split(' ').any(|v| v == "none"))
        {
            return Err(refuse(
                "login_required",
                "the demo provider always asks who signs in",
            )
            .into());
        }
        Ok(AuthorizationRequest {
            state,
            nonce,
            scopes,
            code_challenge: code_challenge.to_owned(),
        })
    }

    /// The pick form was submitted: check it again like the request it answers, then either
    /// send the user back with a fresh code (RFC 6749 §4.1.2) or with `access_denied` when they
    /// cancelled. Returns the URL to redirect to.
    pub(super) fn pick(&self, params: &Params, now: Instant) -> Result<String, Refusal> {
        let request = self.check_authorization(params)?;
        let refuse = |error, description| ClientError {
            error,
            description,
            state: request.state.clone(),
        };
        if params.get("cancel").is_some() {
            return Err(refuse("access_denied", "the user cancelled the sign-in").into());
        }
        let Some(user) = params.get("email").and_then(|e| self.user_by_email(e)) else {
            return Err(refuse("invalid_request", "no known demo user was picked").into());
        };
        let grant = CodeGrant {
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scopes: request.scopes.clone(),
            user: user.clone(),
            auth_time: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let code = self.grants.issue_code(grant, now);
        Ok(self.redirect_url(&[("code", &code)], request.state.as_deref()))
    }

    /// The client's redirect URI with the authorization response (RFC 6749 §4.1.2) or error
    /// (§4.1.2.1), plus `iss` (RFC 9207 §2) so the client can tell which provider answered.
    pub(super) fn redirect_url(&self, pairs: &[(&str, &str)], state: Option<&str>) -> String {
        let mut url = self.redirect_target.clone();
        {
            // RFC 6749 §3.1.2: any query the registered URI has is kept.
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        url.into()
    }

    pub(super) fn error_redirect_url(&self, e: &ClientError) -> String {
        self.redirect_url(
            &[("error", e.error), ("error_description", e.description)],
            e.state.as_deref(),
        )
    }

    /// What the pick page shows and carries.
    pub(super) fn pick_page<'a>(&'a self, params: &'a Params) -> PickPage<'a> {
        PickPage {
            action: &self.endpoints.pick_path,
            client_id: &self.client_id,
            params: CARRIED
                .iter()
                .filter_map(|name| params.get(name).map(|value| Hidden { name, value }))
                .collect(),
            users: self
                .users
                .iter()
                .map(|u| PickUser {
                    email: &u.email,
                    name: &u.name,
                    groups: &u.groups,
                })
                .collect(),
        }
    }
}

/// RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(verifier)) is always 43 characters.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: a code verifier is 43 to 128 unreserved characters.
pub(super) fn is_code_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The context of `demo_idp_pick.html`.
#[derive(Serialize)]
pub(super) struct PickPage<'a> {
    action: &'a str,
    client_id: &'a str,
    params: Vec<Hidden<'a>>,
    users: Vec<PickUser<'a>>,
}

#[derive(Serialize)]
struct Hidden<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct PickUser<'a> {
    email: &'a str,
    name: &'a str,
    groups: &'a [String],
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::demo_idp::tests::{CLIENT_ID, REDIRECT_URI, test_idp, test_idp_redirecting_to};

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "openid email profile"),
            ("state", "st"),
            ("nonce", "nn"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    }

    fn check(pairs: &[(&str, &str)]) -> Result<AuthorizationRequest, Refusal> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        test_idp("http://127.0.0.1:9/demo-idp")
            .check_authorization(&Params::parse(query.as_bytes()))
    }

    /// The good request with `name` replaced by `value` (an empty value counts as omitted).
    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut p: Vec<_> = good().into_iter().filter(|(k, _)| *k != name).collect();
        p.push((name, value));
        p
    }

    fn client_error(
        r: Result<AuthorizationRequest, Refusal>,
    ) -> Option<(&'static str, Option<String>)> {
        match r {
            Err(Refusal::ToClient(e)) => Some((e.error, e.state)),
            _ => None,
        }
    }

    #[test]
    fn a_complete_request_is_accepted_with_the_understood_scopes() {
        let mut pairs = good();
        pairs.retain(|(k, _)| *k != "scope");
        pairs.push(("scope", "profile openid offline_access email"));
        let req = check(&pairs).expect("accepted");
        assert_eq!(req.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            (req.state.as_deref(), req.nonce.as_deref()),
            (Some("st"), Some("nn"))
        );
    }

    #[test]
    fn a_wrong_client_or_redirect_uri_is_never_sent_back_to_the_client() {
        for (name, value) in [
            ("client_id", "someone-else"),
            ("client_id", ""),
            ("redirect_uri", "https://evil.example/cb"),
            ("redirect_uri", "http://127.0.0.1:9/callback/demo/"),
            ("redirect_uri", ""),
        ] {
            let r = check(&with(name, value));
            assert!(
                matches!(r, Err(Refusal::Untrusted(_))),
                "{name}={value}: {r:?}"
            );
        }
        let mut twice = good();
        twice.push(("redirect_uri", "https://evil.example/cb"));
        assert!(matches!(check(&twice), Err(Refusal::Untrusted(_))));
    }

    #[test]
    fn bad_parameters_go_back_to_the_client_with_the_rfc_error_code_and_state() {
        let cases = [
            ("response_type", "", "invalid_request"),
            ("response_type", "token", "unsupported_response_type"),
            ("response_mode", "fragment", "invalid_request"),
            ("scope", "", "invalid_request"),
            ("scope", "email profile", "invalid_scope"),
            ("code_challenge", "", "invalid_request"),
            ("code_challenge", "too-short", "invalid_request"),
            ("code_challenge_method", "plain", "invalid_request"),
            ("code_challenge_method", "", "invalid_request"),
            ("prompt", "none", "login_required"),
            (
                "request",
                "eyJhbGciOiJub25lIn0.e30.",
                "request_not_supported",
            ),
        ];
        for (name, value, expected) in cases {
            let got = client_error(check(&with(name, value)));
            assert_eq!(
                got,
                Some((expected, Some("st".to_owned()))),
                "{name}={value}"
            );
        }
        let mut twice = good();
        twice.push(("nonce", "other"));
        assert_eq!(
            client_error(check(&twice)).map(|e| e.0),
            Some("invalid_request")
        );
    }

    #[test]
    fn error_redirects_keep_the_registered_query_and_carry_state_and_iss() {
        let idp = test_idp_redirecting_to(
            "http://127.0.0.1:9/demo-idp",
            "http://127.0.0.1:9/cb?tenant=t1",
        );
        let url = idp.error_redirect_url(&ClientError {
            error: "access_denied",
            description: "the user cancelled",
            state: Some("a b&c".into()),
        });
        let parsed = Url::parse(&url).expect("a URL");
        let pairs: HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs.get("error").map(String::as_str),
            Some("access_denied")
        );
        assert_eq!(pairs.get("state").map(String::as_str), Some("a b&c"));
        assert_eq!(
            pairs.get("iss").map(String::as_str),
            Some("http://127.0.0.1:9/demo-idp")
        );
        assert_eq!(pairs.get("tenant").map(String::as_str), Some("t1"));
        assert!(url.starts_with("http://127.0.0.1:9/cb?tenant=t1&"));
    }

    #[test]
    fn code_verifiers_follow_rfc_7636_syntax() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"~._-".repeat(32)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }
}
