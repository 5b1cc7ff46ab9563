//! The shipped proxy snippets, run for real: nginx (`config/nginx.conf`,
//! `config/nginx-path.conf`) and Caddy (`config/Caddyfile`, `config/Caddyfile-path`), each
//! file read from the repository and changed only in its ports and host names, in front of an
//! app that echoes the headers it receives, with teamgate behind the same proxy and the test
//! IdP signing users in. Two deployment shapes:
//!
//! - **own host**: teamgate at `login.teamgate.localhost`, the app at `app.teamgate.localhost`
//!   (names under `localhost` are the loopback host, RFC 6761 §6.3, so that Chromium and the
//!   cookie rules see two real hosts of one domain; `server.cookie_domain` shares the session);
//! - **path**: teamgate under `/teamgate/` of the app's own host (public_url with a path).
//!
//! For each: a login round trip from the app back to the app with identity headers, forged
//! identity headers stripped, teamgate's own 403 page for a route the user may not open, SCIM
//! through the proxy at the documented tenant URL, teamgate's pages (home, admin, JWKS,
//! health) reachable, the proxy's request id taken over, and sign-out; and the login round
//! trip again in Chromium. Skipped with a printed reason when nginx, Caddy or Chromium is
//! missing, unless `TEAMGATE_REQUIRE_E2E=1`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::forward_auth_support::{Agent, Gate, PROVIDER, spawn_with, user, verify};
use crate::helpers::{follow, hidden_inputs};
use crate::support::browser::Browser;
use crate::support::caddy::Caddy;
use crate::support::echo::{echo, received};
use crate::support::nginx::Nginx;
use crate::support::{e2e, serve};

const LOGIN_HOST: &str = "login.teamgate.localhost";
const APP_HOST: &str = "app.teamgate.localhost";
const COOKIE_DOMAIN: &str = "teamgate.localhost";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProxyKind {
    Nginx,
    Caddy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// teamgate on a host of its own, the app on another.
    OwnHost,
    /// teamgate under /teamgate/ of the app's host.
    Path,
}

/// A running proxy of either kind.
enum Running {
    Nginx(Nginx),
    Caddy(Caddy),
}

