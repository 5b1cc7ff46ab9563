//! security-cases section A: the OpenID Foundation's relying-party certification cases (Basic RP
//! 1-14, Config RP 15-18), each played against the test IdP misbehaving in that one way.
//! Every refusal is checked the same way: status and page, the log line naming the reason,
//! and no session or user row left behind.

use serde_json::json;
use tracing::Level;

use crate::oidc_common::*;
use crate::test_idp::{Alg, Endpoint, GroupsPlacement, Kid, LoginSpec, TokenAuth};

#[tokio::test]
async fn case_01_an_honest_provider_signs_the_user_in_with_openid_nonce_and_the_registered_redirect_uri()
 {
    let rig = Rig::oidc().await;
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    let out = rig.login().await;
    out.assert_signed_in();
    let (status, me_json) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, 200);
    assert_eq!(me_json["email"], "alice@example.com", "{me_json}");
    let auth = rig.idp.last_authorize().unwrap();
    let scope = auth.get("scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "scope {scope}");
    assert_eq!(
        auth.get("redirect_uri").unwrap(),
        rig.app.url("/callback/idp")
    );
    assert_eq!(auth.get("response_type"), Some("code"));
    let nonce = auth
        .get("nonce")
        .expect("a nonce is sent in the code flow too");
    assert!(
        nonce.len() <= 43 && nonce.len() >= 22,
        "nonce length {}",
        nonce.len()
    );
    assert!(
        nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "nonce {nonce}"
    );
    assert_eq!(teams_of(&rig.app, "u-1").await, vec!["staff".to_owned()]);
}

#[tokio::test]
async fn case_02_an_id_token_with_a_wrong_issuer_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("iss", json!("https://evil.example.com"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "Invalid issuer").await;
}

#[tokio::test]
async fn case_03_an_id_token_without_sub_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("sub");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "sub").await;
}

#[tokio::test]
async fn case_04_an_id_token_for_another_audience_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("aud", json!("some-other-client"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "Invalid audiences").await;
}

#[tokio::test]
async fn case_04_an_id_token_without_aud_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("aud");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "aud").await;
}

#[tokio::test]
async fn case_05_an_id_token_without_iat_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("iat");
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "iat").await;
}

#[tokio::test]
async fn case_06_a_token_without_kid_verifies_against_a_single_key_set() {
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.kid = Kid::Omit;
        k.jwks_omit_kid = true;
    });
    rig.login().await.assert_signed_in();
}

#[tokio::test]
async fn case_07_a_token_without_kid_is_rejected_when_several_keys_could_match() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    // Two published keys (the rotated one and its predecessor), neither with a kid: pinned to
    // openidconnect's AmbiguousKeyId refusal rather than trying every key.
    rig.idp.rotate_key();
    rig.idp.with_knobs(|k| {
        k.kid = Kid::Omit;
        k.jwks_omit_kid = true;
        k.jwks_keep_previous = true;
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "eligible").await;
}

#[tokio::test]
async fn case_08_a_valid_rs256_token_is_accepted() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    let token = rig.idp.last_id_token().unwrap();
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&base64_url(header)).unwrap();
    assert_eq!(header["alg"], "RS256");
}

#[tokio::test]
async fn case_09_an_unsigned_alg_none_token_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.alg = Alg::None);
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "ID token rejected").await;
}

#[tokio::test]
async fn case_10_a_token_with_a_corrupted_signature_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.corrupt_signature = true);
    assert_login_refused(
        &rig,
        &logs,
        400,
        UNVERIFIED,
        "Signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn case_10_an_es256_token_with_a_corrupted_signature_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.alg = Alg::Es256;
        k.jwks_ec_key = true;
        k.corrupt_signature = true;
    });
    assert_login_refused(
        &rig,
        &logs,
        400,
        UNVERIFIED,
        "Signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn case_11_userinfo_for_another_subject_is_discarded_and_the_login_refused() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::start("oidc", Default::default(), "groups_from_userinfo = true").await;
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    rig.idp.with_knobs(|k| {
        k.groups_placement = GroupsPlacement::UserinfoOnly;
        k.userinfo_set.insert("sub".into(), json!("someone-else"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "userinfo sub").await;
}

#[tokio::test]
async fn case_12_a_token_with_a_wrong_nonce_is_rejected() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.set_claim("nonce", json!("not-the-nonce-teamgate-sent"));
    });
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "nonce").await;
}

