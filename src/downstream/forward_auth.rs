//! `/auth`, asked by a reverse proxy before every request to a protected app. The answer:
//! 200 with the identity headers; 401 without a valid session (nginx `auth_request` turns it
//! into a redirect to `/login`), or 302 to `/login` in redirect mode (`?redirect=1`, for
//! Traefik and Caddy, which pass the auth response to the browser); 403 when the route's rules
//! are not met; 5xx for anything else, never 2xx (security case 55: fail closed).
//!
//! Route rules come only from `/auth`'s own query, which the proxy's config fixes per route:
//! `team=a,b` (any of), `role=editor[,owner]` with optional `scope=org/acme/space/infra` (held
//! there or above), `aud=` (the assertion's audience), `redirect=1`. The original request's
//! URL never feeds a rule, so its query or fragment cannot widen one (security case 57).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::assertion::{self, CacheKey, Handover};
use super::{Downstream, DownstreamError};
use crate::config::{Config, ServerConfig};
use crate::domain::{Role, Scope, TeamId};
use crate::membership::Identity;
use crate::state::AppState;
use crate::store::users::UserRecord;
use crate::web::client_addr::trusted_peer;
use crate::web::error::ErrorPage;
use crate::web::headers::no_store;
use crate::web::redirect::safe_return_to;
use crate::web::request_id::RequestId;

/// The `/auth` query: what this route requires and how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Any one of these teams lets the user in; empty: no team rule.
    pub teams: Vec<TeamId>,
    /// Any one of these roles, held on `scope` or above (anywhere when `scope` is `None`).
    pub roles: Vec<Role>,
    pub scope: Option<Scope>,
    /// The assertion's `aud`.
    pub aud: String,
    /// Answer an unauthenticated browser with 302 to login instead of 401.
    pub redirect: bool,
}

/// A route whose rules cannot be understood. The proxy's config is wrong, so the request is
/// refused with a 500 and the reason logged: guessing could let someone through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forward-auth route rule: {0}")]
pub struct RuleError(pub String);

impl Rules {
    /// Parse `/auth`'s query against `config`. Unknown or repeated parameters, unknown teams or
    /// roles, and audiences not configured are errors, not silently ignored.
    pub fn parse(query: Option<&str>, config: &Config) -> Result<Rules, RuleError> {
        let mut rules = Rules {
            teams: Vec::new(),
            roles: Vec::new(),
            scope: None,
            aud: config.forward_auth.assertion_audience.clone(),
            redirect: false,
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !seen.insert(key.to_string()) {
                return Err(RuleError(format!(
                    "`{key}` is given twice; give it once (a list is comma-separated)"
                )));
            }
            match &*key {
                "team" => {
                    for id in list(&value, "team")? {
                        let team =
                            TeamId::parse(id).map_err(|e| RuleError(format!("team: {e}")))?;
                        if config.team(&team).is_none() {
                            return Err(RuleError(format!("team \"{team}\" is not in the config")));
                        }
                        rules.teams.push(team);
                    }
                }
                "role" => {
                    for name in list(&value, "role")? {
                        let role =
                            Role::parse(name).map_err(|e| RuleError(format!("role: {e}")))?;
                        if !config.known_roles.contains(&role) {
                            return Err(RuleError(format!("role \"{role}\" is not a known role")));
                        }
                        rules.roles.push(role);
                    }
                }
                "scope" => {
                    rules.scope =
                        Some(Scope::parse(&value).map_err(|e| RuleError(format!("scope: {e}")))?);
                }
                "aud" => {
                    if !allowed_audiences(config).any(|a| a == *value) {
                        return Err(RuleError(format!(
                            "aud \"{value}\" is not a configured audience (forward_auth.assertion_audience, \
                             server.public_url or one of server.allowed_redirect_origins)"
                        )));
                    }
                    rules.aud = value.into_owned();
                }
                "redirect" => {
                    rules.redirect = match &*value {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        other => {
                            return Err(RuleError(format!("redirect=\"{other}\"; use 1 or 0")));
                        }
                    };
                }
                other => {
                    return Err(RuleError(format!(
                        "unknown parameter `{other}`; use team, role, scope, aud or redirect"
                    )));
                }
            }
        }
        if rules.scope.is_some() && rules.roles.is_empty() {
            return Err(RuleError(
                "scope is given without role; say which role is required there".into(),
            ));
        }
        Ok(rules)
    }

