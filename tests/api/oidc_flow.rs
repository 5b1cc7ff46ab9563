//! security-cases section C: the flow around the tokens (31-46): state binding and single use,
//! concurrent logins, PKCE, code injection, RFC 9207 `iss`, mix-up between two providers,
//! repeated parameters, IdP errors, the constant redirect URI, return URLs, the callback
//! page's headers, secrets kept out of logs, no redirects followed, and the session cookie
//! surviving the cross-site return in a real browser.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tracing::Level;

use crate::helpers::spawn_app;
use crate::oidc_common::*;
use crate::test_idp::{Endpoint, IssParam, LoginSpec, TestIdp};

fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    url.to_string()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn case_31_a_callback_without_state_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let callback = rig.callback_url(&rig.app.browser).await;
    let out = rig.hit(&with_param(&callback, "state", None)).await;
    out.assert_refused(400, EXPIRED);
    out.assert_logged(&logs, "without a state");
    rig.assert_nobody_signed_in().await;
    assert_eq!(rig.idp.token_calls(), 0);
}

#[tokio::test]
async fn case_31_a_callback_with_the_state_of_another_browser_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let victim = browser();
    let callback = rig.callback_url(&victim).await;
    // The attacker's browser has started a login of its own, so it has a session.
    let _ = start_login(&rig.app, &rig.app.browser, PROVIDER).await;
    let out = rig.hit(&callback).await;
    out.assert_refused(400, EXPIRED);
    out.assert_logged(&logs, "matches no pending login");
    rig.assert_nobody_signed_in().await;
}

#[tokio::test]
async fn case_32_a_replayed_callback_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let other = browser();
    let callback = rig.callback_url(&other).await;
    hit(&other, &callback).await.assert_signed_in();
    let replay = hit(&other, &callback).await;
    replay.assert_refused(400, EXPIRED);
    replay.assert_logged(&logs, "matches no pending login");
    assert_eq!(rig.idp.token_calls(), 1, "the code is never redeemed twice");
}

#[tokio::test]
async fn case_32_a_pending_login_older_than_its_ttl_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let callback = rig.callback_url(&rig.app.browser).await;
    // Age the stored pending login past the TTL (PENDING_TTL = 600 s) in the session row.
    let row = crate::helpers::sql_rows(&rig.app.state, "SELECT id, data FROM sessions", &[]).await;
    let (id, data) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    let mut data: serde_json::Value = serde_json::from_str(&data).unwrap();
    for p in data["pending_logins"].as_array_mut().unwrap() {
        p["created"] = json!(p["created"].as_i64().unwrap() - 601);
    }
    crate::helpers::sql_exec(
        &rig.app.state,
        "UPDATE sessions SET data = ?1 WHERE id = ?2",
        &[data.to_string().into(), id.into()],
    )
    .await;
    let out = rig.hit(&callback).await;
    out.assert_refused(400, EXPIRED);
    out.assert_logged(&logs, "matches no pending login");
    rig.assert_nobody_signed_in().await;
}

#[tokio::test]
async fn case_33_two_tabs_logging_in_at_once_both_succeed() {
    let rig = Rig::oidc().await;
    let first = rig.callback_url(&rig.app.browser).await;
    let second = rig.callback_url(&rig.app.browser).await;
    rig.hit(&second).await.assert_signed_in();
    rig.hit(&first).await.assert_signed_in();
    assert_eq!(me(&rig.app, &rig.app.browser).await.0, StatusCode::OK);
}

#[tokio::test]
async fn case_33_fifty_starts_keep_only_the_newest_pending_logins() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let mut authorize = Vec::new();
    for _ in 0..50 {
        authorize.push(start_login(&rig.app, &rig.app.browser, PROVIDER).await);
    }
    let oldest = rig.idp.authorize_redirect(&authorize[0]).await;
    let out = rig.hit(&oldest).await;
    out.assert_refused(400, EXPIRED);
    out.assert_logged(&logs, "matches no pending login");
    let newest = rig.idp.authorize_redirect(&authorize[49]).await;
    rig.hit(&newest).await.assert_signed_in();
    let data = crate::helpers::sql_one(
        &rig.app.state,
        "SELECT data FROM sessions WHERE user_id IS NOT NULL",
        &[],
    )
    .await
    .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert!(
        data["pending_logins"].as_array().map_or(0, Vec::len) <= 8,
        "{data}"
    );
}

