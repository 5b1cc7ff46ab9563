//! security-cases section B: ID-token and claim checks beyond the certification suite (19-30):
//! times with skew, audiences and `azp`, nonce and issuer presence, algorithm confusion, key
//! selection, malformed tokens (with a property test standing in for cargo-fuzz), refreshed
//! tokens, Entra multi-tenant issuers, the identity key, group claim shapes and overage.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use tracing::Level;

use crate::oidc_common::*;
use crate::test_idp::{
    Alg, EntraUser, GroupsPlacement, Kid, LoginSpec, TestIdpOptions, TokenShape, entra_group_id,
    unix_now,
};

#[tokio::test]
async fn case_19_a_token_expired_six_minutes_ago_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("exp", json!(unix_now() - 360));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "expired").await;
}

#[tokio::test]
async fn case_19_a_token_expired_thirty_seconds_ago_is_accepted_within_the_sixty_second_skew() {
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("exp", json!(unix_now() - 30));
    });
    rig.login().await.assert_signed_in();
}

#[tokio::test]
async fn case_19_a_token_without_exp_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("exp");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "exp").await;
}

#[tokio::test]
async fn case_20_a_token_issued_a_week_ago_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("iat", json!(unix_now() - 7 * 24 * 3600));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "too old").await;
}

#[tokio::test]
async fn case_20_a_token_issued_beyond_the_skew_in_the_future_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("iat", json!(unix_now() + 300));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "in the future").await;
}

#[tokio::test]
async fn case_21_an_extra_untrusted_audience_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let client = rig.idp.client_id();
    rig.idp.with_knobs(|k| {
        k.set_claim("aud", json!([client, "untrusted-app"]));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "not a trusted audience").await;
}

#[tokio::test]
async fn case_21_an_audience_array_holding_only_the_client_is_accepted() {
    let rig = Rig::oidc().await;
    let client = rig.idp.client_id();
    rig.idp.with_knobs(|k| {
        k.set_claim("aud", json!([client]));
    });
    rig.login().await.assert_signed_in();
}

#[tokio::test]
async fn case_21_an_azp_naming_another_client_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("azp", json!("another-client"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "azp").await;
}

#[tokio::test]
async fn case_22_a_token_without_the_nonce_that_was_sent_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("nonce");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "nonce").await;
}

#[tokio::test]
async fn case_22_a_token_without_iss_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("iss");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "iss").await;
}

#[tokio::test]
async fn case_23_an_hs256_token_macd_with_the_rsa_public_key_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.alg = Alg::Hs256WithRsaPublicKey);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "HS256").await;
}

#[tokio::test]
async fn case_23_an_algorithm_outside_the_allow_list_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.header_set.insert("alg".into(), json!("PS512"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "is not one of").await;
}

#[tokio::test]
async fn case_23_a_null_algorithm_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.header_set.insert("alg".into(), serde_json::Value::Null);
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "code exchange failed").await;
}

#[tokio::test]
async fn case_24_a_key_set_with_a_duplicate_kid_is_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.jwks_duplicate_kid = true);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "eligible").await;
}

#[tokio::test]
async fn case_24_an_encryption_key_is_never_used_to_verify() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let rogue = rig.idp.rogue_kid();
    rig.idp.with_knobs(|k| {
        k.jwks_enc_key = true;
        k.sign_with_rogue_key = true;
        k.kid = Kid::Fixed(rogue);
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "unknown key").await;
}

#[tokio::test]
async fn case_24_a_key_whose_alg_does_not_match_its_type_is_never_used() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.jwks_alg_mismatch = true);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "unknown key").await;
}

#[tokio::test]
async fn case_25_an_unknown_crit_header_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.header_set
            .insert("crit".into(), json!(["urn:example:unknown"]));
        k.header_set
            .insert("urn:example:unknown".into(), json!(true));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "critical").await;
}

#[tokio::test]
async fn case_25_an_unexpected_typ_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.header_set.insert("typ".into(), json!("at+jwt"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "JWT type").await;
}

#[tokio::test]
async fn case_25_a_five_segment_nested_token_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.shape = TokenShape::FiveSegments);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "code exchange failed").await;
}

#[tokio::test]
async fn case_25_a_token_with_a_non_json_payload_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.shape = TokenShape::NonJsonPayload);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "code exchange failed").await;
}

/// Arbitrary and near-JWT strings go through the real callback (token parse, verifier) as
/// `id_token`. The same code is fuzzed with cargo-fuzz on nightly (`fuzz/`, target `id_token`).
#[test]
fn case_25_malformed_id_tokens_are_refused_with_a_4xx_and_never_crash_the_server() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rig = runtime.block_on(Rig::oidc());
    let segment = "[A-Za-z0-9_=+/.-]{0,40}";
    let strategy = prop_oneof![
        any::<String>(),
        proptest::collection::vec(segment, 0..7).prop_map(|parts| parts.join(".")),
        (segment, segment).prop_map(|(a, b)| format!("eyJhbGciOiJSUzI1NiJ9.{a}.{b}")),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |token| {
            rig.idp.with_knobs(|k| {
                k.token_response_set.insert("id_token".into(), json!(token));
            });
            let status = runtime.block_on(async { rig.login().await.status });
            prop_assert!(status.is_client_error(), "status {status} for {token:?}");
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        rig.assert_nobody_signed_in().await;
        rig.idp.reset_knobs();
        rig.login().await.assert_signed_in();
    });
}

