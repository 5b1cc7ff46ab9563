//! Issue 15: an independent, OpenID Certified relying-party library (panva's `openid-client`,
//! in the Node app `tests/api/provider_rp/rp.mjs`) signs in through teamgate's OpenID
//! provider, over plain HTTP and in Chromium: discovery, the code flow with PKCE, ID-token
//! validation by the library (signature from the JWKS, `iss`, `aud`, `nonce`, `state`, RFC 9207
//! `iss`), userinfo, refresh, RP-initiated logout. teamgate itself signs users in at the test
//! IdP. Security cases P1-P4, P10, P13, P15 (docs/security-cases.md, section M).

use std::time::Duration;

use serde_json::Value;

use crate::forward_auth_support::{Agent, signed_in, user};
use crate::helpers::sql_count;
use crate::provider_support::{RpAuth, require_rp, rig, sign_in_through_rp};
use crate::support::browser::Browser;
use crate::support::e2e::require_browser;

const WAIT: Duration = Duration::from_secs(20);

fn alice() -> crate::test_idp::LoginSpec {
    user("u-alice", "alice@example.com", &["g-eng"])
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn case_p1_a_certified_relying_party_signs_in_through_teamgate_and_receives_teams_and_roles()
{
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "").await;
    rig.gate.idp.set_next_login(alice());
    let agent = Agent::new();
    let (result, hops) = sign_in_through_rp(&rig, &agent, "").await;
    assert!(result.get("claims").is_some(), "{result} after {hops:?}");
    let claims = &result["claims"];
    let alice_row = rig.gate.user("u-alice").await;
    assert_eq!(claims["iss"], rig.gate.direct.as_str());
    assert_eq!(claims["aud"], "app");
    assert_eq!(
        claims["sub"],
        alice_row.public_id.as_str(),
        "the global public id"
    );
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(strings(&claims["teams"]), ["engineers", "everyone"]);
    assert_eq!(strings(&claims["groups"]), ["engineers", "everyone"]);
    // editor on infra implies viewer there (the built-in order).
    assert_eq!(
        strings(&claims["roles"]),
        [
            "org/acme/space/infra=editor",
            "org/acme/space/infra=viewer",
            "org/acme=viewer"
        ]
    );
    assert_eq!(result["id_token_alg"], "RS256");
    assert_eq!(result["has_refresh_token"], true);
    // The library checked that userinfo's sub is the ID token's.
    let userinfo = &result["userinfo"];
    assert_eq!(userinfo["sub"], claims["sub"]);
    assert_eq!(strings(&userinfo["roles"]), strings(&claims["roles"]));
    // Through teamgate's own login, then back to the authorization request.
    assert!(
        hops.iter()
            .any(|(u, _)| u.as_str().starts_with(&rig.gate.url("/login?")))
            && hops
                .iter()
                .any(|(u, _)| u.path() == "/oauth2/authorize/resume"),
        "{hops:?}"
    );
    let signins = sql_count(
        &rig.gate.state,
        "SELECT COUNT(*) FROM audit WHERE action = 'client.signin' AND trigger = 'client'",
        &[],
    )
    .await;
    assert_eq!(signins, 1, "one audit row for the sign-in to the client");
}

#[tokio::test]
async fn case_p1_with_a_teamgate_session_a_client_sign_in_is_seamless() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "").await;
    let agent = signed_in(&rig.gate, alice()).await;
    let before = rig.gate.idp.authorize_calls();
    let (result, hops) = sign_in_through_rp(&rig, &agent, "").await;
    assert!(result.get("claims").is_some(), "{result}");
    assert_eq!(
        rig.gate.idp.authorize_calls(),
        before,
        "no visit to the IdP"
    );
    let paths: Vec<&str> = hops.iter().map(|(u, _)| u.path()).collect();
    assert_eq!(
        paths,
        ["/login", "/oauth2/authorize", "/callback"],
        "{hops:?}"
    );
}

#[tokio::test]
async fn case_p4_client_secret_post_with_es256_id_tokens_verifies_in_the_library() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Post, "ES256", "").await;
    let agent = signed_in(&rig.gate, alice()).await;
    let (result, _) = sign_in_through_rp(&rig, &agent, "").await;
    assert_eq!(result["id_token_alg"], "ES256", "{result}");
    assert_eq!(result["claims"]["aud"], "app");
}