#[tokio::test]
async fn case_34_pkce_is_s256_with_a_verifier_of_43_to_128_unreserved_characters() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    let auth = rig.idp.last_authorize().unwrap();
    assert_eq!(auth.get("code_challenge_method"), Some("S256"));
    let verifier = rig
        .idp
        .last_token_request()
        .unwrap()
        .form("code_verifier")
        .unwrap()
        .to_owned();
    assert!(
        (43..=128).contains(&verifier.len()),
        "verifier length {}",
        verifier.len()
    );
    assert!(
        verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    );
    use base64::Engine;
    use sha2::Digest;
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier));
    assert_eq!(auth.get("code_challenge"), Some(challenge.as_str()));
}

#[test]
fn case_34_the_rfc_7636_appendix_b_vector_holds_for_the_challenge_openidconnect_computes() {
    let verifier =
        openidconnect::PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
    let challenge = openidconnect::PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    assert_eq!(
        challenge.as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(challenge.method().as_str(), "S256");
}

#[tokio::test]
async fn case_35_a_victims_code_pasted_into_the_attackers_session_fails() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let victim = browser();
    let victim_callback = rig.callback_url(&victim).await;
    let attacker_callback = rig.callback_url(&rig.app.browser).await;
    let injected = with_param(
        &attacker_callback,
        "code",
        param(&victim_callback, "code").as_deref(),
    );
    let out = rig.hit(&injected).await;
    out.assert_refused(400, UNVERIFIED);
    out.assert_logged(&logs, "code exchange failed");
    rig.assert_nobody_signed_in().await;
}

#[tokio::test]
async fn case_36_an_authorization_response_iss_naming_another_issuer_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp
        .with_knobs(|k| k.iss_param = IssParam::Custom("https://evil.example.com".into()));
    assert_login_refused(&rig, &logs, 400, RESPONSE_REFUSED, "is not the expected").await;
    assert_eq!(
        rig.idp.token_calls(),
        0,
        "refused before the code is redeemed"
    );
}

#[tokio::test]
async fn case_36_an_iss_differing_only_by_a_trailing_slash_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp
        .with_knobs(|k| k.iss_param = IssParam::TrailingSlash);
    assert_login_refused(&rig, &logs, 400, RESPONSE_REFUSED, "is not the expected").await;
}

#[tokio::test]
async fn case_37_a_missing_iss_is_rejected_when_the_provider_advertises_it() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.iss_param = IssParam::Omit;
        k.iss_parameter_supported = Some(true);
    });
    assert_login_refused(&rig, &logs, 400, RESPONSE_REFUSED, "iss missing").await;
}

#[tokio::test]
async fn case_37_a_missing_iss_is_accepted_when_the_provider_does_not_advertise_it() {
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.iss_param = IssParam::Omit;
        k.iss_parameter_supported = None;
    });
    rig.login().await.assert_signed_in();
}

#[tokio::test]
async fn case_37_a_response_iss_differing_from_the_id_token_iss_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("iss", json!("https://elsewhere.example.com"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "Invalid issuer").await;
}

async fn two_providers() -> (TestIdp, TestIdp, crate::helpers::TestApp) {
    let a = TestIdp::start().await;
    let b = TestIdp::start().await;
    let blocks = format!(
        "{}{}",
        provider_block("a", "oidc", &a, &secret_file(&a.client_secret()), ""),
        provider_block("b", "oidc", &b, &secret_file(&b.client_secret()), "")
    );
    let app = spawn_app(&config(&[("a", "id"), ("b", "id")], &blocks, "")).await;
    (a, b, app)
}

