//! Sessions an administrator can see and end: the admin user page lists each of a user's
//! sessions (sign-in time, last seen, client address, browser) under a public handle, and ends
//! one or all of them through CSRF-protected forms; `teamgate sessions list|revoke` does the
//! same from the command line (the real binary, against a running server's database). No page
//! or command shows a session id or its stored hash.

use std::process::Command;

use reqwest::StatusCode;

use crate::admin_support::{config_path, demo_config, demo_sign_in, fill, hidden_inputs};
use crate::helpers::{TestApp, spawn_app, sql_rows};

/// A browser-like client with its own User-Agent.
fn browser_with_agent(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap()
}

async fn status_of(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.unwrap().status()
}

async fn page(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn public_id(app: &TestApp, email: &str) -> String {
    let email = email.to_owned();
    app.state
        .store
        .read(move |tx| {
            Ok::<_, teamgate::store::StoreError>(tx.find_users(&email)?.remove(0).public_id)
        })
        .await
        .unwrap()
}

/// The handles the admin page lists, in order (`data-handle="..."`).
fn handles(html: &str) -> Vec<String> {
    html.split("data-handle=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The handle of the row whose browser contains `agent`.
fn handle_of(html: &str, agent: &str) -> String {
    html.split("<tr class=\"session\"")
        .skip(1)
        .find(|row| row.split("</tr>").next().unwrap().contains(agent))
        .map(|row| handles(&format!("<tr{row}"))[0].clone())
        .unwrap_or_else(|| panic!("no session row for {agent}: {html}"))
}

/// `(session id hash, data)` of every stored session.
async fn stored_sessions(app: &TestApp) -> Vec<(String, String)> {
    sql_rows(&app.state, "SELECT id, data FROM sessions", &[])
        .await
        .into_iter()
        .map(|r| {
            let mut r = r.into_iter().map(Option::unwrap_or_default);
            (r.next().unwrap_or_default(), r.next().unwrap_or_default())
        })
        .collect()
}

/// The demo with alice (owner: the admin) and bob signed in twice, from two browsers.
async fn app_with_two_bob_sessions() -> (TestApp, reqwest::Client, reqwest::Client, reqwest::Client)
{
    let app = spawn_app(&demo_config()).await;
    std::fs::write(config_path(&app), fill(&app, &demo_config())).unwrap();
    let alice = browser_with_agent("AliceBrowser/1.0");
    demo_sign_in(&app, &alice, "alice@example.com").await;
    let laptop = browser_with_agent("BobLaptop/2.0 (X11)");
    demo_sign_in(&app, &laptop, "bob@example.com").await;
    let phone = browser_with_agent("BobPhone/3.0 <script>");
    demo_sign_in(&app, &phone, "bob@example.com").await;
    (app, alice, laptop, phone)
}

#[tokio::test]
async fn the_admin_user_page_lists_each_session_with_its_details_and_ends_one_of_them() {
    let (app, alice, laptop, phone) = app_with_two_bob_sessions().await;
    let bob = public_id(&app, "bob@example.com").await;
    let user_page = app.url(&format!("/admin/users/{bob}"));
    let html = page(&alice, &user_page).await;
    assert_eq!(handles(&html).len(), 2, "{html}");
    assert!(html.contains("BobLaptop&#x2f;2.0 (X11)"), "{html}");
    // The user agent is shown escaped, never as markup.
    assert!(html.contains("BobPhone&#x2f;3.0 &lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("127.0.0.1"), "the client address: {html}");
    assert!(html.contains("id=\"session-count\">2<"), "{html}");

    // Neither a cookie value nor a stored hash appears: only the handles.
    let cookies: Vec<String> = stored_sessions(&app)
        .await
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    for hash in &cookies {
        assert!(
            !html.contains(hash.as_str()),
            "a stored hash is on the page"
        );
        assert!(
            !html.contains(&hash[..16]),
            "part of a stored hash is on the page"
        );
    }

    // End the phone's session.
    let phone_handle = handle_of(&html, "BobPhone");
    let laptop_handle = handle_of(&html, "BobLaptop");
    let form = hidden_inputs(&html);
    let csrf = form.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    let end = |handle: &str, token: &str| {
        let url = app.url(&format!("/admin/users/{bob}/sessions/{handle}/end"));
        let token = token.to_owned();
        let alice = alice.clone();
        async move {
            alice
                .post(url)
                .form(&[("csrf", token)])
                .send()
                .await
                .unwrap()
        }
    };
    // Without the right CSRF token nothing ends.
    assert_eq!(
        end(&phone_handle, "wrong").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&phone, &app.url("/api/v1/me")).await,
        StatusCode::OK
    );

    let done = end(&phone_handle, &csrf).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let flash = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        flash.ends_with(&format!("?ended={phone_handle}")),
        "{flash}"
    );
    let after = page(&alice, &app.url(&flash)).await;
    assert_eq!(handles(&after), vec![laptop_handle.clone()], "{after}");
    assert!(after.contains(&format!("Session <code>{phone_handle}</code> was ended")));

    // Exactly one of bob's browsers is signed out; the other, and the admin, are not.
    let phone_status = status_of(&phone, &app.url("/api/v1/me")).await;
    let laptop_status = status_of(&laptop, &app.url("/api/v1/me")).await;
    assert_eq!(phone_status, StatusCode::UNAUTHORIZED);
    assert_eq!(laptop_status, StatusCode::OK);
    assert_eq!(
        status_of(&alice, &app.url("/api/v1/me")).await,
        StatusCode::OK
    );

    // Ending it again (a second click) changes nothing and says so.
    let again = end(&phone_handle, &csrf).await;
    assert!(
        again.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("?ended=none")
    );
    let audit = page(&alice, &app.url("/admin/audit?trigger=admin")).await;
    assert!(
        audit.contains("user.session_ended") && audit.contains(&format!("session {phone_handle}")),
        "{audit}"
    );

    // "Sign this user out everywhere" ends the rest.
    let all = alice
        .post(app.url(&format!("/admin/users/{bob}/sign-out")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        status_of(&laptop, &app.url("/api/v1/me")).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(handles(&page(&alice, &user_page).await).is_empty());
}

#[tokio::test]
async fn a_session_of_another_user_cannot_be_ended_through_this_users_page() {
    let (app, alice, laptop, _) = app_with_two_bob_sessions().await;
    let bob = public_id(&app, "bob@example.com").await;
    let alice_id = public_id(&app, "alice@example.com").await;
    let handle = handle_of(
        &page(&alice, &app.url(&format!("/admin/users/{bob}"))).await,
        "BobLaptop",
    );
    let csrf = hidden_inputs(&page(&alice, &app.url("/admin")).await)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1;
    let response = alice
        .post(app.url(&format!("/admin/users/{alice_id}/sessions/{handle}/end")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("?ended=none")
    );
    assert_eq!(
        status_of(&laptop, &app.url("/api/v1/me")).await,
        StatusCode::OK
    );
}

fn teamgate(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_sessions_command_lists_a_users_sessions_and_revokes_one_or_all() {
    let (app, alice, laptop, phone) = app_with_two_bob_sessions().await;
    let config = config_path(&app);

    let (ok, out, err) = teamgate(&config, &["sessions", "list", "bob@example.com"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("bob@example.com"), "{out}");
    assert!(out.contains("2 live session(s)"), "{out}");
    assert!(
        out.contains("BobLaptop/2.0 (X11)") && out.contains("from 127.0.0.1"),
        "{out}"
    );
    for (hash, _) in stored_sessions(&app).await {
        assert!(
            !out.contains(&hash[..16]),
            "a stored hash was printed: {out}"
        );
    }
    let (ok, json, _) = teamgate(&config, &["sessions", "list", "bob@example.com", "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let phone_handle = sessions
        .iter()
        .find(|s| s["user_agent"] == "BobPhone/3.0 <script>")
        .map(|s| s["handle"].as_str().unwrap().to_owned())
        .expect("the phone's session is listed");
    assert_eq!(listed["user"]["label"], "bob@example.com");

    // One session, by handle.
    let (ok, out, err) = teamgate(
        &config,
        &[
            "sessions",
            "revoke",
            "bob@example.com",
            "--session",
            &phone_handle,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("ended session {phone_handle}")),
        "{out}"
    );
    // The running server sees the other process's write within its cache's bound (2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while status_of(&phone, &app.url("/api/v1/me")).await != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "the phone is still signed in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        status_of(&laptop, &app.url("/api/v1/me")).await,
        StatusCode::OK
    );

    // An unknown handle is an error that says what to do.
    let (ok, _, err) = teamgate(
        &config,
        &[
            "sessions",
            "revoke",
            "bob@example.com",
            "--session",
            &phone_handle,
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("no live session") && err.contains("sessions list"),
        "{err}"
    );
    // Neither --session nor --all: refused by the parser.
    let (ok, _, err) = teamgate(&config, &["sessions", "revoke", "bob@example.com"]);
    assert!(!ok && err.contains("--session"), "{err}");

    // All of them.
    let (ok, out, err) = teamgate(&config, &["sessions", "revoke", "bob@example.com", "--all"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ended every session of bob@example.com"),
        "{out}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while status_of(&laptop, &app.url("/api/v1/me")).await != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "the laptop is still signed in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        status_of(&alice, &app.url("/api/v1/me")).await,
        StatusCode::OK
    );
    let (_, out, _) = teamgate(&config, &["sessions", "list", "bob@example.com"]);
    assert!(out.contains("0 live session(s)"), "{out}");
    let (_, out, _) = teamgate(&config, &["audit", "--trigger", "cli"]);
    assert!(
        out.contains("user.session_ended") && out.contains("user.sign_out_everywhere"),
        "{out}"
    );
}
