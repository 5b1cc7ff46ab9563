//! The hardening round (docs/security-cases.md, section I), what applications and browsers
//! see: emails only when verified (I1), `/metrics` only on its own listener and SCIM series
//! only for authenticated providers (I8), the security headers of every page (I9), log lines
//! that cannot be forged (I10), SCIM authenticating before anything else (I11).

use reqwest::StatusCode;
use serde_json::json;
use tracing::Level;

use crate::forward_auth_support::claims_of;
use crate::helpers::{demo_config, demo_sign_in_from, follow, new_browser, spawn_app};
use crate::oidc_common::*;
use crate::scim_support::ScimRig;
use crate::test_idp::{EntraUser, TestIdpOptions};

// ---- I1. Unverified emails ----

#[tokio::test]
async fn an_unverified_email_never_reaches_apps_through_headers_the_assertion_or_me() {
    let rig = Rig::start("entra", TestIdpOptions::entra(TENANT_A), "").await;
    // An Entra user whose email Entra does not vouch for (no `xms_edov`, IdP quirk E10): a
    // guest or a tenant where anyone may set any email.
    let mut mallory = EntraUser::new(TENANT_A, "mallory@a.example.com");
    mallory.email = Some("ceo@example.com".into());
    rig.idp.set_next_login(mallory.login_spec());
    rig.login().await.assert_signed_in();
    let r = rig
        .app
        .browser
        .get(rig.app.url("/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
    assert!(
        !h("x-teamgate-user").is_empty(),
        "the identity is the user id"
    );
    assert_eq!(h("x-teamgate-email"), "", "an unverified email is not sent");
    assert_eq!(h("x-teamgate-email-verified"), "false");
    let claims = claims_of(&h("x-teamgate-assertion"));
    assert!(claims.get("email").is_none(), "{claims}");
    assert_eq!(claims["email_verified"], json!(false));
    let (status, me_json) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, 200);
    assert!(me_json["email"].is_null(), "{me_json}");
    assert_eq!(me_json["email_verified"], json!(false));

    // The same tenant's verified email (xms_edov) is sent, and said to be verified.
    let mut alice = EntraUser::new(TENANT_A, "alice@a.example.com");
    alice.email = Some("alice@a.example.com".into());
    rig.idp
        .set_next_login(alice.login_spec().claim("xms_edov", json!(true)));
    let b = browser();
    login(&rig.app, &b, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let r = b.get(rig.app.url("/auth")).send().await.unwrap();
    assert_eq!(r.headers()["x-teamgate-email"], "alice@a.example.com");
    assert_eq!(r.headers()["x-teamgate-email-verified"], "true");
    let claims = claims_of(r.headers()["x-teamgate-assertion"].to_str().unwrap());
    assert_eq!(claims["email"], "alice@a.example.com");
    assert_eq!(claims["email_verified"], json!(true));
    let (_, me_json) = me(&rig.app, &b).await;
    assert_eq!(me_json["email"], "alice@a.example.com");
    assert_eq!(me_json["email_verified"], json!(true));
}

#[tokio::test]
async fn the_email_verified_header_name_is_configurable_like_the_others() {
    let rig = Rig::start_with_teams(
        "oidc",
        TestIdpOptions::default(),
        "",
        "[forward_auth.headers]\nemail_verified = \"Remote-Email-Verified\"\n",
    )
    .await;
    rig.login().await.assert_signed_in();
    let r = rig
        .app
        .browser
        .get(rig.app.url("/auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["remote-email-verified"], "true");
    assert!(r.headers().get("x-teamgate-email-verified").is_none());
}

// ---- I8. Metrics ----

#[tokio::test]
async fn metrics_are_not_served_on_the_login_listener_even_without_metrics_listen() {
    let app = spawn_app(&demo_config()).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("teamgate_build_info"));
}

/// A free loopback port for a second listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_configured_metrics_token_is_required_on_the_metrics_listener() {
    let port = free_port();
    let token = "metrics-token-0123456789abcdef";
    let config = demo_config().replace(
        "[server]",
        &format!(
            "[server]\nmetrics_listen = \"127.0.0.1:{port}\"\nmetrics_token_file = \"{}\"",
            secret_file(token)
        ),
    );
    let app = spawn_app(&config).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::Client::new();
    let bare = client.get(&url).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    assert!(
        bare.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = client.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(right.headers()["x-content-type-options"], "nosniff");
    assert!(right.text().await.unwrap().contains("teamgate_build_info"));
}

#[tokio::test]
async fn scim_metrics_label_only_providers_whose_token_authenticated_the_request() {
    let rig = ScimRig::start().await;
    let unauthenticated = teamgate::metrics::scim_requests("unauthenticated", 401);
    let junk = 300;
    for i in 0..junk {
        let r = rig
            .client
            .get(rig.app.url(&format!("/scim/v2/junk-{i}/Users")))
            .bearer_auth("made-up")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // A configured provider without its token is not its series either.
    let r = rig
        .client
        .get(rig.app.url("/scim/v2/entra/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let entra_ok = teamgate::metrics::scim_requests("entra", 200);
    rig.get("entra", "/Users").await.assert_status(200);
    assert!(teamgate::metrics::scim_requests("entra", 200) > entra_ok);
    assert!(
        teamgate::metrics::scim_requests("unauthenticated", 401) > unauthenticated + junk,
        "junk requests are counted under `unauthenticated`"
    );
    let text = teamgate::metrics::render();
    assert!(
        !text.contains("provider=\"junk-"),
        "a junk path made a series"
    );
    assert!(
        !teamgate::metrics::scim_activity()
            .keys()
            .any(|p| p.starts_with("junk-") || p == "unauthenticated"),
        "the admin page's activity lists only providers"
    );
}

// ---- I9. Security headers ----

/// The headers every HTML page must carry.
fn assert_page_headers(what: &str, r: &reqwest::Response) {
    let h = |name: &str| {
        r.headers()
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert!(h("content-type").starts_with("text/html"), "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    let csp = h("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {csp}");
    }
}

/// The page needs nothing the policy forbids: no inline style, script or event handler.
fn assert_no_inline(what: &str, html: &str) {
    for inline in ["<style", "style=\"", "<script", "javascript:"] {
        assert!(!html.contains(inline), "{what} carries {inline:?}: {html}");
    }
    let handler = html.match_indices(" on").any(|(i, _)| {
        let name: String = html[i + 3..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        name.len() >= 2 && html[i + 3 + name.len()..].starts_with('=')
    });
    assert!(!handler, "{what} carries an event handler: {html}");
}

#[tokio::test]
async fn every_html_page_carries_the_security_headers_and_every_response_nosniff() {
    // The demo config and a second provider, so that /login shows the chooser.
    let idp = crate::test_idp::TestIdp::start().await;
    let config = format!(
        "{}\n{}",
        demo_config(),
        provider_block("corp", "oidc", &idp, &secret_file("s"), "")
    );
    let app = spawn_app(&config).await;
    let b = new_browser();
    let mut pages = Vec::new();
    pages.push(("home", b.get(app.url("/")).send().await.unwrap()));
    pages.push(("chooser", b.get(app.url("/login")).send().await.unwrap()));
    pages.push((
        "error page",
        b.get(app.url("/login?provider=nope")).send().await.unwrap(),
    ));
    let (_, picker) = follow(&b, &app.url("/login?provider=demo")).await;
    pages.push(("demo IdP picker", picker));
    let admin = new_browser();
    demo_sign_in_from(&app, &admin, "alice@example.com", "/login?provider=demo").await;
    pages.push((
        "admin page",
        admin.get(app.url("/admin")).send().await.unwrap(),
    ));
    pages.push((
        "home, signed in",
        admin.get(app.url("/")).send().await.unwrap(),
    ));
    for (what, r) in pages {
        assert!(
            r.status().is_success() || r.status() == 404,
            "{what}: {}",
            r.status()
        );
        assert_page_headers(what, &r);
        let html = r.text().await.unwrap();
        assert!(html.contains("href=\"/teamgate.css\""), "{what}");
        assert_no_inline(what, &html);
    }
    // Responses that are not pages: nosniff, and no page policy needed.
    for path in [
        "/healthz",
        "/api/v1/me",
        "/.well-known/jwks.json",
        "/no/such/path",
    ] {
        let r = b.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let css = b.get(app.url("/teamgate.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains("#admin-nav"));
}

// ---- I10. Log forging ----

#[tokio::test]
async fn an_idp_error_description_with_a_line_break_does_not_start_a_log_line() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let callback = rig.callback_url(&rig.app.browser).await;
    // The attacker's callback: the login's own state and iss, an error instead of the code.
    let mut url = reqwest::Url::parse(&callback).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "code")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("error", "access_denied")
        .append_pair(
            "error_description",
            "denied\r\nFAKE LINE 2026-12-01T00:00:00Z  INFO teamgate: admin signed in\u{1b}[2K",
        );
    let out = rig.hit(url.as_str()).await;
    assert!(out.status.is_client_error(), "{}", out.status);
    let text = logs.text();
    assert!(text.contains("access_denied"), "the capture works: {text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("FAKE LINE"),
            "a forged line in the log:\n{text}"
        );
        assert!(!line.contains('\u{1b}'), "an escape sequence in the log");
    }
    assert!(
        text.contains("denied\\r\\nFAKE LINE"),
        "the value is logged, escaped:\n{text}"
    );
}

// ---- I11. SCIM authenticates first ----

#[tokio::test]
async fn an_unknown_provider_and_a_provider_with_scim_disabled_answer_401_like_a_bad_token() {
    let rig = ScimRig::start().await;
    let nosync_token = crate::scim_support::token(&rig.app, "nosync").await;
    let bad = rig
        .client
        .get(rig.app.url("/scim/v2/entra/Users"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    let bad_status = bad.status();
    let bad_challenge = bad.headers()["www-authenticate"].clone();
    let bad_body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(bad_status, 401);
    for (what, provider, token) in [
        ("unknown provider", "nonexistent", "not-a-token"),
        (
            "unknown provider, a real token",
            "nonexistent",
            rig.entra_token.as_str(),
        ),
        (
            "SCIM disabled, its own token",
            "nosync",
            nosync_token.as_str(),
        ),
        ("SCIM disabled, no valid token", "nosync", "not-a-token"),
    ] {
        let r = rig
            .client
            .get(rig.app.url(&format!("/scim/v2/{provider}/Users")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), bad_status, "{what}");
        assert_eq!(r.headers()["www-authenticate"], bad_challenge, "{what}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["detail"], bad_body["detail"], "{what}: {body}");
    }
    // Without any token: 401 too, before anything about the provider is said.
    for provider in ["nonexistent", "nosync"] {
        let r = rig
            .client
            .get(rig.app.url(&format!("/scim/v2/{provider}/Users")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{provider}");
    }
}