#[tokio::test]
async fn case_38_a_response_carrying_another_providers_iss_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let (a, b, app) = two_providers().await;
    a.with_knobs(|k| k.iss_param = IssParam::Custom(b.issuer()));
    let out = login(&app, &app.browser, &a, "a").await;
    out.assert_refused(400, RESPONSE_REFUSED);
    out.assert_logged(&logs, "is not the expected");
    assert_nobody_signed_in(&app).await;
}

#[tokio::test]
async fn case_38_a_login_started_at_one_provider_cannot_finish_at_the_other() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let (a, _b, app) = two_providers().await;
    let callback = callback_url(&app, &app.browser, &a, "a").await;
    let out = hit(
        &app.browser,
        &callback.replace("/callback/a", "/callback/b"),
    )
    .await;
    out.assert_refused(400, RESPONSE_REFUSED);
    out.assert_logged(&logs, "but the login was started at");
    assert_nobody_signed_in(&app).await;
}

#[tokio::test]
async fn case_38_an_id_token_of_the_other_provider_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let (a, b, app) = two_providers().await;
    // B's genuine token, replayed by A's token endpoint.
    let _ = login(&app, &browser(), &b, "b").await;
    let foreign = b.last_id_token().unwrap();
    a.with_knobs(|k| {
        k.token_response_set
            .insert("id_token".into(), json!(foreign));
    });
    let out = login(&app, &app.browser, &a, "a").await;
    out.assert_refused(400, UNVERIFIED);
    out.assert_logged(&logs, "ID token rejected");
    assert_eq!(me(&app, &app.browser).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn case_38_two_providers_with_one_issuer_are_a_config_error() {
    let text = r#"
[server]
public_url = "http://127.0.0.1:8080"
[[provider]]
id = "a"
kind = "oidc"
issuer = "https://idp.example.com"
client_id = "x"
client_secret_file = "/etc/hostname"
[[provider]]
id = "b"
kind = "oidc"
issuer = "https://idp.example.com"
client_id = "y"
client_secret_file = "/etc/hostname"
"#;
    let errors = teamgate::config::Config::parse(text, std::path::Path::new("/t.toml"))
        .unwrap_err()
        .to_string();
    assert!(errors.contains("have the same issuer"), "{errors}");
}

#[tokio::test]
async fn case_39_repeated_state_code_or_iss_parameters_are_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    for name in ["state", "code", "iss"] {
        let callback = rig.callback_url(&rig.app.browser).await;
        let value = param(&callback, name).unwrap();
        let out = rig.hit(&format!("{callback}&{name}={value}")).await;
        out.assert_refused(400, RESPONSE_REFUSED);
        out.assert_logged(&logs, &format!("callback parameter \"{name}\" repeated"));
    }
    rig.assert_nobody_signed_in().await;
    assert_eq!(rig.idp.token_calls(), 0);
}

#[tokio::test]
async fn case_40_an_access_denied_error_shows_a_page_and_consumes_the_state() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp
        .with_knobs(|k| k.authorize_error = Some("access_denied".into()));
    let callback = rig.callback_url(&rig.app.browser).await;
    let out = rig.hit(&callback).await;
    out.assert_refused(403, "Sign-in cancelled");
    out.assert_logged(&logs, "access_denied");
    let again = rig.hit(&callback).await;
    again.assert_refused(400, EXPIRED);
    assert!(out.location.is_none(), "no redirect loop back to the IdP");
    rig.assert_nobody_signed_in().await;
}

#[tokio::test]
async fn case_40_a_token_response_without_id_token_fails() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp
        .with_knobs(|k| k.token_response_remove.push("id_token".into()));
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "without an id_token").await;
}

#[tokio::test]
async fn case_41_the_redirect_uri_ignores_spoofed_host_headers() {
    let rig = Rig::oidc().await;
    let response = rig
        .app
        .browser
        .get(rig.app.url("/login?provider=idp"))
        .header("host", "evil.example.com")
        .header("x-forwarded-host", "evil.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        param(&location, "redirect_uri").unwrap(),
        rig.app.url("/callback/idp")
    );
}