    /// `Ok` when `grant` meets every rule.
    pub fn check(&self, grant: &Handover) -> Result<(), Refusal> {
        if !self.teams.is_empty() && !self.teams.iter().any(|t| grant.teams.contains(t.as_str())) {
            return Err(Refusal::Teams(
                self.teams.iter().map(ToString::to_string).collect(),
            ));
        }
        if !self.roles.is_empty() {
            let held = |role: &Role| match &self.scope {
                Some(scope) => grant.roles.has(role, scope),
                None => grant.roles.holds(role),
            };
            if !self.roles.iter().any(held) {
                return Err(Refusal::Role {
                    roles: self.roles.iter().map(ToString::to_string).collect(),
                    scope: self.scope.as_ref().map(ToString::to_string),
                });
            }
        }
        Ok(())
    }
}

fn list<'a>(value: &'a str, key: &str) -> Result<Vec<&'a str>, RuleError> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(RuleError(format!("{key}=\"{value}\" has an empty entry")));
    }
    Ok(items)
}

/// The audiences a route may ask for: the configured default, teamgate itself, and the origins
/// of the apps teamgate may send browsers back to (each app is one audience, RFC 8725 §3.9).
fn allowed_audiences(config: &Config) -> impl Iterator<Item = String> + '_ {
    [
        config.forward_auth.assertion_audience.clone(),
        config
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        config.server.public_url.origin().ascii_serialization(),
    ]
    .into_iter()
    .chain(
        config
            .server
            .allowed_redirect_origins
            .iter()
            .map(|o| o.ascii_serialization()),
    )
}

/// Why a signed-in user is refused a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Teams(Vec<String>),
    Role {
        roles: Vec<String>,
        scope: Option<String>,
    },
}