#[tokio::test]
async fn case_13_the_needed_scopes_are_requested_and_absent_optional_claims_are_tolerated() {
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| {
        k.remove_claim("email");
        k.remove_claim("email_verified");
        k.remove_claim("name");
    });
    rig.login().await.assert_signed_in();
    let scope = rig
        .idp
        .last_authorize()
        .unwrap()
        .get("scope")
        .unwrap()
        .to_owned();
    for needed in ["openid", "email", "profile"] {
        assert!(
            scope.split(' ').any(|s| s == needed),
            "scope {scope} lacks {needed}"
        );
    }
    let email = crate::helpers::sql_one(&rig.app.state, "SELECT email FROM users", &[]).await;
    assert_eq!(email, None);
}

#[tokio::test]
async fn case_14_the_token_request_uses_http_basic_with_the_secret_form_encoded() {
    let rig = Rig::oidc().await;
    rig.idp.with_knobs(|k| k.token_auth = TokenAuth::BasicOnly);
    rig.login().await.assert_signed_in();
    let secret = rig.idp.client_secret();
    assert!(
        secret.contains(':')
            && secret.contains('+')
            && secret.contains('%')
            && secret.contains('~')
    );
    let request = rig.idp.last_token_request().unwrap();
    assert_eq!(
        request.basic_credentials(),
        Some((rig.idp.client_id(), secret))
    );
    assert_eq!(
        request.form("client_secret"),
        None,
        "the secret must not also be posted"
    );
}

#[tokio::test]
async fn case_15_endpoints_are_always_taken_from_discovery() {
    // The IdP's authorize, token, userinfo and JWKS paths carry a random per-run prefix, so
    // guessing them fails: a successful login proves they came from the document.
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    assert!(rig.idp.discovery_calls() >= 1);
    assert_eq!(rig.idp.jwks_calls(), 1);
    assert!(rig.idp.last_authorize().is_some());
}

#[tokio::test]
async fn case_16_a_discovery_document_naming_another_issuer_refuses_the_provider() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::oidc().await;
    rig.idp
        .with_knobs(|k| k.discovery_issuer = Some("https://evil.example.com".into()));
    let out = hit(&rig.app.browser, &rig.app.url("/login?provider=idp")).await;
    out.assert_refused(503, UNREACHABLE);
    out.assert_logged(&logs, "is not the configured");
    assert_eq!(rig.idp.authorize_calls(), 0);
    rig.assert_nobody_signed_in().await;
}

#[tokio::test]
async fn case_17_a_key_rotated_just_before_signing_is_fetched_once_and_accepted() {
    let rig = Rig::oidc().await;
    // Discovery (and the JWKS) happen at /login; the IdP rotates before it signs the token.
    let authorize = start_login(&rig.app, &rig.app.browser, "idp").await;
    assert_eq!(rig.idp.jwks_calls(), 1);
    rig.idp.with_knobs(|k| k.jwks_keep_previous = false);
    rig.idp.rotate_key();
    let callback = rig.idp.authorize_redirect(&authorize).await;
    rig.hit(&callback).await.assert_signed_in();
    assert_eq!(
        rig.idp.jwks_calls(),
        2,
        "exactly one refetch for the new kid"
    );
}

#[tokio::test]
async fn case_18_a_key_rotated_between_two_logins_works_without_a_restart() {
    let rig = Rig::oidc().await;
    rig.login().await.assert_signed_in();
    rig.idp.with_knobs(|k| k.jwks_keep_previous = false);
    rig.idp.rotate_key();
    let second = login(&rig.app, &browser(), &rig.idp, PROVIDER).await;
    second.assert_signed_in();
    assert_eq!(rig.idp.jwks_calls(), 2);
    let _ = Endpoint::Jwks;
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
