//! The hardening round (docs/security-cases.md, section I), the IdP side: the discovery
//! document served stale while the IdP is down, with back-off and no queue of timeouts (I7);
//! the RFC 9207 `iss` checks reached on their own (case 37); every thread's logs scanned for
//! every secret (case 44).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinSet;
use tracing::Level;

use crate::oidc_common::*;
use crate::test_idp::{
    Endpoint, EntraUser, GroupsPlacement, IssParam, LoginSpec, TestIdp, TestIdpOptions,
    okta_group_names, okta_login_spec,
};
use teamgate::idp::provider::{DISCOVERY_BACKOFF_FIRST, METADATA_TTL};

// ---- I7. Discovery: stale while revalidating, back-off ----

/// `/login` with `n` fresh browsers at once: each status and how long it took.
async fn concurrent_logins(rig: &Rig, n: usize) -> Vec<(StatusCode, Duration)> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let url = rig.app.url(&format!("/login?provider={PROVIDER}"));
        set.spawn(async move {
            let started = Instant::now();
            let status = browser().get(url).send().await.unwrap().status();
            (status, started.elapsed())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

fn failures(logs: &LogBuffer) -> usize {
    logs.text().matches("discovery refresh failed").count()
}

#[tokio::test]
async fn a_stale_discovery_document_is_served_at_once_while_the_idp_is_black_holed_and_refetches_back_off()
 {
    let (logs, _guard) = capture_logs(Level::WARN);
    let idp = TestIdp::start().await;
    let rig = Rig::start_with_server(
        "oidc",
        idp,
        "idp_connect_timeout_seconds = 1\nidp_timeout_seconds = 2",
        "",
        "",
    )
    .await;
    let clock = rig.app.state.clock.clone();
    let _ = start_login(&rig.app, &browser(), PROVIDER).await;
    assert_eq!(rig.idp.discovery_calls(), 1);
    // The IdP goes dark (answers nothing for 30 s) and the document's lifetime ends.
    rig.idp.with_knobs(|k| {
        k.delay(Endpoint::Discovery, Duration::from_secs(30));
    });
    clock.advance(METADATA_TTL + Duration::from_secs(1));
    for (status, took) in concurrent_logins(&rig, 20).await {
        assert_eq!(status, StatusCode::SEE_OTHER, "the stale document serves");
        assert!(
            took < Duration::from_millis(1500),
            "a login waited {took:?} for the dark IdP (timeout 2 s)"
        );
    }
    // One refetch, in the background, for all of them.
    assert!(
        eventually(Duration::from_secs(10), || async { failures(&logs) == 1 }).await,
        "{}",
        logs.text()
    );
    assert_eq!(rig.idp.discovery_calls(), 2);
    // Within the back-off: served stale, no fetch.
    for (status, _) in concurrent_logins(&rig, 5).await {
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    assert_eq!(rig.idp.discovery_calls(), 2, "a retry within the back-off");
    // After it: one more fetch, which fails too; the back-off doubles.
    clock.advance(DISCOVERY_BACKOFF_FIRST + Duration::from_secs(1));
    let _ = concurrent_logins(&rig, 5).await;
    assert!(eventually(Duration::from_secs(10), || async { failures(&logs) == 2 }).await);
    assert_eq!(rig.idp.discovery_calls(), 3);
    clock.advance(DISCOVERY_BACKOFF_FIRST + Duration::from_secs(1));
    let _ = concurrent_logins(&rig, 5).await;
    assert_eq!(
        rig.idp.discovery_calls(),
        3,
        "the second back-off is twice the first; log:\n{}",
        logs.text()
    );
    // The IdP comes back: after the back-off one refetch replaces the document.
    rig.idp.with_knobs(|k| {
        k.clear_faults();
    });
    clock.advance(DISCOVERY_BACKOFF_FIRST * 2);
    let _ = concurrent_logins(&rig, 5).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            rig.idp.discovery_calls() == 4
        })
        .await
    );
    rig.login().await.assert_signed_in();
    let _ = concurrent_logins(&rig, 5).await;
    assert_eq!(rig.idp.discovery_calls(), 4, "the new document is fresh");
}

#[tokio::test]
async fn concurrent_logins_to_an_unreachable_idp_share_one_discovery_attempt_instead_of_queueing_timeouts()
 {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| {
        k.delay(Endpoint::Discovery, Duration::from_secs(30));
    });
    let rig = Rig::start_with_server(
        "oidc",
        idp,
        "idp_connect_timeout_seconds = 1\nidp_timeout_seconds = 2",
        "",
        "",
    )
    .await;
    // Twenty logins at once with nothing cached: they wait for one fetch together.
    for (status, took) in concurrent_logins(&rig, 20).await {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            took < Duration::from_secs(4),
            "a login waited {took:?}: timeouts were queued"
        );
    }
    assert_eq!(rig.idp.discovery_calls(), 1, "one attempt for all of them");
    // Within the back-off a login is refused at once, without a fetch.
    let started = Instant::now();
    let out = hit(&browser(), &rig.app.url("/login?provider=idp")).await;
    out.assert_refused(503, UNREACHABLE);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(rig.idp.discovery_calls(), 1);
    // The IdP is back and the back-off over: logins work, without a restart.
    rig.idp.with_knobs(|k| {
        k.clear_faults();
    });
    rig.app
        .state
        .clock
        .advance(DISCOVERY_BACKOFF_FIRST + Duration::from_secs(1));
    rig.login().await.assert_signed_in();
}

