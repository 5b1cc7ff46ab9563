//! The demo's authorization endpoint: the shared checks of
//! [`crate::provider::protocol::request`] plus the demo's own rules, and the pick page that
//! stands where teamgate's provider has its login.

use std::time::Instant;

use serde::Serialize;

use super::DemoIdp;
use super::grants::CodeGrant;
use super::tokens::SUPPORTED_SCOPES;
use crate::provider::protocol::params::Params;
use crate::provider::protocol::request::{
    self, AuthorizationRequest, ClientError, Refusal, error_redirect_url, redirect_url,
};
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

impl DemoIdp {
    /// Check an authorization request (or the pick form that repeats it) with the shared rules
    /// ([`request::check`]), then the demo's own: PKCE is required, and every demo login asks
    /// who signs in, so `prompt=none` cannot be honoured (OIDC Core §3.1.2.6).
    pub(super) fn check_authorization(
        &self,
        params: &Params,
    ) -> Result<AuthorizationRequest, Refusal> {
        let request = request::check(params, |id| self.registered(id), &SUPPORTED_SCOPES)?;
        if request.prompt.none {
            return Err(ClientError {
                error: "login_required",
                description: "the demo provider always asks who signs in",
                state: request.state.clone(),
                redirect_uri: request.redirect_uri.clone(),
            }
            .into());
        }
        Ok(request)
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
            redirect_uri: request.redirect_uri.clone(),
        };
        if params.get("cancel").is_some() {
            return Err(refuse("access_denied", "the user cancelled the sign-in").into());
        }
        let Some(user) = params.get("email").and_then(|e| self.user_by_email(e)) else {
            return Err(refuse("invalid_request", "no known demo user was picked").into());
        };
        let Some(code_challenge) = request.code_challenge.clone() else {
            return Err(refuse("invalid_request", "code_challenge is required (PKCE)").into());
        };
        let grant = CodeGrant {
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            code_challenge,
            nonce: request.nonce.clone(),
            scopes: request.scopes.clone(),
            user: user.clone(),
            auth_time: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let code = self.grants.issue_code(grant, now);
        Ok(self.redirect_url(&[("code", &code)], request.state.as_deref()))
    }

    /// The client's redirect URI with the authorization response and `iss` (RFC 9207 §2).
    pub(super) fn redirect_url(&self, pairs: &[(&str, &str)], state: Option<&str>) -> String {
        redirect_url(&self.redirect_uri, pairs, state, &self.issuer)
    }

    pub(super) fn error_redirect_url(&self, e: &ClientError) -> String {
        error_redirect_url(e, &self.issuer)
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
    use std::collections::HashMap;

    use url::Url;

    use super::*;
    use crate::provider::demo::tests::{
        CLIENT_ID, REDIRECT_URI, test_idp, test_idp_redirecting_to,
    };

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
            redirect_uri: "http://127.0.0.1:9/cb?tenant=t1".into(),
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
}
