//! Forward-auth end to end: a real nginx running `config/nginx-path.conf` (only its ports and
//! host name changed; teamgate under `/teamgate/` of the app's host) in front of a tiny
//! upstream app that echoes the headers it receives, with teamgate's pages served through the
//! same nginx and the test IdP signing users in. `proxy_e2e` runs every shipped snippet, nginx
//! and Caddy, in both deployment shapes. Driven once by a plain
//! HTTP client and once by headless Chromium. Skipped with a printed reason when nginx (or
//! Chromium) is not installed, unless `TEAMGATE_REQUIRE_E2E=1`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::forward_auth_support::{Agent, Gate, claims_of, spawn_on, tamper, user, verify};
use crate::helpers::follow;
use crate::support::browser::Browser;
use crate::support::echo::{echo, received};
use crate::support::nginx::Nginx;
use crate::support::{e2e, serve};

/// The example nginx config with its addresses pointed at this test's processes (plain http
/// on 127.0.0.1, any host name).
fn example_config(teamgate: SocketAddr, app: SocketAddr) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/nginx-path.conf"
    ))
    .unwrap();
    let mut config: String = example
        .lines()
        .filter(|l| !l.trim_start().starts_with("ssl_certificate"))
        .map(|l| format!("{l}\n"))
        .collect();
    for (from, to) in [
        ("listen 443 ssl;", "listen {LISTEN};".to_owned()),
        ("server_name app.example.com;", "server_name _;".to_owned()),
        ("server 127.0.0.1:8080;", format!("server {teamgate};")),
        ("server 127.0.0.1:3000;", format!("server {app};")),
    ] {
        assert!(
            config.contains(from),
            "config/nginx-path.conf no longer has `{from}`"
        );
        config = config.replace(from, &to);
    }
    config
}

/// nginx running the example, the echo app behind it, teamgate behind it too, with
/// `public_url` = nginx's `/teamgate`.
async fn proxied() -> (Gate, Nginx) {
    let app = serve(Router::new().fallback(echo)).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let teamgate = listener.local_addr().unwrap();
    let config = example_config(teamgate, app);
    let nginx = tokio::task::spawn_blocking(move || Nginx::start(&config))
        .await
        .unwrap();
    let gate = spawn_on(listener, &public(&nginx), "", "").await;
    (gate, nginx)
}

/// teamgate's public_url behind `nginx`.
fn public(nginx: &Nginx) -> String {
    nginx.url_for("/teamgate")
}

/// Stop nginx off the async runtime (its drop waits for the processes).
async fn stop(nginx: Nginx) {
    tokio::task::spawn_blocking(move || drop(nginx))
        .await
        .unwrap();
}

fn alice() -> crate::test_idp::LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

const FORGED: [(&str, &str); 9] = [
    ("X-Teamgate-User", "admin"),
    ("X-Teamgate-Email", "ceo@example.com"),
    ("X-Teamgate-Email-Verified", "forged-true"),
    ("X-Teamgate-Teams", "operators"),
    ("X-Teamgate-Roles", "org/acme=owner"),
    ("X-Teamgate-Assertion", "forged"),
    ("X_Teamgate_Teams", "operators"),
    ("X-Auth-Request-User", "bob"),
    ("X-Forwarded-User", "bob"),
];