impl Refusal {
    fn reason(&self, who: &str) -> String {
        match self {
            Refusal::Teams(teams) => format!(
                "You are signed in as {who}, but this application is only for members of {}: {}. \
                 Ask your administrator if you need access.",
                if teams.len() == 1 {
                    "the team"
                } else {
                    "one of the teams"
                },
                teams.join(", ")
            ),
            Refusal::Role { roles, scope } => format!(
                "You are signed in as {who}, but this application requires the role {}{}. \
                 Ask your administrator if you need access.",
                roles.join(" or "),
                scope
                    .as_ref()
                    .map(|s| format!(" on {s}"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// Where to send the browser back after login: the original URL as a trusted proxy reports it
/// (`X-Forwarded-Proto`, `-Host`, `-Uri`, or nginx's `X-Original-URI`), if `safe_return_to`
/// accepts it. From any other peer these headers are ignored (security case 56): a client could
/// send them itself.
pub fn return_url(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    server: &ServerConfig,
) -> Option<String> {
    trusted_peer(peer, server)?;
    let uri = headers
        .get("x-forwarded-uri")
        .or_else(|| headers.get("x-original-uri"))?
        .to_str()
        .ok()?;
    if !uri.starts_with('/') {
        return None;
    }
    let proto =
        first_value(headers, "x-forwarded-proto").filter(|p| matches!(*p, "http" | "https"));
    let candidate = match (proto, first_value(headers, "x-forwarded-host")) {
        (Some(proto), Some(host)) => format!("{proto}://{host}{uri}"),
        _ => uri.to_owned(),
    };
    safe_return_to(&candidate, server)
}

/// The browser's navigation requests accept HTML; API clients and health checks do not.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `/auth`. Thin: gather the inputs, [`decide`], answer.
pub async fn handler(
    State(state): State<AppState>,
    Extension(downstream): Extension<Arc<Downstream>>,
    request: Request,
) -> Response {
    let config = state.config.get();
    let (parts, _body) = request.into_parts();
    let rid = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId("-".into()));
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let browser = wants_html(&parts.headers);
    let answer = decide(
        &state,
        &downstream,
        &config,
        &parts.headers,
        parts.uri.query(),
        parts.extensions.get::<Session>(),
        peer,
    )
    .await;
    let response = match answer {
        Answer::Allow(grant) => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            for (name, value) in &grant.headers {
                headers.insert(name.clone(), value.clone());
            }
            response
        }
        Answer::SignIn {
            redirect: Some(location),
        } if browser => {
            let mut response = StatusCode::FOUND.into_response();
            match HeaderValue::from_str(&location) {
                Ok(value) => {
                    response.headers_mut().insert(header::LOCATION, value);
                    response
                }
                Err(e) => internal(
                    &state,
                    &rid,
                    browser,
                    &format!("login URL is not a header value: {e}"),
                ),
            }
        }
        Answer::SignIn { .. } => (StatusCode::UNAUTHORIZED, "not signed in\n").into_response(),
        Answer::Refuse { refusal, who } => {
            let reason = refusal.reason(&who);
            if browser {
                ErrorPage::new(
                    &state.templates,
                    &rid,
                    StatusCode::FORBIDDEN,
                    "Access refused",
                    reason.clone(),
                    reason,
                )
                .into_response()
            } else {
                tracing::info!(request_id = %rid.0, user = %who, refusal = ?refusal, "forward-auth refused");
                (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response()
            }
        }
        Answer::Misconfigured(e) => internal(&state, &rid, browser, &e.to_string()),
        Answer::Failed(e) => internal(&state, &rid, browser, &e.to_string()),
    };
    no_store(response)
}

/// A 500, logged once with the request id; the client learns nothing internal.
fn internal(state: &AppState, rid: &RequestId, browser: bool, reason: &str) -> Response {
    if browser {
        ErrorPage::internal(&state.templates, rid, reason).into_response()
    } else {
        tracing::error!(request_id = %rid.0, reason = %reason, "forward-auth failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("teamgate could not decide; request id {}\n", rid.0),
        )
            .into_response()
    }
}

/// The outcome of one `/auth` request.
pub enum Answer {
    Allow(Arc<Handover>),
    /// Not signed in; `redirect` is the login URL for redirect mode.
    SignIn {
        redirect: Option<String>,
    },
    Refuse {
        refusal: Refusal,
        who: String,
    },
    Misconfigured(RuleError),
    Failed(DownstreamError),
}

/// The decision. Order matters: the session (and with it the user's generation and active
/// flag) is checked before any cached grant is used, so a revoked user is refused on the very
/// next request (security case 51).
pub async fn decide(
    state: &AppState,
    downstream: &Downstream,
    config: &Arc<Config>,
    headers: &HeaderMap,
    query: Option<&str>,
    session: Option<&Session>,
    peer: Option<SocketAddr>,
) -> Answer {
    let rules = match Rules::parse(query, config) {
        Ok(rules) => rules,
        Err(e) => return Answer::Misconfigured(e),
    };
    let Some(session) = session else {
        return Answer::Failed(DownstreamError::NoSessionLayer);
    };
    let signed_in =
        match crate::web::session::current(session, &state.store, &state.clock, &config.server)
            .await
        {
            Ok(s) => s,
            Err(e) => return Answer::Failed(e.into()),
        };
    let Some(signed_in) = signed_in else {
        let redirect = rules
            .redirect
            .then(|| login_url(headers, peer, &config.server));
        return Answer::SignIn { redirect };
    };
    let user = signed_in.user;
    let key = CacheKey::new(&user, &rules.aud);
    let now = state.clock.unix();
    let grant = match downstream.cache.get(&key, config, now) {
        Some(grant) => grant,
        None => match fresh_grant(state, downstream, config, &user, &rules.aud, now).await {
            Ok(grant) => downstream.cache.insert(key, grant, now),
            Err(e) => return Answer::Failed(e),
        },
    };
    match rules.check(&grant) {
        Ok(()) => Answer::Allow(grant),
        Err(refusal) => Answer::Refuse {
            refusal,
            who: grant.label.clone(),
        },
    }
}

/// Read the user's memberships and sign a new assertion: the slow path, once per user,
/// audience and half assertion lifetime.
async fn fresh_grant(
    state: &AppState,
    downstream: &Downstream,
    config: &Arc<Config>,
    user: &UserRecord,
    aud: &str,
    now: i64,
) -> Result<Handover, DownstreamError> {
    let identity = Identity::load(&state.store, config, user).await?;
    let keys = downstream.keys.get(&state.store, &state.clock).await?;
    assertion::build(config, &identity, &keys, aud, now)
}

/// `{public_url}/login?rd=<original URL>`; without `rd` when the original URL is unknown or
/// not a safe place to return to.
pub fn login_url(headers: &HeaderMap, peer: Option<SocketAddr>, server: &ServerConfig) -> String {
    let login = server.url("/login");
    match return_url(headers, peer, server) {
        Some(rd) => format!(
            "{login}?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", &rd)
                .finish()
        ),
        None => login,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server_extra: &str) -> Config {
        let text = format!(
            r#"[server]
public_url = "https://apps.example.com"
allowed_redirect_origins = ["https://wiki.example.com"]
{server_extra}

[[provider]]
id = "corp"
kind = "oidc"
issuer = "https://idp.example.com"
client_id = "teamgate"
client_secret_file = "example-secrets/okta-client-secret"

[[team]]
id = "engineers"
roles = [{{ scope = "org/acme/space/infra", role = "editor" }}]

[[team]]
id = "operators"
"#
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/t.toml");
        Config::parse(&text, &path).unwrap()
    }

    #[test]
    fn a_route_query_parses_into_rules() {
        let c = config("");
        let rules = Rules::parse(
            Some("team=operators,engineers&role=editor&scope=org/acme/space/infra&aud=https://wiki.example.com&redirect=1"),
            &c,
        )
        .unwrap();
        assert_eq!(rules.teams.len(), 2);
        assert_eq!(rules.roles, [Role::parse("editor").unwrap()]);
        assert_eq!(
            rules.scope,
            Some(Scope::parse("org/acme/space/infra").unwrap())
        );
        assert_eq!(rules.aud, "https://wiki.example.com");
        assert!(rules.redirect);
        let none = Rules::parse(None, &c).unwrap();
        assert!(none.teams.is_empty() && none.roles.is_empty() && !none.redirect);
        assert_eq!(
            none.aud, "https://apps.example.com",
            "the default audience is public_url"
        );
    }

    #[test]
    fn a_route_query_teamgate_cannot_understand_is_an_error_not_ignored() {
        let c = config("");
        for query in [
            "team=engineers&team=operators",
            "team=nobody",
            "team=",
            "team=engineers,,operators",
            "role=emperor",
            "scope=org/acme",
            "aud=https://evil.example.com",
            "redirect=yes",
            "teams=engineers",
        ] {
            assert!(Rules::parse(Some(query), &c).is_err(), "{query}");
        }
    }

    fn forwarded(host: &str, uri: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_str(host).unwrap());
        h.insert("x-forwarded-uri", HeaderValue::from_str(uri).unwrap());
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let trusted = config(r#"trusted_proxies = ["10.0.0.5", "::1"]"#);
        let headers = forwarded("wiki.example.com", "/page?x=1");
        let proxy: SocketAddr = "10.0.0.5:4321".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.5]:4321".parse().unwrap();
        let stranger: SocketAddr = "10.0.0.6:4321".parse().unwrap();
        let expected = Some("https://wiki.example.com/page?x=1".to_owned());
        assert_eq!(return_url(&headers, Some(proxy), &trusted.server), expected);
        assert_eq!(
            return_url(&headers, Some(mapped), &trusted.server),
            expected
        );
        assert_eq!(return_url(&headers, Some(stranger), &trusted.server), None);
        assert_eq!(return_url(&headers, None, &trusted.server), None);
        assert_eq!(
            login_url(&headers, Some(stranger), &trusted.server),
            "https://apps.example.com/login"
        );
        assert_eq!(
            login_url(&headers, Some(proxy), &trusted.server),
            "https://apps.example.com/login?rd=https%3A%2F%2Fwiki.example.com%2Fpage%3Fx%3D1"
        );
        // Trusted, but not an allowed origin: no open redirect.
        let evil = forwarded("evil.example.com", "/");
        assert_eq!(return_url(&evil, Some(proxy), &trusted.server), None);
    }
}