#[tokio::test]
async fn case_42_hostile_return_urls_fall_back_to_the_start_page() {
    let rig = Rig::oidc().await;
    let port = rig.app.port;
    let hostile = [
        "//evil.example.com".to_owned(),
        "///evil.example.com".into(),
        "/\\evil.example.com".into(),
        "\\\\evil.example.com".into(),
        "/%2F%2Fevil.example.com".into(),
        "/%252F%252Fevil.example.com".into(),
        "/%5Cevil.example.com".into(),
        "https://evil.example.com/".into(),
        "http://evil.example.com".into(),
        "javascript:alert(1)".into(),
        "JaVaScRiPt:alert(1)".into(),
        "data:text/html,<script>alert(1)</script>".into(),
        "/\tevil".into(),
        "/%09/evil.example.com".into(),
        "/\r\nLocation: https://evil.example.com".into(),
        "/%0d%0aSet-Cookie:x=1".into(),
        format!("http://127.0.0.1.evil.example.com:{port}/"),
        format!("http://127.0.0.1:{}/", port + 1),
        format!("https://127.0.0.1:{port}/"),
        format!("http://user:pass@127.0.0.1:{port}/"),
        format!("http://evil.example.com@127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}@evil.example.com/"),
        "http:evil.example.com".into(),
        "https:/evil.example.com".into(),
        "//127.0.0.1@evil.example.com".into(),
        "ftp://127.0.0.1/".into(),
        "\u{0000}/x".into(),
        "/x\u{0007}".into(),
        " //evil.example.com".into(),
        "%2F%2Fevil.example.com".into(),
    ];
    for rd in &hostile {
        let b = browser();
        let url = format!(
            "{}?{}",
            rig.app.url("/login"),
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", "idp")
                .append_pair("rd", rd)
                .finish()
        );
        let authorize = b.get(url).send().await.unwrap().headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        let callback = rig.idp.authorize_redirect(&authorize).await;
        let out = hit(&b, &callback).await;
        out.assert_signed_in();
        assert_eq!(out.location.as_deref(), Some("/"), "rd {rd:?} was followed");
    }
    // A same-origin path is kept.
    let b = browser();
    let authorize = b
        .get(
            rig.app
                .url("/login?provider=idp&rd=%2Fapps%2Fgrafana%3Fx%3D1"),
        )
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let out = hit(&b, &rig.idp.authorize_redirect(&authorize).await).await;
    assert_eq!(out.location.as_deref(), Some("/apps/grafana?x=1"));
}

#[tokio::test]
async fn case_43_the_callback_answers_without_referrer_or_code_in_the_next_url() {
    let rig = Rig::oidc().await;
    let out = rig.login().await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers["referrer-policy"], "no-referrer");
    assert_eq!(out.headers["cache-control"], "no-store");
    let location = out.location.clone().unwrap();
    assert!(!location.contains("code="), "{location}");
    assert!(!location.contains("state="), "{location}");
    // An error page from the callback carries the same header and no third-party resource.
    let bad = rig.hit(&rig.app.url("/callback/idp?code=x")).await;
    assert_eq!(bad.headers["referrer-policy"], "no-referrer");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !bad.body.contains(attr),
            "third-party resource ({attr}) in {}",
            bad.body
        );
    }
}

