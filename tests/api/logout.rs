//! Sign-out: `POST /logout` with the session's CSRF token ends teamgate's session, and for a
//! provider with `logout = "idp"` the IdP's too (OpenID Connect RP-Initiated Logout 1.0: the
//! test IdP's `end_session_endpoint`, `id_token_hint`, `client_id`,
//! `post_logout_redirect_uri`); `GET /logout`, the target of a sign-out link on a proxied
//! app, only shows a confirmation page. In Chromium too, under `form-action 'self'`.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::net::TcpListener;

use crate::forward_auth_support::{Agent, Gate, PROVIDER, sign_in, spawn_with, user};
use crate::helpers::{hidden_inputs, sql_one};
use crate::support::browser::Browser;
use crate::support::e2e;
use crate::test_idp::LoginSpec;

fn alice() -> LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

/// teamgate against the test IdP; `provider_extra` goes into the provider's table.
async fn gate(provider_extra: &str) -> Gate {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = format!("http://{}", listener.local_addr().unwrap());
    let gate = spawn_with(listener, &direct, "", provider_extra, "").await;
    gate.idp
        .register_redirect_uri(&gate.url(&format!("/callback/{PROVIDER}")));
    gate.idp.register_post_logout_redirect_uri(&gate.url("/"));
    gate
}

async fn signed_in(gate: &Gate) -> Agent {
    let agent = Agent::new();
    sign_in(gate, &agent, &gate.direct.clone(), alice()).await;
    agent
}

/// The CSRF token of the sign-out form on teamgate's home page.
async fn csrf(gate: &Gate, agent: &Agent) -> String {
    let home = agent.get(&gate.url("/")).await.text().await.unwrap();
    hidden_inputs(&home)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("the home page has the sign-out form")
}

async fn me(gate: &Gate, agent: &Agent) -> StatusCode {
    agent.get(&gate.url("/api/v1/me")).await.status()
}

