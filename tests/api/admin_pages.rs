//! The `/admin` pages over HTTP: who may see them, what they show, and security case 54
//! (cross-site or token-less POSTs refused with 403; GET never mutates). `/readyz` and
//! `/metrics` too. The same flows in a real browser are in `admin_browser`.

use reqwest::StatusCode;

use crate::admin_support::{
    config_path, demo_config, demo_sign_in, dump, edit, fill, hidden_inputs,
};
use crate::helpers::{TestApp, new_browser, spawn_app};

/// The app with Alice (admin: owner on org/acme) and Bob (editor only) signed in.
async fn app_with_admin_and_user() -> (TestApp, reqwest::Client, reqwest::Client) {
    let app = spawn_app(&demo_config()).await;
    std::fs::write(config_path(&app), fill(&app, &demo_config())).unwrap();
    let alice = new_browser();
    demo_sign_in(&app, &alice, "alice@example.com").await;
    let bob = new_browser();
    demo_sign_in(&app, &bob, "bob@example.com").await;
    (app, alice, bob)
}

async fn page(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn csrf_of(app: &TestApp, client: &reqwest::Client) -> String {
    let (_, html) = page(client, &app.url("/admin")).await;
    hidden_inputs(&html)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("the admin page carries the CSRF token")
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_the_login_and_back() {
    let app = spawn_app(&demo_config()).await;
    let response = app.get("/admin/users?q=a").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/login?rd=%2Fadmin%2Fusers%3Fq%3Da"
    );
}

#[tokio::test]
async fn a_signed_in_user_without_the_admin_role_gets_403_on_every_page() {
    let (app, _, bob) = app_with_admin_and_user().await;
    for path in [
        "/admin",
        "/admin/users",
        "/admin/teams",
        "/admin/mappings",
        "/admin/scim",
        "/admin/audit",
        "/admin/plan",
    ] {
        let (status, html) = page(&bob, &app.url(path)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("Administrators only"), "{path}: {html}");
        assert!(!html.contains("alice@example.com"), "{path} leaks data");
    }
}

#[tokio::test]
async fn an_admin_sees_users_with_sources_teams_mappings_audit_and_plan() {
    let (app, alice, _) = app_with_admin_and_user().await;
    let (status, html) = page(&alice, &app.url("/admin/users")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-email=\"alice@example.com\"")
            && html.contains("data-email=\"bob@example.com\""),
        "{html}"
    );
    assert!(
        html.contains(r#"data-team="infra-editors" data-source="claims""#),
        "{html}"
    );

    let (_, html) = page(&alice, &app.url("/admin/users?q=bob")).await;
    assert!(
        html.contains("bob@example.com") && !html.contains("data-email=\"alice@example.com\""),
        "{html}"
    );

    let (_, html) = page(&alice, &app.url("/admin/teams")).await;
    assert!(
        html.contains("id=\"team-platform-admins\"") && html.contains("exception-reviewer"),
        "{html}"
    );
    assert!(
        html.contains("carol@example.com"),
        "config members are listed: {html}"
    );

    let (_, html) = page(&alice, &app.url("/admin/mappings")).await;
    assert!(
        html.contains("00000000-0000-0000-0000-00000000c003"),
        "{html}"
    );

    let (_, html) = page(&alice, &app.url("/admin/audit?user=bob%40example.com")).await;
    assert!(
        html.contains("membership.add") && html.contains("infra-editors"),
        "{html}"
    );
    assert!(
        !html.contains("platform-admins</td>"),
        "filtered to Bob: {html}"
    );
    let (_, html) = page(&alice, &app.url("/admin/audit?since=yesterday-ish")).await;
    assert!(html.contains("id=\"filter-problems\""), "{html}");

    let (_, html) = page(&alice, &app.url("/admin/scim")).await;
    assert!(html.contains("SCIM provisioning"), "{html}");

    let (_, html) = page(&alice, &app.url("/admin/plan")).await;
    assert!(html.contains("id=\"no-changes\""), "{html}");
    // The file on disk changes: the plan page shows it before anything is applied.
    let renamed = edit(
        &demo_config(),
        r#"name = "Security Viewers""#,
        r#"name = "Security Readers""#,
    );
    std::fs::write(config_path(&app), fill(&app, &renamed)).unwrap();
    let (_, html) = page(&alice, &app.url("/admin/plan")).await;
    assert!(
        html.contains("renamed \"Security Viewers\" &rarr; \"Security Readers\""),
        "{html}"
    );

    // One user explained, with the group that granted each team.
    let public_id: String = app
        .state
        .store
        .read(|conn| {
            Ok::<_, teamgate::store::StoreError>(
                conn.find_users("bob@example.com")?.remove(0).public_id,
            )
        })
        .await
        .unwrap();
    let (status, html) = page(&alice, &app.url(&format!("/admin/users/{public_id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"data-team="infra-editors" data-source="claims""#),
        "{html}"
    );
    assert!(
        html.contains("00000000-0000-0000-0000-00000000c003"),
        "{html}"
    );
}

#[tokio::test]
async fn case_54_admin_posts_without_the_token_or_from_another_site_are_refused_and_get_never_mutates()
 {
    let (app, alice, bob) = app_with_admin_and_user().await;
    let renamed = edit(
        &demo_config(),
        r#"name = "Security Viewers""#,
        r#"name = "Security Readers""#,
    );
    std::fs::write(config_path(&app), fill(&app, &renamed)).unwrap();
    let token = csrf_of(&app, &alice).await;
    let before = dump(&app).await;
    let reload = app.url("/admin/reload");

    let no_token = alice.post(&reload).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong_token = alice
        .post(&reload)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let cross_site = alice
        .post(&reload)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let foreign_origin = alice
        .post(&reload)
        .header("origin", "https://evil.example")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_origin.status(), StatusCode::FORBIDDEN);
    let bobs = bob
        .post(&reload)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bobs.status(),
        StatusCode::FORBIDDEN,
        "a non-admin cannot reload"
    );
    let get = alice.get(&reload).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        dump(&app).await,
        before,
        "nothing refused may change the database"
    );

    // The real form: same origin, the session's token.
    let ok = alice
        .post(&reload)
        .header("origin", app.address.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/admin?reload=applied");
    let config = app.state.config.get();
    assert_eq!(
        config
            .team(&teamgate::domain::TeamId::parse("security-viewers").unwrap())
            .unwrap()
            .name,
        "Security Readers"
    );
}

#[tokio::test]
async fn an_admin_can_sign_a_user_out_everywhere_and_it_is_audited() {
    let (app, alice, bob) = app_with_admin_and_user().await;
    assert_eq!(
        bob.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let public_id: String = app
        .state
        .store
        .read(|conn| {
            Ok::<_, teamgate::store::StoreError>(
                conn.find_users("bob@example.com")?.remove(0).public_id,
            )
        })
        .await
        .unwrap();
    let token = csrf_of(&app, &alice).await;
    let url = app.url(&format!("/admin/users/{public_id}/sign-out"));
    let refused = alice
        .post(&url)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        bob.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let done = alice
        .post(&url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        bob.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, html) = page(&alice, &app.url("/admin/audit?trigger=admin")).await;
    assert!(
        html.contains("user.sign_out_everywhere") && html.contains("by alice@example.com"),
        "{html}"
    );
}

#[tokio::test]
async fn readyz_reports_the_database_and_each_provider_and_metrics_use_the_text_format() {
    // /metrics is served only on its own listener (tests/api/hardening_web.rs).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = crate::admin_support::edit(
        &demo_config(),
        "[server]",
        &format!("[server]\nmetrics_listen = \"127.0.0.1:{port}\""),
    );
    let app = spawn_app(&config).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["providers"][0]["id"], "demo");
    assert_eq!(body["providers"][0]["discovery"], "ok");
    let written = crate::helpers::sql_one(
        &app.state,
        "SELECT value FROM settings WHERE key = 'admin.readyz'",
        &[],
    )
    .await;
    assert!(written.is_some(), "readyz writes through the writer");

    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE teamgate_http_request_duration_seconds histogram"),
        "{text}"
    );
    // The label order within the braces is the encoder's (prometheus-client puts `le` first).
    assert!(
        text.lines().any(
            |l| l.starts_with("teamgate_http_request_duration_seconds_bucket{")
                && l.contains("route=\"readyz\"")
                && l.contains("le=\"+Inf\"")
        ),
        "{text}"
    );
    assert!(
        text.contains("teamgate_http_requests_total{route=\"readyz\",status=\"2xx\"}"),
        "{text}"
    );
}

/// With `server.metrics_listen`, `/metrics` is served on its own address (and never on the
/// login site: 404 there, with or without metrics_listen).
#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = crate::admin_support::edit(
        &demo_config(),
        "[server]",
        &format!("[server]\nmetrics_listen = \"127.0.0.1:{port}\""),
    );
    let app = spawn_app(&config).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);

    let response = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    // The main listener's requests are counted; the metrics listener serves nothing else.
    assert!(
        text.contains("teamgate_http_requests_total{route=\"healthz\",status=\"2xx\"}"),
        "{text}"
    );
    let other = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
