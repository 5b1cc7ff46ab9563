//! Issue 2's real-browser test: headless Chromium signs in at the built-in demo IdP through
//! teamgate's own pages, and the home page shows the teams, roles and granting groups.

use std::time::Duration;

use crate::helpers::{demo_config, spawn_app};
use crate::support::browser::Browser;
use crate::support::e2e::require_browser;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_at_the_demo_idp_and_sees_its_teams_and_roles() {
    if !require_browser("drive the demo login in a real browser") {
        return;
    }
    let app = spawn_app(&demo_config()).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/")).await;
    browser.wait_for("#sign-in", WAIT).await;
    browser.click("#sign-in").await;
    browser.wait_for("#demo-warning", WAIT).await;
    // Alice is the first demo user.
    assert_eq!(
        browser.attribute("#pick-0", "value").await.as_deref(),
        Some("alice@example.com")
    );
    browser.click("#pick-0").await;
    browser.wait_for("#teams", WAIT).await;

    let url = browser.current_url().await;
    assert_eq!(
        url,
        app.url("/"),
        "back on teamgate's home page, no code in the URL"
    );
    assert_eq!(browser.text("#user-name").await, "Alice Admin");
    let teams = browser.text("#teams").await;
    assert!(
        teams.contains("Platform Admins") && teams.contains("Security Viewers"),
        "{teams}"
    );
    assert!(
        teams.contains("00000000-0000-0000-0000-00000000a001"),
        "the granting group is shown: {teams}"
    );
    assert!(!teams.contains("Everyone"), "{teams}");
    let roles = browser.text("#roles").await;
    assert!(
        roles.contains("org/acme") && roles.contains("owner"),
        "{roles}"
    );

    // For a human look: TEAMGATE_SCREENSHOT_DIR=/tmp/shots cargo test browser_login
    if let Ok(dir) = std::env::var("TEAMGATE_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        browser.screenshot(format!("{dir}/home.png")).await;
    }

    // The session cookie as the browser holds it (security cases 46-47 for plain-http loopback).
    let cookie = browser.cookie("teamgate").await.expect("session cookie");
    assert!(cookie.http_only);
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"));
    assert_eq!(cookie.expiry, None, "a browser-session cookie, no Max-Age");

    browser.click("#logout").await;
    browser.wait_for("#sign-in", WAIT).await;
    browser.quit().await;
}