async fn get_forged(agent: &Agent, url: &str) -> reqwest::Response {
    let mut request = agent.client.get(url);
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn behind_nginx_login_returns_to_the_app_with_verified_identity_headers() {
    if !e2e::require_nginx("run forward-auth behind a real nginx") {
        return;
    }
    let (gate, nginx) = proxied().await;
    let agent = Agent::new();
    gate.idp.set_next_login(alice());

    let first = agent.get(&nginx.url_for("/whoami?x=1")).await;
    assert_eq!(first.status(), 302, "{}", nginx.config());
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        nginx.url_for(&format!("/teamgate/login?rd={}/whoami?x=1", nginx.url()))
    );

    let (hops, last) = follow(&agent.client, &location).await;
    assert_eq!(last.status(), 200, "{hops:?}");
    assert_eq!(
        hops.last().unwrap().0.as_str(),
        nginx.url_for("/whoami?x=1")
    );
    assert!(
        hops.iter()
            .any(|(url, _)| url.as_str().starts_with(&gate.idp.base_url())),
        "{hops:?}"
    );
    let seen: Value = last.json().await.unwrap();
    assert_eq!(seen["path"], "/whoami?x=1");
    let me = gate.user("u-alice").await;
    assert_eq!(
        received(&seen, "x-teamgate-user"),
        Some(me.public_id.clone())
    );
    assert_eq!(
        received(&seen, "x-teamgate-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        received(&seen, "x-teamgate-email-verified").as_deref(),
        Some("true")
    );
    assert_eq!(
        received(&seen, "x-teamgate-name").as_deref(),
        Some("alice Example")
    );
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    assert_eq!(
        received(&seen, "x-teamgate-roles").as_deref(),
        Some("org/acme=viewer,org/acme/space/infra=editor,org/acme/space/infra=viewer")
    );

    // The app verifies the assertion on its own, against the JWKS served through nginx.
    let token = received(&seen, "x-teamgate-assertion").unwrap();
    let jwks = nginx.url_for("/teamgate/.well-known/jwks.json");
    let claims = verify(&token, &jwks, &public(&nginx), &public(&nginx))
        .await
        .unwrap();
    assert_eq!(claims["sub"], json!(me.public_id));
    assert_eq!(claims["teams"], json!(["engineers", "everyone"]));
    assert!(
        verify(&tamper(&token), &jwks, &public(&nginx), &public(&nginx))
            .await
            .is_err()
    );
    stop(nginx).await;
}

#[tokio::test]
async fn behind_nginx_identity_headers_forged_by_the_client_never_reach_the_app() {
    if !e2e::require_nginx("run forward-auth behind a real nginx") {
        return;
    }
    let (gate, nginx) = proxied().await;
    // Not signed in: the forged headers get the client nowhere.
    let anonymous = get_forged(&Agent::new(), &nginx.url_for("/whoami")).await;
    assert_eq!(anonymous.status(), 302);

    let agent = Agent::new();
    gate.idp.set_next_login(alice());
    let (_, last) = follow(&agent.client, &nginx.url_for("/whoami")).await;
    assert_eq!(last.status(), 200);
    let seen: Value = get_forged(&agent, &nginx.url_for("/whoami"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    assert_eq!(
        received(&seen, "x-teamgate-user"),
        Some(gate.user("u-alice").await.public_id)
    );
    assert_eq!(
        received(&seen, "x-teamgate-roles").as_deref(),
        Some("org/acme=viewer,org/acme/space/infra=editor,org/acme/space/infra=viewer")
    );
    assert_ne!(
        received(&seen, "x-teamgate-assertion").as_deref(),
        Some("forged")
    );
    assert_eq!(
        received(&seen, "x-teamgate-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        received(&seen, "x-teamgate-email-verified").as_deref(),
        Some("true")
    );
    for absent in [
        "x_teamgate_teams",
        "x-auth-request-user",
        "x-forwarded-user",
    ] {
        assert_eq!(
            received(&seen, absent),
            None,
            "{absent} reached the app: {seen}"
        );
    }
    stop(nginx).await;
}

#[tokio::test]
async fn behind_nginx_a_route_for_a_team_the_user_lacks_gives_403_whatever_the_query() {
    if !e2e::require_nginx("run forward-auth behind a real nginx") {
        return;
    }
    let (gate, nginx) = proxied().await;
    let agent = Agent::new();
    gate.idp.set_next_login(alice());
    follow(&agent.client, &nginx.url_for("/whoami")).await;
    for path in [
        "/ops/",
        "/ops/?team=engineers",
        "/ops/x?aud=x&team=engineers",
    ] {
        let r = agent.get(&nginx.url_for(path)).await;
        assert_eq!(r.status(), 403, "{path}");
    }
    // A member of the team passes.
    let bob = Agent::new();
    gate.idp
        .set_next_login(user("u-bob", "bob@example.com", &["g-ops"]));
    let (_, last) = follow(&bob.client, &nginx.url_for("/ops/")).await;
    assert_eq!(last.status(), 200);
    let seen: Value = last.json().await.unwrap();
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("everyone,operators")
    );
    stop(nginx).await;
}

#[tokio::test]
async fn behind_nginx_a_deprovisioned_user_is_refused_on_the_next_request() {
    if !e2e::require_nginx("run forward-auth behind a real nginx") {
        return;
    }
    let (gate, nginx) = proxied().await;
    let agent = Agent::new();
    gate.idp.set_next_login(alice());
    follow(&agent.client, &nginx.url_for("/whoami")).await;
    // Twice, so the second is served from the assertion cache.
    for _ in 0..2 {
        assert_eq!(agent.get(&nginx.url_for("/whoami")).await.status(), 200);
    }
    gate.revoke("u-alice").await;
    let r = agent.get(&nginx.url_for("/whoami")).await;
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/login?rd=")
    );
    stop(nginx).await;
}

#[tokio::test]
async fn in_chromium_behind_nginx_login_reaches_the_app_and_deprovisioning_ends_it() {
    if !e2e::require_nginx("run forward-auth behind a real nginx")
        || !e2e::require_browser("drive forward-auth in Chromium")
    {
        return;
    }
    let (gate, nginx) = proxied().await;
    gate.idp.set_next_login(alice());
    let browser = Browser::start().await;
    browser.goto(&nginx.url_for("/whoami?from=chromium")).await;
    let landed = browser
        .wait_for_url(
            |u| u.ends_with("/whoami?from=chromium"),
            Duration::from_secs(20),
        )
        .await;
    assert!(landed.starts_with(&nginx.url()), "{landed}");
    browser.wait_for("#echo", Duration::from_secs(10)).await;
    let seen: Value = serde_json::from_str(&browser.text("#echo").await).unwrap();
    let me = gate.user("u-alice").await;
    assert_eq!(received(&seen, "x-teamgate-user"), Some(me.public_id));
    assert_eq!(
        received(&seen, "x-teamgate-teams").as_deref(),
        Some("engineers,everyone")
    );
    let token = received(&seen, "x-teamgate-assertion").unwrap();
    assert_eq!(claims_of(&token)["email"], "alice@example.com");
    let cookie = browser
        .cookie("teamgate")
        .await
        .expect("the session cookie");
    assert!(cookie.http_only);
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"));

    // A team route the user lacks: teamgate's readable 403 page, through nginx.
    browser.goto(&nginx.url_for("/ops/")).await;
    assert!(
        browser.title().await.contains("Access refused"),
        "{}",
        browser.page_source().await
    );

    // Deprovisioned: the next page load goes back to login, where the IdP now refuses.
    gate.revoke("u-alice").await;
    gate.idp
        .with_knobs(|k| k.authorize_error = Some("access_denied".into()));
    browser.goto(&nginx.url_for("/whoami?after=revoke")).await;
    let url = browser
        .wait_for_url(
            |u| u.contains("/callback/") || u.contains("/login"),
            Duration::from_secs(20),
        )
        .await;
    assert!(
        !browser.exists("#echo").await,
        "the app was reached at {url}"
    );
    let source = browser.page_source().await;
    assert!(!source.contains("x-teamgate-user"), "{source}");
    drop(browser);
    stop(nginx).await;
}