impl Running {
    fn port(&self) -> u16 {
        match self {
            Running::Nginx(n) => n.port(),
            Running::Caddy(c) => c.port(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Running::Nginx(n) => format!(
                "--- nginx config ---\n{}\n--- error log ---\n{}",
                n.config(),
                std::fs::read_to_string(n.error_log()).unwrap_or_default()
            ),
            Running::Caddy(c) => format!(
                "--- Caddyfile ---\n{}\n--- log ---\n{}",
                c.config(),
                c.log()
            ),
        }
    }
}

/// Replace every `from` in `text` (each must be there: the test must follow the shipped file).
fn replace_all(mut text: String, file: &str, edits: &[(&str, String)]) -> String {
    for (from, to) in edits {
        assert!(text.contains(from), "{file} no longer has `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// The shipped snippet for `kind` and `shape`, pointed at this test's processes.
fn shipped(kind: ProxyKind, shape: Shape, teamgate: SocketAddr, app: SocketAddr) -> String {
    let file = match (kind, shape) {
        (ProxyKind::Nginx, Shape::OwnHost) => "config/nginx.conf",
        (ProxyKind::Nginx, Shape::Path) => "config/nginx-path.conf",
        (ProxyKind::Caddy, Shape::OwnHost) => "config/Caddyfile",
        (ProxyKind::Caddy, Shape::Path) => "config/Caddyfile-path",
    };
    let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match kind {
        ProxyKind::Nginx => {
            // Plain http on the loopback port: no certificates in a test.
            let text: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("ssl_certificate"))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut edits = vec![
                ("listen 443 ssl;", "listen {LISTEN};".to_owned()),
                ("server 127.0.0.1:8080;", format!("server {teamgate};")),
                ("server 127.0.0.1:3000;", format!("server {app};")),
                (
                    "server_name app.example.com;",
                    format!("server_name {APP_HOST};"),
                ),
            ];
            if shape == Shape::OwnHost {
                edits.push((
                    "server_name login.example.com;",
                    format!("server_name {LOGIN_HOST};"),
                ));
                edits.push((
                    "https://login.example.com",
                    format!("http://{LOGIN_HOST}:{{PORT}}"),
                ));
            }
            replace_all(text, file, &edits)
        }
        ProxyKind::Caddy => {
            let mut edits = vec![
                ("127.0.0.1:8080", teamgate.to_string()),
                ("127.0.0.1:3000", app.to_string()),
                (
                    "app.example.com {",
                    format!("http://{APP_HOST}:{{PORT}} {{"),
                ),
            ];
            if shape == Shape::OwnHost {
                edits.push((
                    "login.example.com {",
                    format!("http://{LOGIN_HOST}:{{PORT}} {{"),
                ));
            }
            replace_all(text, file, &edits)
        }
    }
}

/// The proxy of `kind` running the shipped `shape`, the echo app and teamgate behind it (SCIM
/// on for the test provider), and a client that reaches both host names at the proxy.
struct Setup {
    gate: Gate,
    proxy: Running,
    shape: Shape,
    /// `http://app.teamgate.localhost:PORT`
    app: String,
    /// teamgate's public_url.
    public: String,
    scim_token: String,
}

impl Setup {
    async fn start(kind: ProxyKind, shape: Shape) -> Setup {
        let app_addr = serve(Router::new().fallback(echo)).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let teamgate = listener.local_addr().unwrap();
        let config = shipped(kind, shape, teamgate, app_addr);
        let proxy = tokio::task::spawn_blocking(move || match kind {
            ProxyKind::Nginx => Running::Nginx(Nginx::start(&config)),
            ProxyKind::Caddy => Running::Caddy(Caddy::start(&config)),
        })
        .await
        .unwrap();
        let port = proxy.port();
        let app = format!("http://{APP_HOST}:{port}");
        let (public, server_extra) = match shape {
            Shape::OwnHost => (
                format!("http://{LOGIN_HOST}:{port}"),
                format!(
                    "cookie_domain = \"{COOKIE_DOMAIN}\"\nallowed_redirect_origins = [\"{app}\"]\ntrusted_proxies = [\"127.0.0.1\"]"
                ),
            ),
            Shape::Path => (
                format!("{app}/teamgate"),
                "trusted_proxies = [\"127.0.0.1\"]".to_owned(),
            ),
        };
        let gate = spawn_with(
            listener,
            &public,
            &server_extra,
            "scim = { enabled = true }",
            "",
        )
        .await;
        // Registered at the IdP, as an administrator would.
        gate.idp
            .register_redirect_uri(&format!("{public}/callback/{PROVIDER}"));
        let config = gate.state.config.get();
        let token = teamgate::provisioning::tokens::create(
            &gate.state.store,
            &gate.state.clock,
            &config,
            PROVIDER,
            None,
            1,
            None,
        )
        .await
        .unwrap();
        Setup {
            gate,
            proxy,
            shape,
            app,
            public,
            scim_token: token.token.expose().to_owned(),
        }
    }

    /// A browser-like client whose host names all lead to the proxy.
    fn agent(&self) -> Agent {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let at = SocketAddr::from(([127, 0, 0, 1], self.proxy.port()));
        let mut headers = reqwest::header::HeaderMap::new();
        // As a browser: Caddy hands teamgate's redirect to the login page only to clients that
        // accept HTML (others get 401).
        headers.insert(
            "accept",
            reqwest::header::HeaderValue::from_static("text/html,application/json;q=0.9"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .resolve(LOGIN_HOST, at)
            .resolve(APP_HOST, at)
            .build()
            .unwrap();
        Agent { client, jar }
    }

    fn app_url(&self, path: &str) -> String {
        format!("{}{path}", self.app)
    }

    fn teamgate_url(&self, path: &str) -> String {
        format!("{}{path}", self.public)
    }

    /// Stop the proxy off the async runtime (nginx's drop waits for its processes).
    async fn stop(self) {
        let Setup { proxy, gate, .. } = self;
        tokio::task::spawn_blocking(move || drop(proxy))
            .await
            .unwrap();
        drop(gate);
    }
}

fn alice() -> crate::test_idp::LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

/// Identity headers a client may try to forge.
const FORGED: [(&str, &str); 10] = [
    ("X-Teamgate-User", "admin"),
    ("X-Teamgate-Teams", "operators"),
    ("X-Teamgate-Roles", "org/acme=owner"),
    ("X-Teamgate-Assertion", "forged"),
    ("X_Teamgate_Teams", "operators"),
    ("X_Forwarded_User", "bob"),
    ("X-Auth-Request-User", "bob"),
    ("X-Auth-Request-Email", "bob@example.com"),
    ("X-Forwarded-User", "bob"),
    ("Remote-User", "bob"),
];

/// Everything but the browser, through the shipped snippet of `kind` and `shape`.
async fn everything_through(kind: ProxyKind, shape: Shape) {
    let setup = Setup::start(kind, shape).await;
    let agent = setup.agent();
    let context = || setup.proxy.describe();

    // Login round trip: the app sends the browser to teamgate, the IdP, and back to the app.
    setup.gate.idp.set_next_login(alice());
    let first = agent.get(&setup.app_url("/whoami?x=1")).await;
    assert_eq!(first.status(), 302, "{:?}\n{}", first.headers(), context());
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let login = reqwest::Url::parse(&setup.app_url("/"))
        .unwrap()
        .join(&location)
        .unwrap();
    assert_eq!(
        login.as_str().split('?').next().unwrap(),
        setup.teamgate_url("/login"),
        "{location}"
    );
    assert_eq!(
        login
            .query_pairs()
            .find(|(k, _)| k == "rd")
            .map(|(_, v)| v.into_owned()),
        Some(setup.app_url("/whoami?x=1"))
    );
    let (hops, last) = follow(&agent.client, login.as_str()).await;
    assert_eq!(last.status(), 200, "{hops:?}\n{}", context());
    assert_eq!(
        hops.last().unwrap().0.as_str(),
        setup.app_url("/whoami?x=1")
    );
    assert!(
        hops.iter()
            .any(|(u, _)| u.as_str().starts_with(&setup.teamgate_url("/callback/"))),
        "{hops:?}"
    );
    let seen: Value = last.json().await.unwrap();
    let me = setup.gate.user("u-alice").await;
    assert_eq!(
        received(&seen, "x-teamgate-user"),
        Some(me.public_id.clone())
    );
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    // The app can verify the assertion against the JWKS served through the proxy.
    let token = received(&seen, "x-teamgate-assertion").unwrap();
    let jwks = setup.teamgate_url("/.well-known/jwks.json");
    let jwks_client = setup.agent().client;
    let set = jwks_client.get(&jwks).send().await.unwrap();
    assert_eq!(set.status(), 200, "{jwks}");
    let served_jwks = serve_static_json(set.json().await.unwrap()).await;
    verify(&token, &served_jwks, &setup.public, &setup.public)
        .await
        .unwrap();

    // Forged identity headers never reach the app.
    let mut request = agent.client.get(setup.app_url("/whoami"));
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    let seen: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(
        received(&seen, "x-teamgate-user"),
        Some(me.public_id.clone())
    );
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    assert_eq!(
        received(&seen, "x-teamgate-roles").as_deref(),
        // editor on infra implies viewer there (the built-in order).
        Some("org/acme=viewer,org/acme/space/infra=editor,org/acme/space/infra=viewer")
    );
    assert_ne!(
        received(&seen, "x-teamgate-assertion").as_deref(),
        Some("forged")
    );
    for absent in [
        "x_teamgate_teams",
        "x_forwarded_user",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-forwarded-user",
        "remote-user",
    ] {
        let value = received(&seen, absent);
        assert!(
            value.as_deref().is_none_or(str::is_empty),
            "{absent} reached the app: {seen}"
        );
    }

    // A route for a team the user lacks: teamgate's readable 403 page, through the proxy.
    let refused = agent
        .client
        .get(setup.app_url("/ops/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Access refused"), "{page}\n{}", context());
    assert!(page.contains("operators"), "{page}");

    // teamgate's own pages answer through the proxy (not the app's echo).
    for (path, status) in [("/healthz", 200), ("/", 200), ("/admin", 403)] {
        let r = agent.get(&setup.teamgate_url(path)).await;
        assert_eq!(r.status(), status, "{path}\n{}", context());
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("\"app\":true"),
            "{path} reached the app: {body}"
        );
    }
    // The proxy's request id is teamgate's: nginx's $request_id (32 hex digits), Caddy's
    // request UUID.
    let health = agent.get(&setup.teamgate_url("/healthz")).await;
    let rid = health.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let proxy_made = match kind {
        ProxyKind::Nginx => rid.len() == 32 && rid.bytes().all(|b| b.is_ascii_hexdigit()),
        ProxyKind::Caddy => rid.len() == 36 && rid.matches('-').count() == 4,
    };
    assert!(proxy_made, "{rid} is not the proxy's request id");

    // SCIM through the proxy, at the tenant URL the README gives.
    let scim = setup.agent().client;
    let users = setup.teamgate_url(&format!("/scim/v2/{PROVIDER}/Users"));
    let created = scim
        .post(&users)
        .bearer_auth(&setup.scim_token)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "carol@example.com",
                "externalId": "u-carol",
                "active": true,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", context());
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&users), "{location}");
    let read = scim
        .get(&location)
        .bearer_auth(&setup.scim_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["userName"], "carol@example.com");
    let anonymous = scim.get(&users).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // Sign-out through the proxy: the form on teamgate's home page, then the app asks again.
    let home = agent
        .get(&setup.teamgate_url("/"))
        .await
        .text()
        .await
        .unwrap();
    let form = hidden_inputs(&home);
    let out = agent
        .client
        .post(setup.teamgate_url("/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303, "{}", context());
    assert_eq!(agent.get(&setup.app_url("/whoami")).await.status(), 302);
    assert_eq!(setup.shape, shape);
    setup.stop().await;
}

/// Serve `jwks` at a loopback URL of its own, for the verifier (which resolves no names).
async fn serve_static_json(jwks: Value) -> String {
    let address = serve(Router::new().fallback(move || {
        let jwks = jwks.clone();
        async move { axum::Json(jwks) }
    }))
    .await;
    format!("http://{address}/jwks.json")
}

/// The login round trip in Chromium: the app, teamgate's sign-in, the IdP, back to the app.
async fn in_chromium_through(kind: ProxyKind, shape: Shape) {
    let setup = Setup::start(kind, shape).await;
    setup.gate.idp.set_next_login(alice());
    let browser = Browser::start().await;
    browser.goto(&setup.app_url("/whoami?from=chromium")).await;
    let landed = browser
        .wait_for_url(
            |u| u.ends_with("/whoami?from=chromium"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        landed.starts_with(&setup.app),
        "{landed}\n{}",
        setup.proxy.describe()
    );
    browser.wait_for("#echo", Duration::from_secs(10)).await;
    let seen: Value = serde_json::from_str(&browser.text("#echo").await).unwrap();
    let me = setup.gate.user("u-alice").await;
    assert_eq!(received(&seen, "x-teamgate-user"), Some(me.public_id));
    let cookie = browser
        .cookie("teamgate")
        .await
        .expect("the session cookie");
    assert!(cookie.http_only);
    match shape {
        // Shared with the app's host through the parent domain.
        Shape::OwnHost => assert_eq!(
            cookie.domain.as_deref().map(|d| d.trim_start_matches('.')),
            Some(COOKIE_DOMAIN)
        ),
        // Host-only, on the app's host.
        Shape::Path => assert_eq!(cookie.domain.as_deref(), Some(APP_HOST)),
    }

    // A route for a team the user lacks: teamgate's own 403 page, in the browser.
    browser.goto(&setup.app_url("/ops/")).await;
    browser.wait_for("h1", Duration::from_secs(10)).await;
    let source = browser.page_source().await;
    assert!(source.contains("Access refused"), "{source}");
    drop(browser);
    setup.stop().await;
}

#[tokio::test]
async fn behind_nginx_on_its_own_host_teamgate_serves_login_scim_403_pages_and_strips_forged_headers()
 {
    if !e2e::require_nginx("run config/nginx.conf") {
        return;
    }
    everything_through(ProxyKind::Nginx, Shape::OwnHost).await;
}

#[tokio::test]
async fn behind_nginx_under_a_path_teamgate_serves_login_scim_403_pages_and_strips_forged_headers()
{
    if !e2e::require_nginx("run config/nginx-path.conf") {
        return;
    }
    everything_through(ProxyKind::Nginx, Shape::Path).await;
}

#[tokio::test]
async fn behind_caddy_on_its_own_host_teamgate_serves_login_scim_403_pages_and_strips_forged_headers()
 {
    if !e2e::require_caddy("run config/Caddyfile") {
        return;
    }
    everything_through(ProxyKind::Caddy, Shape::OwnHost).await;
}

#[tokio::test]
async fn behind_caddy_under_a_path_teamgate_serves_login_scim_403_pages_and_strips_forged_headers()
{
    if !e2e::require_caddy("run config/Caddyfile-path") {
        return;
    }
    everything_through(ProxyKind::Caddy, Shape::Path).await;
}

#[tokio::test]
async fn in_chromium_behind_nginx_on_its_own_host_login_returns_to_the_app() {
    if !e2e::require_nginx("run config/nginx.conf")
        || !e2e::require_browser("sign in through nginx in Chromium")
    {
        return;
    }
    in_chromium_through(ProxyKind::Nginx, Shape::OwnHost).await;
}

#[tokio::test]
async fn in_chromium_behind_nginx_under_a_path_login_returns_to_the_app() {
    if !e2e::require_nginx("run config/nginx-path.conf")
        || !e2e::require_browser("sign in through nginx in Chromium")
    {
        return;
    }
    in_chromium_through(ProxyKind::Nginx, Shape::Path).await;
}

#[tokio::test]
async fn in_chromium_behind_caddy_on_its_own_host_login_returns_to_the_app() {
    if !e2e::require_caddy("run config/Caddyfile")
        || !e2e::require_browser("sign in through Caddy in Chromium")
    {
        return;
    }
    in_chromium_through(ProxyKind::Caddy, Shape::OwnHost).await;
}

#[tokio::test]
async fn in_chromium_behind_caddy_under_a_path_login_returns_to_the_app() {
    if !e2e::require_caddy("run config/Caddyfile-path")
        || !e2e::require_browser("sign in through Caddy in Chromium")
    {
        return;
    }
    in_chromium_through(ProxyKind::Caddy, Shape::Path).await;
}