#[tokio::test]
async fn case_44_trace_logs_of_a_full_login_hold_no_code_token_session_id_or_secret() {
    // Every thread: the test's own, and the store's writer, checkpointer and blocking pool.
    let logs = AllThreads::start();
    let rig = Rig::start(
        "oidc",
        Default::default(),
        "refresh_interval_seconds = 1\ngroups_from_userinfo = true",
    )
    .await;
    rig.idp.with_knobs(|k| {
        k.issue_refresh_token = true;
        k.groups_placement = crate::test_idp::GroupsPlacement::UserinfoOnly;
    });
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    let callback = rig.callback_url(&rig.app.browser).await;
    let out = rig.hit(&callback).await;
    out.assert_signed_in();
    // Wait for one refresh, so the refresh token and the refreshed tokens pass through too.
    let calls = rig.idp.token_calls();
    assert!(
        eventually(Duration::from_secs(5), || async {
            rig.idp.token_calls() > calls
        })
        .await
    );
    let _ = rig.hit(&callback).await; // a replay, refused: its log line must not hold the code either
    let _ = me(&rig.app, &rig.app.browser).await;
    let text = logs.text();
    assert!(text.contains("signed in"), "the capture works");
    let mut secrets = vec![
        ("code", param(&callback, "code").unwrap()),
        ("state", param(&callback, "state").unwrap()),
        ("client secret", rig.idp.client_secret()),
    ];
    for request in rig.idp.token_requests() {
        if let Some(r) = request.form("refresh_token") {
            secrets.push(("refresh token", r.to_owned()));
        }
        if let Some(v) = request.form("code_verifier") {
            secrets.push(("PKCE verifier", v.to_owned()));
        }
    }
    for token in rig.idp.issued_access_tokens() {
        secrets.push(("access token", token));
    }
    let id_token = rig.idp.last_id_token().unwrap();
    secrets.push((
        "ID token signature",
        id_token.rsplit('.').next().unwrap().to_owned(),
    ));
    secrets.push((
        "ID token payload",
        id_token.split('.').nth(1).unwrap().to_owned(),
    ));
    let nonce = rig
        .idp
        .last_authorize()
        .unwrap()
        .get("nonce")
        .unwrap()
        .to_owned();
    secrets.push(("nonce", nonce));
    let cookies: Vec<String> = out
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| {
            c.to_str()
                .ok()?
                .split(';')
                .next()?
                .split_once('=')
                .map(|(_, v)| v.to_owned())
        })
        .collect();
    assert!(!cookies.is_empty());
    for c in cookies {
        secrets.push(("session id", c));
    }
    for (what, value) in secrets {
        assert!(value.len() >= 8, "{what} too short to search for");
        assert!(!text.contains(&value), "the log holds the {what}");
    }
}

#[tokio::test]
async fn case_45_the_idp_client_does_not_follow_redirects() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let moved = rig.idp.moved_jwks_url();
    rig.idp.with_knobs(|k| {
        k.redirect(Endpoint::Jwks, &moved);
    });
    let out = hit(&rig.app.browser, &rig.app.url("/login?provider=idp")).await;
    out.assert_refused(503, UNREACHABLE);
    out.assert_logged(&logs, "302");
    assert_eq!(rig.idp.calls(Endpoint::MovedJwks), 0);
}

#[tokio::test]
async fn case_46_the_login_cookie_survives_the_cross_site_return_from_the_idp_in_a_real_browser() {
    use crate::support::{browser::Browser, e2e};
    if !e2e::require_browser("follow the IdP's cross-site redirect back to /callback") {
        return;
    }
    // teamgate at http://localhost:PORT and the IdP at http://127.0.0.1:PORT: different
    // sites, so the return is a cross-site top-level GET, which SameSite=Strict would strip.
    let idp = TestIdp::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::TestDb::fresh(dir.path());
    let public = format!("http://localhost:{port}");
    let block = provider_block(
        PROVIDER,
        "oidc",
        &idp,
        &secret_file(&idp.client_secret()),
        "",
    );
    let text = config(&[(PROVIDER, "id")], &block, "")
        .replace("{PUBLIC_URL}", &public)
        .replace("{DB}", &db.setting);
    let cfg = teamgate::config::Config::parse(&text, &dir.path().join("t.toml")).unwrap();
    let app = teamgate::app::Application::build_with_listener(cfg, listener)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let browser = Browser::start().await;
    browser
        .goto(&format!("{public}/login?provider=idp&rd=%2Fapi%2Fv1%2Fme"))
        .await;
    let url = browser
        .wait_for_url(
            |u| u.starts_with(&format!("{public}/api/v1/me")),
            Duration::from_secs(20),
        )
        .await;
    let body = browser.page_source().await;
    assert!(
        body.contains("\"email\""),
        "not signed in after the cross-site return ({url}): {body}"
    );
    let cookie = browser.cookie("teamgate").await.unwrap();
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"));
}
