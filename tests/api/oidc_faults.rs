//! security-cases section H, cases 79-83: the key cache under rotation, floods and a broken
//! JWKS endpoint, and an IdP that is black-holed or down while teamgate keeps serving
//! everything else.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinSet;
use tracing::Level;

use crate::helpers::spawn_app;
use crate::oidc_common::*;
use crate::test_idp::{Endpoint, Kid, TestIdp};

#[tokio::test]
async fn case_79_an_unknown_kid_causes_exactly_one_refetch_and_then_verifies() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    assert_eq!(rig.idp.jwks_calls(), 1);
    rig.idp.with_knobs(|k| k.jwks_keep_previous = false);
    rig.idp.rotate_key();
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(rig.idp.jwks_calls(), 2);
}

#[tokio::test]
async fn case_79_a_kid_still_unknown_after_the_refetch_is_rejected_without_a_second_fetch() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let _ = start_login(&rig.app, &browser(), PROVIDER).await; // discovery: the first JWKS fetch
    rig.idp
        .with_knobs(|k| k.kid = Kid::Fixed("no-such-key-1".into()));
    let out = assert_login_refused(&rig, &logs, 400, UNVERIFIED, "unknown key").await;
    assert_eq!(rig.idp.jwks_calls(), 2, "one refetch for the unknown kid");
    rig.idp
        .with_knobs(|k| k.kid = Kid::Fixed("no-such-key-2".into()));
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "unknown key").await;
    assert_eq!(
        rig.idp.jwks_calls(),
        2,
        "no second fetch within the cooldown"
    );
    assert!(logs.text().contains("JWKS refetch skipped (cooldown)"));
    let _ = out;
}

/// Prepare `n` browsers, each with a login waiting at its callback URL.
async fn waiting_callbacks(rig: &Rig, n: usize) -> Vec<(reqwest::Client, String)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let b = browser();
        let url = rig.callback_url(&b).await;
        out.push((b, url));
    }
    out
}

async fn hit_all(callbacks: Vec<(reqwest::Client, String)>) -> Vec<StatusCode> {
    let mut set = JoinSet::new();
    for (b, url) in callbacks {
        set.spawn(async move { b.get(url).send().await.unwrap().status() });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses
}

#[tokio::test]
async fn case_80_a_hundred_parallel_callbacks_with_a_new_kid_cause_one_fetch() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| k.jwks_keep_previous = false);
    rig.idp.rotate_key();
    // The IdP signs at the token endpoint, so all 100 tokens carry the new kid.
    let callbacks = waiting_callbacks(&rig, 100).await;
    let statuses = hit_all(callbacks).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert_eq!(
        rig.idp.jwks_calls(),
        2,
        "single flight: one refetch for 100 callbacks"
    );
}

#[tokio::test]
async fn case_80_a_flood_of_bogus_kids_fetches_at_most_once_per_cooldown() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    let callbacks = waiting_callbacks(&rig, 200).await;
    rig.idp.with_knobs(|k| k.kid = Kid::Fixed("bogus".into()));
    let statuses = hit_all(callbacks).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert!(
        rig.idp.jwks_calls() <= 2,
        "{} JWKS fetches for 200 bogus kids",
        rig.idp.jwks_calls()
    );
    assert_eq!(
        signed_in_sessions(&rig.app).await,
        1,
        "only the first, honest login"
    );
}

#[tokio::test]
async fn case_81_a_failing_jwks_endpoint_keeps_the_cached_keys_working() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::Jwks, 500);
    });
    // A token naming an unknown key makes teamgate refetch; the 500 changes nothing.
    rig.idp
        .with_knobs(|k| k.kid = Kid::Fixed("rotated-away".into()));
    let _ = login(&rig.app, &browser(), &rig.idp, PROVIDER).await;
    assert!(
        logs.text()
            .contains("JWKS refetch failed; keeping the cached keys"),
        "{}",
        logs.text()
    );
    rig.idp.with_knobs(|k| k.kid = Kid::Published);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
}

#[tokio::test]
async fn case_81_malformed_entries_are_skipped_and_the_good_keys_used() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| {
        k.jwks_malformed_entries = true;
        k.jwks_keep_previous = false;
    });
    rig.idp.rotate_key();
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(rig.idp.jwks_calls(), 2);
}

#[tokio::test]
async fn case_81_an_empty_key_set_is_ignored_and_the_good_cache_kept() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| {
        k.jwks_empty = true;
        k.kid = Kid::Fixed("unknown".into());
    });
    let _ = login(&rig.app, &browser(), &rig.idp, PROVIDER).await;
    assert_eq!(rig.idp.jwks_calls(), 2);
    assert!(
        logs.text()
            .contains("fetched JWKS has no signing key; keeping the cached keys")
    );
    rig.idp.with_knobs(|k| k.kid = Kid::Published);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
}

const SCIM_ON: &str = "scim = { enabled = true }";

