//! The provider's clients for administrators: the `/admin/clients` page (last use, active
//! refresh tokens), `teamgate plan` showing client changes, a reload applying them, and
//! `teamgate explain USER --client ID`. On the demo config, signed in at the demo IdP.

use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_support::{config_path, edit, stdout, teamgate, write_config};
use crate::helpers::{TestApp, demo_config, demo_sign_in, spawn_app};
use crate::provider_support::{SECRET, basic, pkce, query_of};
use teamgate::admin::reload::reload;

const REDIRECT: &str = "http://127.0.0.1:9/cb";

fn clients(secret_path: &str) -> String {
    format!(
        r#"
[[client]]
id = "app"
name = "The App"
secret_file = "{secret_path}"
redirect_uris = ["{REDIRECT}"]

[[client]]
id = "infra"
name = "Infra console"
public = true
redirect_uris = ["{REDIRECT}"]
allowed_teams = ["infra-editors"]
"#
    )
}

/// The demo config plus two clients; alice signed in with the app's browser.
async fn app_with_clients() -> TestApp {
    let secret = std::env::temp_dir().join(format!(
        "teamgate-provider-admin-{}",
        teamgate::domain::ids::random_id()
    ));
    std::fs::write(&secret, SECRET).unwrap();
    let config = format!(
        "{}{}",
        demo_config(),
        clients(&secret.display().to_string())
    );
    let app = spawn_app(&config).await;
    demo_sign_in(&app, &app.browser, "alice@example.com").await;
    app
}

async fn code_for(app: &TestApp, client: &str, redirect: &str) -> reqwest::Response {
    code_with(app, client, redirect, &pkce().1).await
}

async fn code_with(
    app: &TestApp,
    client: &str,
    redirect: &str,
    challenge: &str,
) -> reqwest::Response {
    app.browser
        .get(app.url("/oauth2/authorize"))
        .query(&[
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_admin_clients_page_lists_each_client_with_its_last_use_and_active_refresh_tokens() {
    let app = app_with_clients().await;
    let page = app.get("/admin/clients").await.text().await.unwrap();
    assert!(
        page.contains("id=\"client-app\"") && page.contains("Infra console"),
        "{page}"
    );
    assert!(page.contains("never"), "no use yet: {page}");

    let (verifier, challenge) = pkce();
    let response = code_with(&app, "app", REDIRECT, &challenge).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let code = query_of(&location).remove("code").unwrap();
    let token = reqwest::Client::new()
        .post(app.url("/oauth2/token"))
        .header("authorization", basic("app", SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);

    let page = app.get("/admin/clients").await.text().await.unwrap();
    let row = page.split("id=\"client-app\"").nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(!row.contains("never"), "last use shown: {row}");
    assert!(row.contains("class=\"refresh-tokens\">1<"), "{row}");
}

#[tokio::test]
async fn plan_shows_client_changes_and_a_reload_applies_them() {
    let app = app_with_clients().await;
    let current = std::fs::read_to_string(config_path(&app)).unwrap();
    let changed = edit(
        &current,
        &format!("redirect_uris = [\"{REDIRECT}\"]\n\n[[client]]\nid = \"infra\""),
        "redirect_uris = [\"http://127.0.0.1:9/new-cb\"]\n\n[[client]]\nid = \"infra\"",
    ) + "\n[[client]]\nid = \"wiki\"\npublic = true\nredirect_uris = [\"https://wiki.example.com/cb\"]\n";
    let path = write_config(&app, "changed.toml", &changed);
    let out = teamgate(&["plan", "--config", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("+ client wiki"), "{text}");
    assert!(
        text.contains(
            "~ client app: redirect_uris http://127.0.0.1:9/cb -> http://127.0.0.1:9/new-cb"
        ),
        "{text}"
    );

    std::fs::write(config_path(&app), &changed).unwrap();
    reload(&app.state, "test").await.unwrap();
    let old = code_for(&app, "app", REDIRECT).await;
    assert_eq!(
        old.status(),
        StatusCode::BAD_REQUEST,
        "the old redirect URI is gone"
    );
    let new = code_for(&app, "app", "http://127.0.0.1:9/new-cb").await;
    assert_eq!(new.status(), StatusCode::FOUND);
    let out = teamgate(&["plan", "--config", config_path(&app).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[tokio::test]
async fn explain_shows_what_a_client_would_receive_and_whether_the_user_may_sign_in() {
    let app = app_with_clients().await;
    let config = config_path(&app);
    let out = teamgate(&[
        "explain",
        "alice@example.com",
        "--client",
        "app",
        "--config",
        config.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Client app (\"The App\"): may sign in."),
        "{text}"
    );
    assert!(
        text.contains("teams: [\"platform-admins\",\"security-viewers\"]"),
        "{text}"
    );
    assert!(text.contains("org/acme=owner"), "{text}");
    let out = teamgate(&[
        "explain",
        "alice@example.com",
        "--client",
        "infra",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["client"]["allowed"], false, "{json}");
    assert!(
        json["client"]["refusal"]
            .as_str()
            .unwrap()
            .contains("infra-editors")
    );
    let out = teamgate(&[
        "explain",
        "alice@example.com",
        "--client",
        "nope",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn case_p8_a_refresh_is_refused_once_a_reload_leaves_the_user_outside_allowed_teams() {
    let app = app_with_clients().await;
    let (verifier, challenge) = pkce();
    let response = code_with(&app, "app", REDIRECT, &challenge).await;
    let code = query_of(response.headers()["location"].to_str().unwrap())
        .remove("code")
        .unwrap();
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>| {
        http.post(app.url("/oauth2/token"))
            .header("authorization", basic("app", SECRET))
            .form(&form)
            .send()
    };
    let tokens: Value = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let current = std::fs::read_to_string(config_path(&app)).unwrap();
    let narrowed = edit(
        &current,
        &format!("redirect_uris = [\"{REDIRECT}\"]\n\n[[client]]\nid = \"infra\""),
        &format!(
            "redirect_uris = [\"{REDIRECT}\"]\nallowed_teams = [\"infra-editors\"]\n\n[[client]]\nid = \"infra\""
        ),
    );
    std::fs::write(config_path(&app), &narrowed).unwrap();
    reload(&app.state, "test").await.unwrap();
    let refused = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh),
    ])
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(
        code_for(&app, "app", REDIRECT).await.status(),
        StatusCode::FORBIDDEN,
        "and no new code"
    );
}