#[tokio::test]
async fn case_p3_a_public_client_signs_in_with_pkce_alone() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::None, "RS256", "").await;
    let agent = signed_in(&rig.gate, alice()).await;
    let (result, _) = sign_in_through_rp(&rig, &agent, "").await;
    assert!(result.get("claims").is_some(), "{result}");
}

#[tokio::test]
async fn case_p10_refresh_rotates_the_tokens_and_logout_ends_the_session_and_the_refresh_token() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "").await;
    let agent = signed_in(&rig.gate, alice()).await;
    let (result, _) = sign_in_through_rp(&rig, &agent, "").await;
    let sub = result["claims"]["sub"].clone();
    let refreshed: Value = agent
        .get(&rig.rp.url("/refresh"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["rotated"], true, "{refreshed}");
    assert_eq!(
        refreshed["claims"]["sub"], sub,
        "OIDC Core §12.2: the same subject"
    );
    let userinfo: Value = agent
        .get(&rig.rp.url("/userinfo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], sub, "{userinfo}");

    // RP-initiated logout with id_token_hint: straight back to the RP, session ended.
    let (hops, last) = crate::helpers::follow(&agent.client, &rig.rp.url("/logout")).await;
    assert!(
        hops.iter().any(|(u, _)| u.path() == "/oauth2/logout"),
        "{hops:?}"
    );
    assert!(last.url().path().ends_with("/logged-out"), "{hops:?}");
    assert!(last.text().await.unwrap().contains(">bye<"), "state echoed");
    let me = agent.get(&rig.gate.url("/api/v1/me")).await;
    assert_eq!(me.status(), 401, "the teamgate session is over");
    let after: Value = agent
        .get(&rig.rp.url("/refresh"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["error"], "invalid_grant", "{after}");
}

#[tokio::test]
async fn case_p13_prompt_none_without_a_session_is_login_required_at_the_client() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "").await;
    let agent = Agent::new();
    let (result, hops) = sign_in_through_rp(&rig, &agent, "?prompt=none").await;
    assert_eq!(result["error"], "login_required", "{result} {hops:?}");
    assert_eq!(rig.gate.idp.authorize_calls(), 0, "no login page was shown");
}

#[tokio::test]
async fn case_p13_prompt_login_and_max_age_send_the_user_through_the_idp_again() {
    if !require_rp("run an OpenID Certified relying party against teamgate") {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "").await;
    let agent = signed_in(&rig.gate, alice()).await;
    for query in ["?prompt=login", "?max_age=0"] {
        let before = rig.gate.idp.authorize_calls();
        rig.gate.idp.set_next_login(alice());
        let (result, hops) = sign_in_through_rp(&rig, &agent, query).await;
        assert!(result.get("claims").is_some(), "{query}: {result} {hops:?}");
        assert_eq!(rig.gate.idp.authorize_calls(), before + 1, "{query}");
        let upstream = rig.gate.idp.last_authorize().unwrap();
        assert_eq!(upstream.get("prompt"), Some("login"), "{query}");
        assert!(result["claims"]["auth_time"].as_i64().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_p1_chromium_signs_in_to_a_client_through_teamgate_and_out_again() {
    if !require_rp("run an OpenID Certified relying party against teamgate")
        || !require_browser("drive the client sign-in in a real browser")
    {
        return;
    }
    let rig = rig(RpAuth::Basic, "RS256", "allowed_teams = [\"engineers\"]").await;
    rig.gate.idp.set_next_login(alice());
    let browser = Browser::start().await;
    browser.goto(&rig.rp.url("/login")).await;
    browser.wait_for("#result", WAIT).await;
    let result: Value = serde_json::from_str(&browser.text("#result").await).unwrap();
    assert_eq!(
        strings(&result["claims"]["teams"]),
        ["engineers", "everyone"]
    );
    assert_eq!(result["userinfo"]["sub"], result["claims"]["sub"]);
    // The session cookie made the round trip: a second sign-in needs no IdP.
    let before = rig.gate.idp.authorize_calls();
    browser.goto(&rig.rp.url("/login")).await;
    browser.wait_for("#result", WAIT).await;
    assert_eq!(rig.gate.idp.authorize_calls(), before);
    browser.goto(&rig.rp.url("/logout")).await;
    browser.wait_for("#logged-out", WAIT).await;
    assert_eq!(browser.text("#logged-out").await, "bye");
    browser.quit().await;
}