/// SCIM of `provider` answers a query (it never talks to the IdP).
async fn assert_scim_answers(app: &crate::helpers::TestApp, provider: &str) {
    let token = crate::scim_support::token(app, provider).await;
    let response = reqwest::Client::new()
        .get(app.url(&format!(
            "/scim/v2/{provider}/Users?filter=userName%20eq%20%22nobody%22"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "SCIM of {provider}");
}

/// A TCP server that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn case_82_a_black_holed_idp_gives_503_within_the_timeouts_while_others_keep_working() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let ok = TestIdp::start().await;
    let slow = TestIdp::start().await;
    let dark = black_hole().await;
    let dark_block = format!(
        "\n[[provider]]\nid = \"dark\"\nkind = \"oidc\"\nissuer = \"{dark}\"\nclient_id = \"x\"\nclient_secret_file = \"{}\"\n",
        secret_file("s")
    );
    // Timeouts shorter than the defaults (2 s connect, 10 s in all) keep the test short; the
    // black holes must answer after the configured time, not before and not much after.
    let blocks = format!(
        "idp_connect_timeout_seconds = 1\nidp_timeout_seconds = 3\n{}{}{dark_block}",
        provider_block(
            "ok",
            "oidc",
            &ok,
            &secret_file(&ok.client_secret()),
            SCIM_ON
        ),
        provider_block(
            "slow",
            "oidc",
            &slow,
            &secret_file(&slow.client_secret()),
            ""
        ),
    );
    let app = spawn_app(&config(&[("ok", "id")], &blocks, "")).await;
    // The token endpoint of `slow` answers after 30 s: a black hole after discovery.
    let slow_browser = browser();
    let slow_callback = callback_url(&app, &slow_browser, &slow, "slow").await;
    slow.with_knobs(|k| {
        k.delay(Endpoint::Token, Duration::from_secs(30));
    });
    let started = Instant::now();
    let dark_login = {
        let b = browser();
        let url = app.url("/login?provider=dark");
        tokio::spawn(async move {
            (
                outcome(b.get(url).send().await.unwrap()).await,
                Instant::now(),
            )
        })
    };
    let slow_login = {
        let b = slow_browser.clone();
        tokio::spawn(async move {
            (
                outcome(b.get(slow_callback).send().await.unwrap()).await,
                Instant::now(),
            )
        })
    };
    // Meanwhile: another provider, health and a signed-in session all answer at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let healthy = login(&app, &app.browser, &ok, "ok").await;
    healthy.assert_signed_in();
    assert_eq!(me(&app, &app.browser).await.0, StatusCode::OK);
    assert_eq!(
        app.browser
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_scim_answers(&app, "ok").await;
    let others_done = Instant::now();
    for (name, task) in [("discovery", dark_login), ("token", slow_login)] {
        let (out, done) = task.await.unwrap();
        let took = done - started;
        assert!(
            others_done < done,
            "other providers were held up until the {name} black hole answered ({:?})",
            others_done - t
        );
        out.assert_refused(503, UNREACHABLE);
        out.assert_logged(&logs, "identity provider unreachable");
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(7),
            "{name} black hole answered after {took:?}"
        );
    }
}

#[tokio::test]
async fn case_82_an_oversized_idp_response_is_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.huge_body(Endpoint::Discovery, 3 * 1024 * 1024);
    });
    let out = hit(&rig.app.browser, &rig.app.url("/login?provider=idp")).await;
    out.assert_refused(503, UNREACHABLE);
    out.assert_logged(&logs, "larger than");
}

#[tokio::test]
async fn case_83_teamgate_starts_with_the_idp_down_and_logins_work_once_it_is_up_without_a_restart()
{
    let (logs, _guard) = capture_logs(Level::INFO);
    let up = TestIdp::start().await;
    let down = TestIdp::start().await;
    down.with_knobs(|k| {
        for e in [Endpoint::Discovery, Endpoint::Jwks, Endpoint::Token] {
            k.fail(e, 503);
        }
    });
    let blocks = format!(
        "{}{}",
        provider_block("up", "oidc", &up, &secret_file(&up.client_secret()), ""),
        provider_block(
            "down",
            "oidc",
            &down,
            &secret_file(&down.client_secret()),
            SCIM_ON
        ),
    );
    let app = spawn_app(&config(&[("up", "id"), ("down", "id")], &blocks, "")).await;
    // An existing session (through the healthy provider) keeps working.
    login(&app, &app.browser, &up, "up")
        .await
        .assert_signed_in();
    let b = browser();
    let refused = hit(&b, &app.url("/login?provider=down")).await;
    refused.assert_refused(503, UNREACHABLE);
    refused.assert_logged(&logs, "discovery of");
    assert_scim_answers(&app, "down").await;
    assert_eq!(me(&app, &app.browser).await.0, StatusCode::OK);
    assert_eq!(
        app.browser
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    down.with_knobs(|k| {
        k.clear_faults();
    });
    // Discovery failures back off before the next attempt (security cases, I7); once that
    // time has passed, the next login fetches again and works.
    app.state.clock.advance(
        teamgate::idp::provider::DISCOVERY_BACKOFF_MAX + std::time::Duration::from_secs(1),
    );
    login(&app, &b, &down, "down").await.assert_signed_in();
    assert_eq!(me(&app, &b).await.0, StatusCode::OK);
}