// ---- Case 37: the RFC 9207 `iss` checks, each reached on its own ----

async fn multi_tenant() -> Rig {
    Rig::start(
        "entra",
        TestIdpOptions::entra_multi_tenant(),
        &format!("tenant = \"common\"\nallowed_tenants = [\"{TENANT_A}\", \"{TENANT_B}\"]"),
    )
    .await
}

/// Multi-tenant Entra: the response's `iss` names another admitted tenant than the ID token.
/// Each is acceptable alone (both tenants are allowed, the token verifies), so only the
/// comparison of the two in `finish` (RFC 9207 §2.4) refuses it.
#[tokio::test]
async fn case_37_multi_tenant_a_response_iss_of_another_admitted_tenant_than_the_id_token_is_refused()
 {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = multi_tenant().await;
    let alice = EntraUser::new(TENANT_A, "alice@a.example.com");
    let tenant_b = rig
        .idp
        .token_issuer(&EntraUser::new(TENANT_B, "x@b.example.com").login_spec());
    rig.idp.set_next_login(alice.login_spec());
    rig.idp
        .with_knobs(|k| k.iss_param = IssParam::Custom(tenant_b.clone()));
    let out = rig.login().await;
    out.assert_refused(400, RESPONSE_REFUSED);
    out.assert_logged(&logs, "differs from the ID token's issuer");
    rig.assert_nobody_signed_in().await;
    // The same login with the matching tenant's `iss` goes through.
    rig.idp.with_knobs(|k| {
        k.iss_param = IssParam::Custom(rig.idp.token_issuer(&alice.login_spec()));
    });
    rig.login().await.assert_signed_in();
}

/// An `iss` that is no tenant's issuer is refused by `check_response_issuer` BEFORE the code
/// is redeemed: a mixed-up code never reaches the token endpoint (RFC 9207 §2.4, BCP §4.4).
#[tokio::test]
async fn case_37_a_response_iss_that_is_no_tenants_issuer_is_refused_before_the_code_is_redeemed() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = multi_tenant().await;
    rig.idp
        .set_next_login(EntraUser::new(TENANT_A, "alice@a.example.com").login_spec());
    rig.idp.with_knobs(|k| {
        k.iss_param = IssParam::Custom(format!("https://evil.example.com/{TENANT_A}/v2.0"));
    });
    let out = rig.login().await;
    out.assert_refused(400, RESPONSE_REFUSED);
    out.assert_logged(&logs, "is not the expected");
    assert_eq!(rig.idp.token_calls(), 0, "the code was redeemed");
    rig.assert_nobody_signed_in().await;
}

// ---- Case 44: every thread, every secret ----

/// Okta with its Groups API token: a user in 150 groups makes teamgate call the API with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_44_logs_of_every_thread_hold_no_access_token_or_okta_api_token() {
    let logs = AllThreads::start();
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| {
        k.okta_page_size_cap = 50;
        k.issue_refresh_token = true;
        k.groups_placement = GroupsPlacement::Both;
    });
    let extra = format!(
        "okta_api_token_file = \"{}\"\nrefresh_interval_seconds = 1",
        secret_file(&idp.okta_api_token())
    );
    let rig = Rig::start_on("okta", idp, &extra, "").await;
    let mut groups = okta_group_names(149);
    groups.push(STAFF_GROUP.to_owned());
    let spec: LoginSpec = okta_login_spec("a@example.com", &groups);
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert!(rig.idp.okta_api_calls() > 0, "the API token was used");
    // A refresh too: its access token passes through the logs' reach as well.
    let calls = rig.idp.token_calls();
    assert!(
        eventually(Duration::from_secs(5), || async {
            rig.idp.token_calls() > calls
        })
        .await
    );
    let _ = me(&rig.app, &rig.app.browser).await;
    let text = logs.text();
    assert!(text.contains("signed in"), "the capture works");
    assert!(
        !logs.other_threads().is_empty(),
        "the capture sees the runtime's other threads"
    );
    let mut secrets = vec![("Okta API token", rig.idp.okta_api_token())];
    let access = rig.idp.issued_access_tokens();
    assert!(access.len() >= 2, "login and refresh access tokens");
    for token in access {
        secrets.push(("access token", token));
    }
    for (what, value) in secrets {
        assert!(value.len() >= 8, "{what} too short to search for");
        assert!(!text.contains(&value), "the log holds the {what}");
    }
}
