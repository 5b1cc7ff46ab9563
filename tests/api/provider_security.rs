//! teamgate's OpenID provider refusing what it must, driven over plain HTTP against the real
//! server (the client side played by hand, so each request can be wrong in exactly one way).
//! Security cases P2-P16 (docs/security-cases.md, section M).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::forward_auth_support::{Agent, Gate, signed_in, spawn_on, user};
use crate::helpers::{sql_column, sql_count};
use crate::provider_support::{SECRET, basic, client_block, pkce, query_of, secret_file};

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const LOGGED_OUT: &str = "http://127.0.0.1:9/bye";

struct Op {
    gate: Gate,
    _secrets: TempDir,
    http: reqwest::Client,
}

/// teamgate with a confidential client `app`, a public client `spa`, and a client `ops` open
/// to the operators team only.
async fn op() -> Op {
    op_with_scim(false).await.0
}

/// [`op`], with SCIM enabled for the test provider when `scim` (and its bearer token).
async fn op_with_scim(scim: bool) -> (Op, String) {
    let secrets = TempDir::new().unwrap();
    let secret = secret_file(&secrets);
    let clients = [
        client_block("app", Some(&secret), REDIRECT, LOGGED_OUT, ""),
        client_block("spa", None, REDIRECT, LOGGED_OUT, ""),
        client_block(
            "ops",
            Some(&secret),
            REDIRECT,
            LOGGED_OUT,
            "allowed_teams = [\"operators\"]",
        ),
    ]
    .join("\n");
    let (gate, token) = if scim {
        crate::forward_auth_support::spawn_scim_with(&clients).await
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let direct = format!("http://{}", listener.local_addr().unwrap());
        (
            spawn_on(listener, &direct, "", &clients).await,
            String::new(),
        )
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (
        Op {
            gate,
            _secrets: secrets,
            http,
        },
        token,
    )
}

fn alice() -> crate::test_idp::LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

impl Op {
    /// `/oauth2/authorize` for `client` with `extra` parameters replacing the defaults.
    async fn authorize(
        &self,
        agent: &Agent,
        client: &str,
        challenge: Option<&str>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut params: Vec<(&str, &str)> = vec![
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email profile"),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ];
        if let Some(c) = challenge {
            params.extend([("code_challenge", c), ("code_challenge_method", "S256")]);
        }
        for (k, v) in extra {
            params.retain(|(name, _)| name != k);
            params.push((k, v));
        }
        agent
            .client
            .get(self.gate.url("/oauth2/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap()
    }

    /// A code for `client` obtained by signed-in `agent`.
    async fn code(&self, agent: &Agent, client: &str, challenge: Option<&str>) -> String {
        let response = self.authorize(agent, client, challenge, &[]).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = query_of(&location);
        assert_eq!(query.get("state").map(String::as_str), Some("st-1"));
        assert_eq!(
            query.get("iss").map(String::as_str),
            Some(self.gate.direct.as_str()),
            "RFC 9207 iss"
        );
        query.get("code").cloned().expect("a code")
    }

    async fn token(
        &self,
        client: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.gate.url("/oauth2/token"))
            .header("authorization", basic(client, secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn exchange(&self, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token("app", SECRET, &form).await
    }

    async fn refresh(&self, token: &str) -> (StatusCode, Value) {
        self.token(
            "app",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
    }

    async fn userinfo(&self, access: &str) -> StatusCode {
        self.http
            .get(self.gate.url("/oauth2/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Signed in, code redeemed: (agent, token response).
    async fn tokens(&self) -> (Agent, Value) {
        let agent = signed_in(&self.gate, alice()).await;
        let (verifier, challenge) = pkce();
        let code = self.code(&agent, "app", Some(&challenge)).await;
        let (status, body) = self.exchange(&code, Some(&verifier)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (agent, body)
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn case_p2_an_unregistered_redirect_uri_or_client_gets_a_page_and_no_redirect() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    for (client, uri) in [
        ("app", "https://evil.example/cb"),
        ("app", "http://127.0.0.1:9/cb/"),
        ("app", "http://127.0.0.1:9/cb?x=1"),
        ("app", "HTTP://127.0.0.1:9/cb"),
        ("nobody", REDIRECT),
    ] {
        let response = op
            .authorize(
                &agent,
                client,
                None,
                &[("client_id", client), ("redirect_uri", uri)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{client} {uri}");
        assert!(
            response.headers().get("location").is_none(),
            "{client} {uri}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("Sign-in request refused"), "{page}");
    }
}

/// Case P5 (and P10's refresh rotation) under concurrency: redemptions of one code, or uses of
/// one refresh token, sent at once (to one server here, to several replicas in production)
/// must not each succeed. SQLite runs write jobs one at a time; PostgreSQL runs them side by
/// side at READ COMMITTED, where the grant and token rows read in the transaction are locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_p5_concurrent_redemptions_of_one_code_or_one_refresh_token_succeed_once() {
    let op = Arc::new(op().await);
    let agent = signed_in(&op.gate, alice()).await;
    for round in 0..4 {
        let (verifier, challenge) = pkce();
        let code = op.code(&agent, "app", Some(&challenge)).await;
        let mut redemptions = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (op, code, verifier) = (op.clone(), code.clone(), verifier.clone());
            redemptions.spawn(async move { op.exchange(&code, Some(&verifier)).await });
        }
        let mut issued = Vec::new();
        while let Some(r) = redemptions.join_next().await {
            let (status, body) = r.unwrap();
            if status == StatusCode::OK {
                issued.push(body);
            } else {
                assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
            }
        }
        assert!(
            issued.len() <= 1,
            "round {round}: one code bought {} token sets",
            issued.len()
        );
    }
    // One refresh token, used eight times at once: one new pair at most.
    let (_, tokens) = op.tokens().await;
    let refresh = s(&tokens, "refresh_token");
    let mut uses = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (op, refresh) = (op.clone(), refresh.clone());
        uses.spawn(async move { op.refresh(&refresh).await });
    }
    let mut rotated = 0;
    while let Some(r) = uses.join_next().await {
        let (status, body) = r.unwrap();
        if status == StatusCode::OK {
            rotated += 1;
        } else {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    assert!(rotated <= 1, "one refresh token rotated {rotated} times");
}

#[tokio::test]
async fn case_p5_a_reused_code_is_refused_and_the_tokens_issued_with_it_are_revoked() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let (verifier, challenge) = pkce();
    let code = op.code(&agent, "app", Some(&challenge)).await;
    let (status, first) = op.exchange(&code, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        op.userinfo(&s(&first, "access_token")).await,
        StatusCode::OK
    );
    let (status, again) = op.exchange(&code, Some(&verifier)).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        op.userinfo(&s(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED,
        "the access token of the first use is revoked"
    );
    let (status, refreshed) = op.refresh(&s(&first, "refresh_token")).await;
    assert_eq!(
        (status, refreshed["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let replays = sql_count(
        &op.gate.state,
        "SELECT COUNT(*) FROM audit WHERE action = 'client.code_replayed'",
        &[],
    )
    .await;
    assert_eq!(replays, 1);
}

#[tokio::test]
async fn case_p6_a_code_is_refused_after_its_sixty_seconds() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let code = op.code(&agent, "app", None).await;
    op.gate.state.clock.advance(Duration::from_secs(61));
    let (status, body) = op.exchange(&code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn case_p7_a_wrong_client_secret_is_401_invalid_client_and_does_not_burn_the_code() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let code = op.code(&agent, "app", None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body) = op.token("app", "not-the-secret", &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // client_secret_post with a wrong secret, and the other client's secret for this code.
    let response = op
        .http
        .post(op.gate.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "app"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = op.token("ops", SECRET, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "another client cannot redeem the code"
    );
    // The code is burnt by the redemption attempt of the other (authenticated) client.
    let (status, _) = op.exchange(&code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A fresh code is not burnt by failed client authentication.
    let code = op.code(&agent, "app", None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, _) = op.token("app", "not-the-secret", &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = op.exchange(&code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn case_p3_a_pkce_mismatch_is_refused_and_burns_the_code() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let (verifier, challenge) = pkce();
    let code = op.code(&agent, "app", Some(&challenge)).await;
    let (other, _) = pkce();
    let (status, body) = op.exchange(&code, Some(&other)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = op.exchange(&code, Some(&verifier)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a guessed verifier cannot be retried"
    );
    // No verifier at all for a code bound to a challenge.
    let (_, challenge) = pkce();
    let code = op.code(&agent, "app", Some(&challenge)).await;
    let (status, _) = op.exchange(&code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn case_p3_a_public_client_must_use_pkce_and_a_downgrade_is_refused() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let response = op.authorize(&agent, "spa", None, &[]).await;
    let query = query_of(response.headers()["location"].to_str().unwrap());
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(query.get("state").map(String::as_str), Some("st-1"));
    let response = op
        .authorize(
            &agent,
            "app",
            None,
            &[
                ("code_challenge", "x".repeat(43).as_str()),
                ("code_challenge_method", "plain"),
            ],
        )
        .await;
    let query = query_of(response.headers()["location"].to_str().unwrap());
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request"),
        "plain is refused"
    );
    // RFC 9700 §4.8.2: a verifier for a code issued without a challenge.
    let code = op.code(&agent, "app", None).await;
    let (verifier, _) = pkce();
    let (status, body) = op.exchange(&code, Some(&verifier)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The public client redeems with PKCE and no secret.
    let (verifier, challenge) = pkce();
    let code = op.code(&agent, "spa", Some(&challenge)).await;
    let response = op
        .http
        .post(op.gate.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", "spa"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn case_p8_a_user_outside_allowed_teams_gets_the_refusal_page_and_no_code() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let response = op.authorize(&agent, "ops", None, &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("No access to this application"), "{page}");
    assert!(
        page.contains("Operators") && page.contains("App ops"),
        "{page}"
    );
    let grants = sql_count(&op.gate.state, "SELECT COUNT(*) FROM oauth_grants", &[]).await;
    assert_eq!(grants, 0);
}

#[tokio::test]
async fn case_p9_a_deprovisioned_users_refresh_and_access_tokens_are_refused() {
    let op = op().await;
    let (_, tokens) = op.tokens().await;
    op.gate.revoke("u-alice").await;
    let (status, body) = op.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        op.userinfo(&s(&tokens, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let left = sql_count(&op.gate.state, "SELECT COUNT(*) FROM oauth_tokens", &[]).await;
    assert_eq!(left, 0, "the grant went with the sessions");
}

#[tokio::test]
async fn case_p9_scim_deactivation_revokes_the_clients_refresh_tokens_at_once() {
    let (op, scim_token) = op_with_scim(true).await;
    let (_, tokens) = op.tokens().await;
    let scim = |method: reqwest::Method, path: String, body: Value| {
        op.http
            .request(method, op.gate.url(&format!("/scim/v2/idp{path}")))
            .bearer_auth(&scim_token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    // The IdP provisions the same person (externalId = the login subject), then deactivates.
    let created: Value = scim(
        reqwest::Method::POST,
        "/Users".into(),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice@example.com",
            "externalId": "u-alice",
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = s(&created, "id");
    let (status, _) = op.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "provisioning alone changes nothing");
    // The refresh above rotated the token; take the current pair again.
    let (_, tokens) = op.tokens().await;
    let deactivated = scim(
        reqwest::Method::PATCH,
        format!("/Users/{id}"),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        }),
    )
    .await
    .unwrap();
    assert_eq!(deactivated.status(), StatusCode::OK);
    let (status, body) = op.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        op.userinfo(&s(&tokens, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn case_p9_signing_out_of_teamgate_revokes_the_clients_refresh_tokens() {
    let op = op().await;
    let (agent, tokens) = op.tokens().await;
    let home = agent.get(&op.gate.url("/")).await.text().await.unwrap();
    let csrf = crate::helpers::hidden_inputs(&home)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .unwrap()
        .1;
    let out = agent
        .client
        .post(op.gate.url("/logout"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert!(out.status().is_redirection());
    let (status, _) = op.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn case_p10_a_rotated_refresh_token_used_again_revokes_the_grant() {
    let op = op().await;
    let (_, tokens) = op.tokens().await;
    let old = s(&tokens, "refresh_token");
    let (status, next) = op.refresh(&old).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_ne!(s(&next, "refresh_token"), old, "rotated");
    assert!(next["id_token"].as_str().is_some());
    let (status, body) = op.refresh(&old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = op.refresh(&s(&next, "refresh_token")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the replay revoked the whole grant"
    );
    assert_eq!(
        op.userinfo(&s(&next, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn case_p11_tokens_are_stored_hashed_and_never_logged() {
    let (logs, _guard) = crate::oidc_common::capture_logs(tracing::Level::TRACE);
    let op = op().await;
    let (_, tokens) = op.tokens().await;
    let (access, refresh) = (s(&tokens, "access_token"), s(&tokens, "refresh_token"));
    // Bytes come back in hex.
    let stored = sql_column(&op.gate.state, "SELECT hash FROM oauth_tokens", &[]).await;
    assert_eq!(stored.len(), 2);
    for h in &stored {
        assert_eq!(h.len(), 64, "a SHA-256, not the token: {h}");
    }
    let text = logs.text();
    assert!(
        !text.contains(&access) && !text.contains(&refresh),
        "a token reached the log"
    );
}

#[tokio::test]
async fn case_p12_userinfo_wants_a_bearer_header_and_reads_the_memberships_now() {
    let op = op().await;
    let (_, tokens) = op.tokens().await;
    let access = s(&tokens, "access_token");
    let ok: Value = op
        .http
        .get(op.gate.url("/oauth2/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["email"], "alice@example.com");
    let missing = op
        .http
        .get(op.gate.url("/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let in_query = op
        .http
        .get(
            op.gate
                .url(&format!("/oauth2/userinfo?access_token={access}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        in_query.status(),
        StatusCode::UNAUTHORIZED,
        "RFC 9700 §4.3.2"
    );
}

#[tokio::test]
async fn case_p13_prompt_none_with_a_session_answers_at_once_and_bad_prompts_are_errors() {
    let op = op().await;
    let agent = signed_in(&op.gate, alice()).await;
    let response = op
        .authorize(&agent, "app", None, &[("prompt", "none")])
        .await;
    let query = query_of(response.headers()["location"].to_str().unwrap());
    assert!(query.contains_key("code"), "{query:?}");
    for bad in ["none login", "sometimes"] {
        let response = op.authorize(&agent, "app", None, &[("prompt", bad)]).await;
        let query = query_of(response.headers()["location"].to_str().unwrap());
        assert_eq!(
            query.get("error").map(String::as_str),
            Some("invalid_request"),
            "{bad}"
        );
    }
    let fresh = Agent::new();
    let response = op
        .authorize(&fresh, "app", None, &[("prompt", "none")])
        .await;
    let query = query_of(response.headers()["location"].to_str().unwrap());
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("login_required")
    );
}

#[tokio::test]
async fn case_p14_logout_refuses_unregistered_return_addresses_and_asks_without_a_hint() {
    let op = op().await;
    let (agent, tokens) = op.tokens().await;
    let hint = s(&tokens, "id_token");
    // A return address the client did not register: a page, no redirect, still signed in.
    let response = agent
        .client
        .get(op.gate.url("/oauth2/logout"))
        .query(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert_eq!(
        agent.get(&op.gate.url("/api/v1/me")).await.status(),
        StatusCode::OK
    );
    // A forged hint.
    let forged = crate::forward_auth_support::tamper(&hint);
    let response = agent
        .client
        .get(op.gate.url("/oauth2/logout"))
        .query(&[("id_token_hint", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // No hint: a confirmation page, and nothing ended yet.
    let response = agent
        .client
        .get(op.gate.url("/oauth2/logout"))
        .query(&[
            ("client_id", "app"),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "s9"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Sign out of teamgate?") && !page.contains("<script"),
        "{page}"
    );
    assert_eq!(
        agent.get(&op.gate.url("/api/v1/me")).await.status(),
        StatusCode::OK
    );
    let form = crate::helpers::hidden_inputs(&page);
    let confirmed = agent
        .client
        .post(op.gate.url("/oauth2/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        confirmed.status(),
        StatusCode::OK,
        "a page with a link, not a redirect"
    );
    // minijinja escapes '/' inside attributes; a browser reads it back.
    let page = confirmed.text().await.unwrap().replace("&#x2f;", "/");
    assert!(
        page.contains(r#"href="http://127.0.0.1:9/bye?state=s9""#),
        "{page}"
    );
    assert_eq!(
        agent.get(&op.gate.url("/api/v1/me")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = op.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn case_p15_discovery_and_jwks_describe_the_provider_and_both_key_kinds() {
    let op = op().await;
    let doc: Value = op
        .http
        .get(op.gate.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], op.gate.direct.as_str());
    assert_eq!(
        doc["jwks_uri"],
        op.gate.url("/.well-known/jwks.json").as_str()
    );
    assert_eq!(
        doc["end_session_endpoint"],
        op.gate.url("/oauth2/logout").as_str()
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: Value = op
        .http
        .get(op.gate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"ES256") && algs.contains(&"RS256"),
        "{algs:?}"
    );
}

#[tokio::test]
async fn case_p15_a_rotation_makes_a_new_rs256_key_and_keeps_the_previous_one_published() {
    let op = op().await;
    let (_, before) = op.tokens().await;
    let old_kid = jsonwebtoken::decode_header(s(&before, "id_token"))
        .unwrap()
        .kid
        .unwrap();
    let rotation = teamgate::signing::rotate(&op.gate.state.store, &op.gate.state.clock)
        .await
        .unwrap();
    let (new_rsa, previous) = rotation.rsa.expect("the RS256 key rotated too");
    assert_eq!(previous.as_deref(), Some(old_kid.as_str()));
    let jwks: Value = op
        .http
        .get(op.gate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_rsa.as_str()),
        "{kids:?}"
    );
}

#[tokio::test]
async fn case_p16_without_clients_there_is_no_provider_surface() {
    let gate = crate::forward_auth_support::spawn("", "").await;
    let response = reqwest::get(gate.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let rsa = sql_count(&gate.state, "SELECT COUNT(*) FROM rsa_signing_keys", &[]).await;
    assert_eq!(rsa, 0, "no RSA key is made for a provider nobody uses");
}
