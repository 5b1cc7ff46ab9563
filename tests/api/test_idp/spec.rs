//! The plain data of the test IdP: how it is laid out (`TestIdpOptions`), who signs in
//! (`LoginSpec`), and the requests it records for tests to inspect.

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::endpoints;

/// How the IdP is laid out; fixed for its lifetime.
#[derive(Clone, Debug, Default)]
pub struct TestIdpOptions {
    /// The issuer's path below the server root: `""` (Okta org server style), `/{tid}/v2.0`
    /// (Entra), `/oauth2/default` (Okta custom server). Discovery is served beneath it.
    pub issuer_path: String,
    /// Multi-tenant (Entra `/common`, IdP quirk E9): the discovery `issuer` is this path
    /// template holding a literal `{tenantid}`; ID tokens carry the user's `tid` in its place.
    /// RFC 9207 `iss` is then neither sent nor advertised, as Entra does.
    pub metadata_issuer_template: Option<String>,
    /// Defaults to `teamgate-test-client`.
    pub client_id: Option<String>,
    /// Defaults to a random secret containing `: + % ~` and a space (RFC 6749 §2.3.1).
    pub client_secret: Option<String>,
}

impl TestIdpOptions {
    /// A single-tenant Entra v2 issuer: `{base}/{tid}/v2.0`.
    pub fn entra(tid: &str) -> Self {
        Self {
            issuer_path: format!("/{tid}/v2.0"),
            ..Self::default()
        }
    }

    /// Entra's multi-tenant endpoint: discovery at `{base}/common/v2.0`, whose document names
    /// the issuer `{base}/{tenantid}/v2.0`.
    pub fn entra_multi_tenant() -> Self {
        Self {
            issuer_path: "/common/v2.0".into(),
            metadata_issuer_template: Some("/{tenantid}/v2.0".into()),
            ..Self::default()
        }
    }

    /// An Okta custom authorization server: `{base}/oauth2/{server_id}` (IdP quirk O4).
    pub fn okta_custom_server(server_id: &str) -> Self {
        Self {
            issuer_path: format!("/oauth2/{server_id}"),
            ..Self::default()
        }
    }
}

/// Who signs in next, and what the directory (Graph, Okta Groups API) says about them.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginSpec {
    pub sub: String,
    /// `None`: no `email` claim.
    pub email: Option<String>,
    /// `None`: no `email_verified` claim (security case 28: then the email is not trusted).
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// The `groups` claim verbatim; `None`: the claim is absent (not the same as `[]`).
    pub groups: Option<Value>,
    /// More ID-token claims, set over the standard ones (so they may also replace them).
    pub extra_claims: Map<String, Value>,
    /// The user's groups as Graph and the Okta Groups API report them; `None`: the string
    /// values of `groups`.
    pub directory_groups: Option<Vec<String>>,
    /// Entra directory roles: `transitiveMemberOf` lists them beside the groups (E5).
    pub directory_roles: Vec<String>,
}

impl Default for LoginSpec {
    fn default() -> Self {
        Self::new("user-alice", "alice@example.com")
    }
}

impl LoginSpec {
    /// A user with a verified email, a name made from it, and no `groups` claim.
    pub fn new(sub: &str, email: &str) -> Self {
        let local = email.split('@').next().unwrap_or(email);
        Self {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            name: Some(format!("{local} Example")),
            groups: None,
            extra_claims: Map::new(),
            directory_groups: None,
            directory_roles: Vec::new(),
        }
    }

    /// Set the `groups` claim to this array of strings.
    pub fn with_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        self.groups = Some(json!(groups));
        self
    }

    /// Add or replace one ID-token claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra_claims.insert(name.to_owned(), value);
        self
    }

    /// The groups the directory APIs report.
    pub fn directory_groups(&self) -> Vec<String> {
        if let Some(groups) = &self.directory_groups {
            return groups.clone();
        }
        match &self.groups {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    }
}

/// One request to the authorization endpoint, as the browser sent it.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest {
    /// Query parameters in order, repeats kept.
    pub params: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        first(&self.params, name)
    }
}

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub headers: HeaderMap,
    /// Form parameters in order, repeats kept.
    pub form: Vec<(String, String)>,
}

impl TokenRequest {
    pub fn form(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `client_secret_basic` credentials, form-url-decoded (RFC 6749 §2.3.1); `None`
    /// when the request has no Basic `Authorization` or it does not decode.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        endpoints::basic_credentials(&self.headers)
    }
}

pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
