//! The admin pages in headless Chromium (skipped with a printed reason when it is not
//! installed, unless TEAMGATE_REQUIRE_E2E=1): a non-admin gets the 403 page, an admin sees the
//! user table and the audit log, and forms posted without the CSRF token or from another site
//! are refused (security case 54) while the real button works.

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;

use crate::admin_support::{config_path, demo_config, fill};
use crate::helpers::spawn_app;
use crate::support::browser::Browser;
use crate::support::e2e::require_browser;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_54_in_a_browser_a_non_admin_gets_403_an_admin_sees_users_and_audit_and_forged_posts_are_refused()
 {
    if !require_browser("drive the admin pages in a real browser") {
        return;
    }
    let app = spawn_app(&demo_config()).await;
    std::fs::write(config_path(&app), fill(&app, &demo_config())).unwrap();
    let browser = Browser::start().await;

    // Bob (an editor, not an owner) signs in on the way to /admin and is refused.
    browser.goto(&app.url("/admin")).await;
    browser.wait_for("#demo-warning", WAIT).await;
    assert_eq!(
        browser.attribute("#pick-1", "data-email").await.as_deref(),
        Some("bob@example.com")
    );
    browser.click("#pick-1").await;
    browser.wait_for("#reason", WAIT).await;
    assert_eq!(browser.current_url().await, app.url("/admin"));
    assert!(
        browser.title().await.starts_with("Administrators only"),
        "{}",
        browser.title().await
    );

    // Alice (owner on org/acme) sees the user table and the audit log.
    browser.delete_cookies().await;
    browser.goto(&app.url("/admin/users")).await;
    browser.wait_for("#demo-warning", WAIT).await;
    browser.click("#pick-0").await;
    browser.wait_for("#users", WAIT).await;
    let users = browser.text("#users").await;
    assert!(
        users.contains("alice@example.com") && users.contains("bob@example.com"),
        "{users}"
    );
    assert!(
        users.contains("infra-editors (claims, 00000000-0000-0000-0000-00000000c003)"),
        "{users}"
    );
    browser.goto(&app.url("/admin/audit")).await;
    browser.wait_for("#audit", WAIT).await;
    let audit = browser.text("#audit").await;
    assert!(
        audit.contains("membership.add") && audit.contains("platform-admins"),
        "{audit}"
    );

    // The reload form with its token taken out: refused.
    browser.goto(&app.url("/admin")).await;
    browser.wait_for("#reload-form", WAIT).await;
    let token = browser
        .attribute("#reload-form input[name=csrf]", "value")
        .await
        .unwrap();
    browser
        .execute(
            "const f = document.getElementById('reload-form'); f.querySelector('[name=csrf]').remove(); f.submit();",
            vec![],
        )
        .await;
    browser.wait_for("#reason", WAIT).await;
    assert!(
        browser.title().await.starts_with("Request refused"),
        "{}",
        browser.title().await
    );

    // Another site's form, even carrying the real token: refused.
    let target = app.url("/admin/reload");
    let evil = crate::support::serve(Router::new().route(
        "/",
        get(move || {
            let page = format!(
                r#"<!doctype html><form method="post" action="{target}"><input type="hidden" name="csrf" value="{token}"><button id="go">Win a prize</button></form>"#
            );
            async move { Html(page) }
        }),
    ))
    .await;
    browser
        .goto(&format!("http://localhost:{}/", evil.port()))
        .await;
    browser.wait_for("#go", WAIT).await;
    browser.click("#go").await;
    browser.wait_for("#reason", WAIT).await;
    assert_eq!(browser.current_url().await, app.url("/admin/reload"));
    assert!(
        browser.title().await.starts_with("Request refused"),
        "{}",
        browser.title().await
    );

    // The real button, on teamgate's own page, works.
    browser.goto(&app.url("/admin")).await;
    browser.wait_for("#reload", WAIT).await;
    browser.click("#reload").await;
    browser.wait_for("#flash", WAIT).await;
    assert_eq!(
        browser.current_url().await,
        app.url("/admin?reload=applied")
    );
    browser.quit().await;
}
