//! Issue 2's login slice through the real interfaces: a full code-flow login at the test IdP
//! mapping groups to teams, the home page and `/api/v1/me`, default teams, the refusal page,
//! locked users, config members, a second login that moves the user between teams (with audit
//! rows), and the built-in demo IdP driven over HTTP like a browser without JavaScript.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{demo_config, follow, hidden_inputs, new_browser, spawn_app};
use crate::oidc_common::{PROVIDER, Rig, STAFF_GROUP, me, provider_block, secret_file};
use crate::test_idp::{LoginSpec, TestIdp, TestIdpOptions};

const OPS_GROUP: &str = "00000000-0000-4000-8000-00000000bbbb";

/// An extra team `ops-team` mapped to [`OPS_GROUP`], and `infra-team` naming a config member.
const EXTRA_TEAMS: &str = r#"
[[team]]
id = "ops-team"
name = "Operations"
roles = [{ scope = "org/acme/space/infra", role = "owner" }]
groups = [{ provider = "idp", id = "00000000-0000-4000-8000-00000000bbbb" }]

[[team]]
id = "infra-team"
name = "Infrastructure"
roles = [{ scope = "org/acme/space/infra/workspace/prod", role = "exception-reviewer" }]
members = ["carol@example.com"]
"#;

async fn rig() -> Rig {
    Rig::start_with_teams("oidc", TestIdpOptions::default(), "", EXTRA_TEAMS).await
}