/// `href="..."` of the element with `id`, HTML entities decoded.
fn href_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {html}"));
    let rest = &html[at..];
    let start = rest.find("href=\"").unwrap() + 6;
    let end = start + rest[start..].find('"').unwrap();
    rest[start..end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

#[tokio::test]
async fn with_logout_idp_sign_out_ends_the_session_and_sends_the_browser_to_the_idps_end_session_endpoint()
 {
    let gate = gate("logout = \"idp\"").await;
    let agent = signed_in(&gate).await;
    let id_token = gate.idp.last_id_token().expect("an ID token was issued");
    let cookie = agent.cookie(&gate.direct, "teamgate").unwrap();
    // The ID token is kept with the session for the hint (and only then).
    let stored = sql_one(
        &gate.state,
        "SELECT data FROM sessions WHERE user_id IS NOT NULL",
        &[],
    )
    .await
    .unwrap();
    assert!(stored.contains(&id_token));

    let token = csrf(&gate, &agent).await;
    let response = agent
        .client
        .post(gate.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    // A page that moves on by itself (a new navigation, which form-action does not govern),
    // not a redirect of the POST.
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let html = response.text().await.unwrap();
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    let target = reqwest::Url::parse(&href_of(&html, "continue")).unwrap();
    assert_eq!(
        target.as_str().split('?').next().unwrap(),
        gate.idp.end_session_endpoint()
    );
    let param = |name: &str| {
        target
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("id_token_hint"), Some(id_token));
    assert_eq!(param("client_id"), Some(gate.idp.client_id()));
    assert_eq!(param("post_logout_redirect_uri"), Some(gate.url("/")));

    // teamgate's session is over before the browser even reaches the IdP, and its cookie is
    // worthless (the server-side record is gone).
    assert_eq!(me(&gate, &agent).await, StatusCode::UNAUTHORIZED);
    let replay = reqwest::Client::new()
        .get(gate.url("/api/v1/me"))
        .header("cookie", format!("teamgate={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // The IdP ends its session and sends the browser back to teamgate's start page.
    let back = agent.client.get(target).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_eq!(back.headers()["location"], gate.url("/").as_str());
    assert_eq!(gate.idp.end_session_requests().len(), 1);
}

#[tokio::test]
async fn by_default_sign_out_is_local_and_keeps_no_id_token() {
    let gate = gate("").await;
    let agent = signed_in(&gate).await;
    let id_token = gate.idp.last_id_token().unwrap();
    let stored = sql_one(
        &gate.state,
        "SELECT data FROM sessions WHERE user_id IS NOT NULL",
        &[],
    )
    .await
    .unwrap();
    assert!(
        !stored.contains(&id_token) && !stored.contains("id_token"),
        "{stored}"
    );
    let token = csrf(&gate, &agent).await;
    let response = agent
        .client
        .post(gate.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    assert_eq!(me(&gate, &agent).await, StatusCode::UNAUTHORIZED);
    assert!(gate.idp.end_session_requests().is_empty());
}

#[tokio::test]
async fn an_idp_without_an_end_session_endpoint_gets_a_local_sign_out() {
    let gate = gate("logout = \"idp\"").await;
    gate.idp
        .with_knobs(|k| k.discovery_remove.push("end_session_endpoint".into()));
    let agent = signed_in(&gate).await;
    let token = csrf(&gate, &agent).await;
    let response = agent
        .client
        .post(gate.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&gate, &agent).await, StatusCode::UNAUTHORIZED);
    assert!(gate.idp.end_session_requests().is_empty());
}

#[tokio::test]
async fn get_logout_asks_for_confirmation_and_never_signs_out() {
    let gate = gate("logout = \"idp\"").await;
    // Signed out: a page that says so.
    let anonymous = Agent::new().get(&gate.url("/logout")).await;
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert!(
        anonymous
            .text()
            .await
            .unwrap()
            .contains("id=\"signed-out\"")
    );

    let agent = signed_in(&gate).await;
    for _ in 0..2 {
        let page = agent.get(&gate.url("/logout")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"logout-form\""), "{html}");
        assert!(html.contains("alice@example.com"), "{html}");
        assert_eq!(me(&gate, &agent).await, StatusCode::OK, "a GET signed out");
    }
    // A forged form (no or a wrong token) changes nothing either.
    for form in [vec![], vec![("csrf", "forged")]] {
        let response = agent
            .client
            .post(gate.url("/logout"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
        assert_eq!(me(&gate, &agent).await, StatusCode::OK);
    }
    assert!(gate.idp.end_session_requests().is_empty());
}

#[tokio::test]
async fn in_chromium_a_sign_out_link_confirms_then_ends_the_idp_session_and_comes_back() {
    if !e2e::require_browser("sign out through the IdP in Chromium") {
        return;
    }
    let gate = gate("logout = \"idp\"").await;
    gate.idp.set_next_login(alice());
    let browser = Browser::start().await;
    browser.goto(&gate.url("/login")).await;
    browser
        .wait_for("#user-name", Duration::from_secs(20))
        .await;
    let id_token = gate.idp.last_id_token().unwrap();

    // A "Sign out" link on an app leads here; the page's form posts with the CSRF token.
    browser.goto(&gate.url("/logout")).await;
    browser
        .wait_for("#logout-form", Duration::from_secs(10))
        .await;
    browser.click("#logout").await;
    // Through the IdP's end-session endpoint and back to teamgate's start page, signed out.
    browser.wait_for("#sign-in", Duration::from_secs(20)).await;
    let url = browser.current_url().await;
    assert_eq!(url, gate.url("/"), "{}", browser.page_source().await);
    let calls = gate.idp.end_session_requests();
    assert_eq!(
        calls.len(),
        1,
        "the IdP's end-session endpoint was not reached"
    );
    assert_eq!(calls[0].get("id_token_hint"), Some(id_token.as_str()));
    assert_eq!(
        calls[0].get("post_logout_redirect_uri"),
        Some(gate.url("/").as_str())
    );
    drop(browser);
}