#[tokio::test]
async fn case_26_a_refreshed_id_token_naming_another_subject_is_rejected_and_the_grant_dropped() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "refresh_interval_seconds = 1",
    )
    .await;
    rig.idp.with_knobs(|k| k.issue_refresh_token = true);
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    rig.login().await.assert_signed_in();
    assert_eq!(teams_of(&rig.app, "u-1").await, vec!["staff".to_owned()]);
    // From now on the IdP's refresh answers for another user.
    rig.idp
        .set_next_login(LoginSpec::new("u-2", "mallory@example.com"));
    let dropped = eventually(Duration::from_secs(5), || async {
        logs.text()
            .contains("the refreshed ID token names another iss or sub")
    })
    .await;
    assert!(dropped, "log:\n{}", logs.text());
    assert_eq!(
        teams_of(&rig.app, "u-1").await,
        vec!["staff".to_owned()],
        "teams untouched"
    );
    assert_eq!(
        subjects(&rig.app).await,
        vec!["u-1".to_owned()],
        "no user row for u-2"
    );
    let calls = rig.idp.token_calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rig.idp.token_calls(),
        calls,
        "a dropped grant is not used again"
    );
}

#[tokio::test]
async fn case_26_a_refreshed_id_token_naming_another_issuer_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "refresh_interval_seconds = 1",
    )
    .await;
    rig.idp.with_knobs(|k| k.issue_refresh_token = true);
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| {
        k.set_claim("iss", json!("https://other-issuer.example.com"));
    });
    let dropped = eventually(Duration::from_secs(5), || async {
        logs.text().contains("refresh grant dropped") && logs.text().contains("Invalid issuer")
    })
    .await;
    assert!(dropped, "log:\n{}", logs.text());
}

async fn multi_tenant() -> Rig {
    Rig::start(
        "entra",
        TestIdpOptions::entra_multi_tenant(),
        &format!("tenant = \"common\"\nallowed_tenants = [\"{TENANT_A}\", \"{TENANT_B}\"]"),
    )
    .await
}

#[tokio::test]
async fn case_27_multi_tenant_a_user_of_an_allowed_tenant_signs_in_with_the_tenant_issuer() {
    let rig = multi_tenant().await;
    let user = EntraUser::new(TENANT_A, "alice@a.example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.login_spec());
    rig.login().await.assert_signed_in();
    assert_eq!(
        subjects(&rig.app).await,
        vec![format!("{TENANT_A}/{}", user.oid)]
    );
    assert_eq!(
        teams_of(&rig.app, &format!("{TENANT_A}/{}", user.oid)).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn case_27_multi_tenant_a_user_of_a_foreign_tenant_is_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = multi_tenant().await;
    rig.idp
        .set_next_login(EntraUser::new(TENANT_FOREIGN, "eve@evil.example.com").login_spec());
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "is not in allowed_tenants").await;
}

#[tokio::test]
async fn case_27_multi_tenant_a_tid_that_is_not_a_guid_is_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = multi_tenant().await;
    let mut spec = EntraUser::new(TENANT_A, "alice@a.example.com").login_spec();
    spec.extra_claims
        .insert("tid".into(), json!("organizations"));
    rig.idp.set_next_login(spec);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "is not a GUID").await;
}

#[tokio::test]
async fn case_27_multi_tenant_a_tid_differing_from_the_tenant_in_iss_is_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = multi_tenant().await;
    let spec = EntraUser::new(TENANT_A, "alice@a.example.com").login_spec();
    let iss = rig.idp.token_issuer(&spec).replace(TENANT_A, TENANT_B);
    rig.idp.set_next_login(spec);
    rig.idp.with_knobs(|k| {
        k.set_claim("iss", json!(iss));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "Invalid issuer").await;
}