fn team_ids(me: &Value) -> Vec<String> {
    me["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_actions(rig: &Rig) -> Vec<(String, String, String, String)> {
    crate::helpers::sql_rows(
        &rig.app.state,
        "SELECT action, COALESCE(team_id, ''), COALESCE(source, ''), trigger FROM audit
             WHERE action LIKE 'membership.%' ORDER BY id",
        &[],
    )
    .await
    .into_iter()
    .map(|r| {
        let v = |i: usize| r[i].clone().unwrap_or_default();
        (v(0), v(1), v(2), v(3))
    })
    .collect()
}

#[tokio::test]
async fn a_full_login_maps_groups_to_teams_and_the_home_page_shows_them_with_their_group() {
    let rig = rig().await;
    rig.idp
        .set_next_login(LoginSpec::new("u-alice", "alice@example.com").with_groups([
            STAFF_GROUP,
            OPS_GROUP,
            "unmapped-group",
        ]));
    let out = rig.login().await;
    out.assert_signed_in();
    assert_eq!(out.location.as_deref(), Some("/"));

    let (status, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(team_ids(&info), ["ops-team", "staff"]);
    assert_eq!(info["email"], "alice@example.com");
    let roles: Vec<String> = info["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}={}",
                r["scope"].as_str().unwrap(),
                r["role"].as_str().unwrap()
            )
        })
        .collect();
    // Implied roles are shown too: editor includes viewer, owner includes editor and viewer.
    assert_eq!(
        roles,
        [
            "org/acme=editor",
            "org/acme=viewer",
            "org/acme/space/infra=editor",
            "org/acme/space/infra=owner",
            "org/acme/space/infra=viewer"
        ]
    );
    let ops = &info["teams"][0];
    assert_eq!(ops["grants"][0]["source"], "claims");
    assert_eq!(ops["grants"][0]["via"], OPS_GROUP);

    let home = rig.app.get("/").await;
    assert_eq!(home.headers()["cache-control"], "no-store");
    let html = home.text().await.unwrap();
    assert!(html.contains("Signed in as"), "{html}");
    assert!(
        html.contains("Operations") && html.contains(OPS_GROUP),
        "{html}"
    );
    // minijinja's HTML escaping also escapes '/'.
    assert!(
        html.contains(r#"data-role="org&#x2f;acme&#x2f;space&#x2f;infra=owner""#),
        "{html}"
    );
    // An implied role is shown with the role it comes from (security case J6).
    assert!(
        html.contains(
            r#"<tr class="role implied" data-role="org&#x2f;acme&#x2f;space&#x2f;infra=viewer">"#
        ),
        "{html}"
    );
    assert!(html.contains("ops-team (as owner)"), "{html}");
    // The default team is not given when a group maps.
    assert!(!html.contains(r#"data-team="everyone""#), "{html}");
}

#[tokio::test]
async fn a_user_whose_groups_map_to_nothing_gets_the_default_team() {
    let rig = rig().await;
    rig.idp.set_next_login(
        LoginSpec::new("u-dave", "dave@example.com").with_groups(["nothing-maps-this"]),
    );
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(team_ids(&info), ["everyone"]);
    assert_eq!(info["teams"][0]["grants"][0]["source"], "default");
}

#[tokio::test]
async fn a_member_named_in_the_config_gets_that_team_only_with_a_verified_email() {
    let rig = rig().await;
    rig.idp.set_next_login(
        LoginSpec::new("u-carol", "carol@example.com").with_groups(Vec::<String>::new()),
    );
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(team_ids(&info), ["infra-team"]);
    assert_eq!(info["teams"][0]["grants"][0]["source"], "config");

    // Someone else presenting carol's address unverified gets nothing from the config.
    let browser = new_browser();
    let mut spec =
        LoginSpec::new("u-mallory", "carol@example.com").with_groups(Vec::<String>::new());
    spec.email_verified = Some(false);
    rig.idp.set_next_login(spec);
    crate::oidc_common::login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(team_ids(&info), ["everyone"]);
}

#[tokio::test]
async fn a_second_login_after_the_groups_changed_moves_the_user_between_teams_and_audits_each_change()
 {
    let rig = rig().await;
    rig.idp
        .set_next_login(LoginSpec::new("u-bob", "bob@example.com").with_groups([STAFF_GROUP]));
    rig.login().await.assert_signed_in();
    rig.idp
        .set_next_login(LoginSpec::new("u-bob", "bob@example.com").with_groups([OPS_GROUP]));
    let browser = new_browser();
    crate::oidc_common::login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(team_ids(&info), ["ops-team"]);
    let audit = audit_actions(&rig).await;
    let expect = |a: &str, t: &str| {
        (
            a.to_owned(),
            t.to_owned(),
            "claims".to_owned(),
            "login".to_owned(),
        )
    };
    assert_eq!(
        audit,
        [
            expect("membership.add", "staff"),
            expect("membership.remove", "staff"),
            expect("membership.add", "ops-team"),
        ]
    );
}

/// A config of our own (the rig's has default teams and no locks).
async fn custom_app(idp: &TestIdp, defaults: &str) -> crate::helpers::TestApp {
    let block = provider_block(
        PROVIDER,
        "oidc",
        idp,
        &secret_file(&idp.client_secret()),
        "",
    );
    let app = spawn_app(&format!(
        r#"
[server]
public_url = "{{PUBLIC_URL}}"
database = "{{DB}}"
{block}
[[team]]
id = "staff"
roles = [{{ scope = "org/acme", role = "editor" }}]
groups = [{{ provider = "idp", id = "{STAFF_GROUP}" }}]

[[team]]
id = "ops-team"
groups = [{{ provider = "idp", id = "{OPS_GROUP}" }}]

[defaults]
{defaults}
"#
    ))
    .await;
    idp.register_redirect_uri(&app.url(&format!("/callback/{PROVIDER}")));
    app
}

#[tokio::test]
async fn without_default_teams_a_user_whose_groups_map_to_nothing_is_refused_with_a_readable_page()
{
    let idp = TestIdp::start().await;
    let app = custom_app(&idp, "").await;
    idp.set_next_login(LoginSpec::new("u-eve", "eve@example.com").with_groups(["unmapped"]));
    let out = crate::oidc_common::login(&app, &app.browser, &idp, PROVIDER).await;
    out.assert_refused(403, "No access");
    assert!(
        out.body.contains(&out.request_id),
        "the page shows the request id"
    );
    crate::oidc_common::assert_nobody_signed_in(&app).await;
}

#[tokio::test]
async fn a_locked_user_keeps_the_teams_of_their_first_login_when_their_groups_change() {
    let idp = TestIdp::start().await;
    let app = custom_app(&idp, r#"locked_users = ["ceo@example.com"]"#).await;
    idp.set_next_login(LoginSpec::new("u-ceo", "ceo@example.com").with_groups([STAFF_GROUP]));
    crate::oidc_common::login(&app, &app.browser, &idp, PROVIDER)
        .await
        .assert_signed_in();
    idp.set_next_login(LoginSpec::new("u-ceo", "ceo@example.com").with_groups([OPS_GROUP]));
    let browser = new_browser();
    crate::oidc_common::login(&app, &browser, &idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&app, &browser).await;
    assert_eq!(team_ids(&info), ["staff"]);
}

#[tokio::test]
async fn the_demo_idp_signs_a_demo_user_in_through_the_same_validation_path() {
    let app = spawn_app(&demo_config()).await;
    let (hops, picker) = follow(&app.browser, &app.url("/login")).await;
    assert_eq!(hops[0].1, StatusCode::SEE_OTHER);
    assert!(
        hops.last()
            .unwrap()
            .0
            .path()
            .starts_with("/demo-idp/authorize")
    );
    let html = picker.text().await.unwrap();
    assert!(html.contains("never use in production"));
    let mut form = hidden_inputs(&html);
    form.push(("email".into(), "alice@example.com".into()));
    let response = app
        .browser
        .post(app.url("/demo-idp/authorize/pick"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection(),
        "{:?}",
        response.text().await
    );
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&app.url("/callback/demo?")),
        "{callback}"
    );
    let (hops, home) = follow(&app.browser, &callback).await;
    assert_eq!(hops[0].1, StatusCode::SEE_OTHER, "callback: {hops:?}");
    let html = home.text().await.unwrap();
    assert!(html.contains("Alice Admin"), "{html}");
    let (_, info) = me(&app, &app.browser).await;
    assert_eq!(team_ids(&info), ["platform-admins", "security-viewers"]);
}