#[tokio::test]
async fn case_27_a_multi_tenant_provider_without_allowed_tenants_is_a_config_error() {
    let text = r#"
[server]
public_url = "http://127.0.0.1:8080"
[[provider]]
id = "entra"
kind = "entra"
tenant = "organizations"
issuer = "https://login.microsoftonline.com/organizations/v2.0"
client_id = "x"
client_secret_file = "/dev/null/none"
"#;
    let errors = teamgate::config::Config::parse(text, std::path::Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(errors.contains("needs allowed_tenants"), "{errors}");
}

#[tokio::test]
async fn case_28_another_tenants_user_with_the_same_email_is_a_new_identity() {
    let rig = multi_tenant().await;
    let mut alice = EntraUser::new(TENANT_A, "alice@example.com").with_groups([STAFF_GROUP]);
    alice.email = Some("alice@example.com".into());
    let mut impostor = EntraUser::new(TENANT_B, "alice@example.com");
    impostor.email = Some("alice@example.com".into());
    impostor.oid = alice.oid.clone();
    rig.idp.set_next_login(alice.login_spec());
    rig.login().await.assert_signed_in();
    rig.idp.set_next_login(impostor.login_spec());
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let subjects = subjects(&rig.app).await;
    assert_eq!(
        subjects,
        vec![
            format!("{TENANT_A}/{}", alice.oid),
            format!("{TENANT_B}/{}", alice.oid)
        ]
    );
    assert_eq!(
        teams_of(&rig.app, &subjects[1]).await,
        vec!["everyone".to_owned()],
        "nothing of alice's is linked"
    );
}

#[tokio::test]
async fn case_28_an_unverified_email_is_not_trusted_for_config_membership() {
    let rig = Rig::start_with_teams(
        "oidc",
        TestIdpOptions::default(),
        "",
        "[[team]]\nid = \"ceo-office\"\nroles = [{ scope = \"org/acme\", role = \"owner\" }]\nmembers = [\"ceo@example.com\"]\n",
    )
    .await;
    let mut spec = LoginSpec::new("u-attacker", "ceo@example.com");
    spec.email_verified = Some(false);
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, "u-attacker").await,
        vec!["everyone".to_owned()]
    );
    let mut absent = LoginSpec::new("u-attacker-2", "ceo@example.com");
    absent.email_verified = None;
    rig.idp.set_next_login(absent);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, "u-attacker-2").await,
        vec!["everyone".to_owned()]
    );
    let verified = LoginSpec::new("u-ceo", "ceo@example.com");
    rig.idp.set_next_login(verified);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, "u-ceo").await,
        vec!["ceo-office".to_owned()]
    );
}

#[tokio::test]
async fn case_29_a_groups_array_maps_to_teams() {
    let rig = Rig::oidc().await;
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "a@example.com").with_groups(["other", STAFF_GROUP]));
    rig.login().await.assert_signed_in();
    assert_eq!(teams_of(&rig.app, "u-1").await, vec!["staff".to_owned()]);
}

#[tokio::test]
async fn case_29_a_single_string_group_is_one_group() {
    let rig = Rig::oidc().await;
    let mut spec = LoginSpec::new("u-1", "a@example.com");
    spec.groups = Some(json!(STAFF_GROUP));
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert_eq!(
        claims_groups_of(&rig.app, "u-1").await,
        Some(vec![STAFF_GROUP.to_owned()])
    );
}

#[tokio::test]
async fn case_29_group_objects_or_numbers_are_a_malformed_claim() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    let mut spec = LoginSpec::new("u-1", "a@example.com");
    spec.groups = Some(json!([{ "id": STAFF_GROUP }, 42]));
    rig.idp.set_next_login(spec);
    assert_login_refused(&rig, &logs, 400, GROUPS_UNREADABLE, "groups claim rejected").await;
}

#[tokio::test]
async fn case_29_an_empty_groups_array_is_not_an_absent_claim() {
    // With groups_from_userinfo, an absent claim sends teamgate to userinfo; `[]` is an
    // answer ("no groups") and does not.
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "groups_from_userinfo = true",
    )
    .await;
    let mut empty = LoginSpec::new("u-1", "a@example.com");
    empty.groups = Some(json!([]));
    rig.idp.set_next_login(empty);
    rig.idp
        .with_knobs(|k| k.groups_placement = GroupsPlacement::IdTokenOnly);
    rig.login().await.assert_signed_in();
    assert_eq!(rig.idp.userinfo_calls(), 0);
    assert_eq!(claims_groups_of(&rig.app, "u-1").await, Some(vec![]));
    let mut absent = LoginSpec::new("u-2", "b@example.com").with_groups([STAFF_GROUP]);
    absent.groups = Some(json!([STAFF_GROUP]));
    rig.idp.set_next_login(absent);
    rig.idp
        .with_knobs(|k| k.groups_placement = GroupsPlacement::UserinfoOnly);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(rig.idp.userinfo_calls(), 1);
    assert_eq!(teams_of(&rig.app, "u-2").await, vec!["staff".to_owned()]);
}

#[tokio::test]
async fn case_30_an_overage_token_is_never_read_as_zero_groups() {
    let tid = TENANT_A;
    let rig = entra(tid, "").await;
    let user = EntraUser::new(tid, "alice@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.login_spec());
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    // Next login: overage, and Graph is down. The staff team must stay.
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.idp.with_knobs(|k| {
        k.fail(crate::test_idp::Endpoint::Graph, 503);
    });
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    assert_eq!(
        claims_groups_of(&rig.app, &user.oid).await,
        Some(vec![STAFF_GROUP.to_owned()])
    );
    let _ = entra_group_id(1);
}

#[tokio::test]
async fn an_at_hash_that_does_not_match_the_access_token_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "at_hash does not match").await;
}
