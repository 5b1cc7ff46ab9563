//! docs/idp-quirks.md E1-E10 (Entra tokens) and O1-O4 (Okta tokens), one named test each or more,
//! plus the generic OIDC options (groups claim path, object field, prefix; email domains).

use std::time::{Duration, Instant};

use serde_json::json;
use tracing::Level;

use crate::helpers::spawn_app;
use crate::oidc_common::*;
use crate::test_idp::{
    Endpoint, EntraUser, GroupsPlacement, LoginSpec, TestIdp, TestIdpOptions, entra_group_id,
    okta_group_names, okta_login_spec,
};

const TID: &str = TENANT_A;

fn graph_calls(idp: &TestIdp, what: &str) -> usize {
    idp.directory_requests()
        .iter()
        .filter(|r| r.contains(what))
        .count()
}

// ---------------------------------------------------------------- Entra

#[tokio::test]
async fn e1_group_object_ids_in_the_claim_map_to_teams_and_directory_roles_in_wids_do_not() {
    let rig = entra(TID, "").await;
    let user = EntraUser::new(TID, "alice@example.com")
        .with_groups([entra_group_id(7), STAFF_GROUP.into()]);
    // A directory role id that happens to equal a mapped value must not count as a group.
    let spec = user.login_spec().claim("wids", json!([STAFF_GROUP]));
    let mut spec = spec;
    spec.groups = Some(json!([entra_group_id(7)]));
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["everyone".to_owned()]
    );
    rig.idp.set_next_login(user.login_spec());
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn e2_a_group_entra_leaves_out_of_the_claim_grants_nothing() {
    // sAMAccountName/cloud_displayname claims silently drop groups without the attribute;
    // teamgate can only act on what the claim lists (the README recommends group ids).
    let rig = entra(TID, "").await;
    let user = EntraUser::new(TID, "mixed@example.com").with_groups([STAFF_GROUP]);
    let mut spec = user.login_spec();
    spec.groups = Some(json!(["synced-group-without-the-attribute-is-missing"]));
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["everyone".to_owned()]
    );
    assert_eq!(
        graph_calls(&rig.idp, "/v1.0/"),
        0,
        "a present claim is taken as it is"
    );
}

#[tokio::test]
async fn e3_nested_memberships_graph_reports_transitively_grant_teams() {
    let rig = entra(TID, "").await;
    // The user is in STAFF_GROUP only through a nested group: Graph's transitive answer.
    let user = EntraUser::new(TID, "nested@example.com")
        .with_groups([entra_group_id(1), STAFF_GROUP.into()]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn e4_overage_token_resolves_groups_through_graph() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = entra(TID, "").await;
    let user = EntraUser::new(TID, "many@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    assert_eq!(graph_calls(&rig.idp, "POST /v1.0/me/checkMemberGroups"), 1);
    assert_eq!(
        rig.idp.calls(Endpoint::LegacyGraph),
        0,
        "the retired AAD Graph endpoint is never called"
    );
    assert!(
        logs.text()
            .contains("group overage resolved through Microsoft Graph")
    );
}

#[tokio::test]
async fn e4_the_implicit_flow_hasgroups_marker_also_resolves_through_graph() {
    let rig = entra(TID, "").await;
    let user = EntraUser::new(TID, "many@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.hasgroups_login_spec());
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn e4_absent_empty_and_overage_groups_are_three_different_answers() {
    let rig = entra(TID, "").await;
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::Graph, 503);
    });
    let absent = EntraUser::new(TID, "absent@example.com");
    let mut spec = absent.login_spec();
    spec.groups = None;
    rig.idp.set_next_login(spec);
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let empty = EntraUser::new(TID, "empty@example.com");
    rig.idp.set_next_login(empty.login_spec());
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let overage = EntraUser::new(TID, "overage@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(overage.overage_login_spec(&rig.idp));
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        claims_groups_of(&rig.app, &absent.oid).await,
        Some(vec![]),
        "absent: no groups"
    );
    assert_eq!(
        claims_groups_of(&rig.app, &empty.oid).await,
        Some(vec![]),
        "[]: no groups"
    );
    assert_eq!(
        claims_groups_of(&rig.app, &overage.oid).await,
        None,
        "overage with Graph down: unknown"
    );
}

#[tokio::test]
async fn e5_check_member_groups_asks_at_most_twenty_mapped_ids_per_call() {
    let many: Vec<String> = (1..=24)
        .map(|n| format!("{{ provider = \"idp\", id = \"{}\" }}", entra_group_id(n)))
        .collect();
    let teams = format!(
        "[[team]]\nid = \"many\"\nroles = [{{ scope = \"org/acme\", role = \"viewer\" }}]\ngroups = [{}]\n",
        many.join(", ")
    );
    let rig = Rig::start_with_teams("entra", TestIdpOptions::entra(TID), "", &teams).await;
    let user =
        EntraUser::new(TID, "u@example.com").with_groups([entra_group_id(24), STAFF_GROUP.into()]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    // 25 mapped ids: two calls (the mock answers 400 to more than 20 ids in one).
    assert_eq!(graph_calls(&rig.idp, "checkMemberGroups"), 2);
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["many".to_owned(), "staff".to_owned()]
    );
}

#[tokio::test]
async fn e5_transitive_member_of_is_paged_and_keeps_only_groups_when_check_member_groups_is_refused()
 {
    let rig = entra(TID, "").await;
    let mut user = EntraUser::new(TID, "u@example.com").with_groups([
        entra_group_id(1),
        entra_group_id(2),
        STAFF_GROUP.into(),
    ]);
    user.directory_roles = vec![entra_group_id(90), entra_group_id(91)];
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.idp.with_knobs(|k| {
        k.graph_page_size_cap = 2;
        let f = k.fault(Endpoint::Graph);
        f.status = Some(403);
        f.times = Some(1);
    });
    rig.login().await.assert_signed_in();
    // Roles first, then groups, two objects a page: three pages, after the one refused call.
    assert_eq!(
        graph_calls(&rig.idp, "transitiveMemberOf"),
        3,
        "{:?}",
        rig.idp.directory_requests()
    );
    assert_eq!(
        rig.idp.graph_calls(),
        4,
        "one refused checkMemberGroups, then three pages"
    );
    let mut stored = claims_groups_of(&rig.app, &user.oid).await.unwrap();
    stored.sort();
    assert_eq!(
        stored,
        vec![entra_group_id(1), entra_group_id(2), STAFF_GROUP.to_owned()],
        "roles are not groups"
    );
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn e5_transitive_member_of_is_used_when_the_mapping_table_names_no_group_of_the_provider() {
    let idp = TestIdp::start_with(TestIdpOptions::entra(TID)).await;
    let block = provider_block(
        PROVIDER,
        "entra",
        &idp,
        &secret_file(&idp.client_secret()),
        &format!("graph_url = \"{}\"", idp.graph_url()),
    );
    let app = spawn_app(&config(&[], &block, "")).await;
    let user = EntraUser::new(TID, "u@example.com").with_groups([entra_group_id(3)]);
    idp.set_next_login(user.overage_login_spec(&idp));
    login(&app, &app.browser, &idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(graph_calls(&idp, "checkMemberGroups"), 0);
    assert_eq!(graph_calls(&idp, "transitiveMemberOf"), 1);
    assert_eq!(
        claims_groups_of(&app, &user.oid).await,
        Some(vec![entra_group_id(3)])
    );
}

async fn overage_user_with_staff(rig: &Rig) -> EntraUser {
    let user = EntraUser::new(TID, "kept@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.login_spec());
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    user
}

#[tokio::test]
async fn e6_graph_403_keeps_the_users_teams() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = entra(TID, "").await;
    let user = overage_user_with_staff(&rig).await;
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::Graph, 403);
    });
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    assert!(
        logs.text()
            .contains("group membership unknown; keeping the user's current teams")
    );
    assert!(logs.text().contains("refused the call (403)"));
}

#[tokio::test]
async fn e6_graph_500_keeps_the_users_teams() {
    let rig = entra(TID, "").await;
    let user = overage_user_with_staff(&rig).await;
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::Graph, 500);
    });
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn e6_a_graph_timeout_keeps_the_users_teams() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let idp = TestIdp::start_with(TestIdpOptions::entra(TID)).await;
    let rig = Rig::start_with_server("entra", idp, "idp_timeout_seconds = 2", "", "").await;
    let user = overage_user_with_staff(&rig).await;
    rig.idp.with_knobs(|k| {
        k.delay(Endpoint::Graph, Duration::from_secs(30));
    });
    let started = Instant::now();
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "the configured 2 s Graph deadline gave a login of {took:?}"
    );
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    assert!(
        logs.text().contains("did not answer within 2s"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn e6_with_on_group_failure_refuse_an_unresolvable_overage_shows_the_unavailable_page() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = entra(TID, "on_group_failure = \"refuse\"").await;
    let user = EntraUser::new(TID, "u@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::Graph, 403);
    });
    assert_login_refused(&rig, &logs, 503, GROUPS_UNAVAILABLE, "group overage").await;
}

#[tokio::test]
async fn e6_resolved_groups_are_cached_for_groups_cache_seconds() {
    let rig = entra(TID, "groups_cache_seconds = 300").await;
    let user = EntraUser::new(TID, "u@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        graph_calls(&rig.idp, "checkMemberGroups"),
        1,
        "the second login used the cache"
    );
}

#[tokio::test]
async fn e7_refresh_reevaluation_removes_a_team_without_a_new_sign_in() {
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
    assert!(
        rig.idp
            .last_authorize()
            .unwrap()
            .get("scope")
            .unwrap()
            .contains("offline_access")
    );
    // Removed from the group at the IdP; the browser does nothing.
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups(["other"]));
    let removed = eventually(Duration::from_secs(6), || async {
        teams_of(&rig.app, "u-1").await == vec!["everyone".to_owned()]
    })
    .await;
    assert!(removed, "teams: {:?}", teams_of(&rig.app, "u-1").await);
    let trigger = crate::helpers::sql_one(
        &rig.app.state,
        "SELECT trigger FROM audit WHERE action = 'membership.remove' AND team_id = 'staff'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(trigger, "refresh");
}

#[tokio::test]
async fn e7_a_refreshed_entra_overage_is_resolved_through_graph_again() {
    let rig = entra(TID, "refresh_interval_seconds = 1").await;
    rig.idp.with_knobs(|k| k.issue_refresh_token = true);
    let user = EntraUser::new(TID, "u@example.com").with_groups([STAFF_GROUP]);
    rig.idp.set_next_login(user.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["staff".to_owned()]
    );
    let without = EntraUser {
        groups: vec![],
        ..user.clone()
    };
    rig.idp.set_next_login(without.overage_login_spec(&rig.idp));
    let removed = eventually(Duration::from_secs(6), || async {
        teams_of(&rig.app, &user.oid).await == vec!["everyone".to_owned()]
    })
    .await;
    assert!(removed);
    assert!(
        graph_calls(&rig.idp, "checkMemberGroups") >= 2,
        "the refresh bypasses the groups cache"
    );
}

#[tokio::test]
async fn e8_a_v1_token_is_refused_with_a_clear_reason() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = entra(TID, "").await;
    let user = EntraUser::new(TID, "u@example.com");
    rig.idp.set_next_login(
        user.login_spec()
            .claim("ver", json!("1.0"))
            .claim("iss", json!(format!("https://sts.windows.net/{TID}/"))),
    );
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "Entra v1.0 token").await;
}

#[tokio::test]
async fn e9_a_key_naming_another_tenants_issuer_cannot_verify_this_tenants_token() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = entra(TID, "").await;
    let foreign = rig.idp.issuer().replace(TID, TENANT_FOREIGN);
    rig.idp.with_knobs(|k| k.jwks_key_issuer = Some(foreign));
    assert_login_refused(&rig, &logs, 400, UNVERIFIED, "belongs to another issuer").await;
}

#[tokio::test]
async fn e9_a_key_with_the_templated_issuer_verifies_any_allowed_tenant() {
    let rig = Rig::start(
        "entra",
        TestIdpOptions::entra_multi_tenant(),
        &format!("tenant = \"common\"\nallowed_tenants = [\"{TENANT_A}\"]"),
    )
    .await;
    let template = rig.idp.metadata_issuer();
    assert!(template.contains("{tenantid}"));
    rig.idp.with_knobs(|k| k.jwks_key_issuer = Some(template));
    rig.idp
        .set_next_login(EntraUser::new(TENANT_A, "a@example.com").login_spec());
    rig.login().await.assert_signed_in();
}

#[tokio::test]
async fn e10_users_are_keyed_by_oid_and_an_email_without_xms_edov_is_not_trusted() {
    let rig = Rig::start_with_teams(
        "entra",
        TestIdpOptions::entra(TID),
        "",
        "[[team]]\nid = \"ceo-office\"\nroles = [{ scope = \"org/acme\", role = \"owner\" }]\nmembers = [\"ceo@example.com\"]\n",
    )
    .await;
    let mut user = EntraUser::new(TID, "someone@example.com");
    user.email = Some("ceo@example.com".into());
    rig.idp.set_next_login(user.login_spec());
    rig.login().await.assert_signed_in();
    assert_eq!(
        subjects(&rig.app).await,
        vec![user.oid.clone()],
        "keyed by oid, not sub, email or upn"
    );
    assert_eq!(
        teams_of(&rig.app, &user.oid).await,
        vec!["everyone".to_owned()],
        "unverified email claims nothing"
    );
    // The same person with a new upn and email is the same row.
    let mut renamed = user.clone();
    renamed.preferred_username = "renamed@example.com".into();
    renamed.email = Some("renamed@example.com".into());
    rig.idp.set_next_login(renamed.login_spec());
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(subjects(&rig.app).await, vec![user.oid.clone()]);
    // With xms_edov the domain owner verified the email: now it counts.
    let mut ceo = EntraUser::new(TID, "ceo@example.com");
    ceo.email = Some("ceo@example.com".into());
    rig.idp
        .set_next_login(ceo.login_spec().claim("xms_edov", json!(true)));
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &ceo.oid).await,
        vec!["ceo-office".to_owned()]
    );
}

// ---------------------------------------------------------------- Okta

async fn okta(options: TestIdpOptions, extra: &str) -> Rig {
    Rig::start("okta", options, extra).await
}

#[tokio::test]
async fn o1_the_org_server_puts_group_names_in_the_id_token_when_the_groups_scope_is_asked() {
    let rig = okta(TestIdpOptions::default(), "").await;
    rig.idp.set_next_login(okta_login_spec(
        "a@example.com",
        &[STAFF_GROUP.to_owned(), "Everyone".into()],
    ));
    rig.idp
        .with_knobs(|k| k.groups_placement = GroupsPlacement::IdTokenOnly);
    rig.login().await.assert_signed_in();
    let scope = rig
        .idp
        .last_authorize()
        .unwrap()
        .get("scope")
        .unwrap()
        .to_owned();
    assert!(scope.split(' ').any(|s| s == "groups"), "{scope}");
    assert_eq!(rig.idp.userinfo_calls(), 0);
    let sub = subjects(&rig.app).await.remove(0);
    assert_eq!(teams_of(&rig.app, &sub).await, vec!["staff".to_owned()]);
}

#[tokio::test]
async fn o2_groups_released_only_through_userinfo_are_read_from_there() {
    let rig = okta(TestIdpOptions::okta_custom_server("default"), "").await;
    rig.idp
        .set_next_login(okta_login_spec("a@example.com", &[STAFF_GROUP.to_owned()]));
    rig.idp
        .with_knobs(|k| k.groups_placement = GroupsPlacement::UserinfoOnly);
    rig.login().await.assert_signed_in();
    assert_eq!(rig.idp.userinfo_calls(), 1);
    let sub = subjects(&rig.app).await.remove(0);
    assert_eq!(teams_of(&rig.app, &sub).await, vec!["staff".to_owned()]);
}

async fn okta_with_api_token(page_cap: usize) -> Rig {
    let idp = TestIdp::start().await;
    idp.with_knobs(|k| k.okta_page_size_cap = page_cap);
    let extra = format!(
        "okta_api_token_file = \"{}\"",
        secret_file(&idp.okta_api_token())
    );
    Rig::start_on("okta", idp, &extra, "").await
}

/// 150 groups, the mapped one last: beyond the 100 the claim can hold.
fn hundred_and_fifty_groups() -> Vec<String> {
    let mut groups = okta_group_names(149);
    groups.push(STAFF_GROUP.to_owned());
    groups
}

#[tokio::test]
async fn o3_exactly_100_groups_are_completed_through_the_okta_groups_api() {
    let rig = okta_with_api_token(50).await;
    let spec = okta_login_spec("a@example.com", &hundred_and_fifty_groups());
    assert_eq!(spec.groups.as_ref().unwrap().as_array().unwrap().len(), 100);
    rig.idp.set_next_login(spec.clone());
    rig.login().await.assert_signed_in();
    assert_eq!(
        rig.idp.okta_api_calls(),
        3,
        "150 groups at 50 a page, through the Link header"
    );
    assert_eq!(
        teams_of(&rig.app, &spec.sub).await,
        vec!["staff".to_owned()]
    );
    assert_eq!(
        claims_groups_of(&rig.app, &spec.sub).await.unwrap().len(),
        150
    );
}

#[tokio::test]
async fn o3_exactly_100_groups_without_an_api_token_are_used_and_logged_as_possibly_truncated() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = okta(TestIdpOptions::default(), "").await;
    let spec = okta_login_spec("a@example.com", &hundred_and_fifty_groups());
    rig.idp.set_next_login(spec.clone());
    rig.login().await.assert_signed_in();
    assert!(
        logs.text().contains("exactly 100 groups"),
        "{}",
        logs.text()
    );
    assert_eq!(rig.idp.okta_api_calls(), 0);
    assert_eq!(
        claims_groups_of(&rig.app, &spec.sub).await.unwrap().len(),
        100
    );
}

#[tokio::test]
async fn o3_a_failing_okta_groups_api_keeps_the_users_teams() {
    let rig = okta_with_api_token(200).await;
    let spec = okta_login_spec("a@example.com", &[STAFF_GROUP.to_owned()]);
    rig.idp.set_next_login(spec.clone());
    rig.login().await.assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &spec.sub).await,
        vec!["staff".to_owned()]
    );
    rig.idp.set_next_login(okta_login_spec(
        "a@example.com",
        &hundred_and_fifty_groups(),
    ));
    rig.idp.with_knobs(|k| {
        k.fail(Endpoint::OktaGroups, 500);
    });
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert_eq!(
        teams_of(&rig.app, &spec.sub).await,
        vec!["staff".to_owned()]
    );
}

#[tokio::test]
async fn o4_org_and_custom_authorization_server_issuers_both_sign_in() {
    for options in [
        TestIdpOptions::default(),
        TestIdpOptions::okta_custom_server("aus1234567"),
    ] {
        let rig = okta(options, "").await;
        assert!(
            rig.idp.issuer().ends_with("/oauth2/aus1234567")
                || !rig.idp.issuer().contains("/oauth2/")
        );
        rig.idp
            .set_next_login(okta_login_spec("a@example.com", &[STAFF_GROUP.to_owned()]));
        rig.login().await.assert_signed_in();
        let sub = subjects(&rig.app).await.remove(0);
        assert_eq!(teams_of(&rig.app, &sub).await, vec!["staff".to_owned()]);
    }
}

// ---------------------------------------------------------------- generic OIDC

#[tokio::test]
async fn oidc_groups_are_read_at_a_dotted_path_from_objects_and_filtered_by_prefix() {
    let rig = Rig::start_with_teams(
        "oidc",
        TestIdpOptions::default(),
        "groups_claim = \"org.memberships\"\ngroups_claim_field = \"slug\"\ngroups_prefix = \"tg-\"",
        "[[team]]\nid = \"platform\"\nroles = [{ scope = \"org/acme\", role = \"editor\" }]\ngroups = [{ provider = \"idp\", id = \"tg-platform\" }]\n",
    )
    .await;
    let spec = LoginSpec::new("u-1", "a@example.com").claim(
        "org",
        json!({ "memberships": [{ "slug": "tg-platform" }, { "slug": "unrelated" }, { "slug": "tg-platform" }] }),
    );
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    assert_eq!(
        claims_groups_of(&rig.app, "u-1").await,
        Some(vec!["tg-platform".to_owned()])
    );
    assert_eq!(teams_of(&rig.app, "u-1").await, vec!["platform".to_owned()]);
}

#[tokio::test]
async fn oidc_allowed_email_domains_are_checked_only_against_verified_emails() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "allowed_email_domains = [\"example.com\"]",
    )
    .await;
    let mut unverified = LoginSpec::new("u-1", "mallory@example.com");
    unverified.email_verified = Some(false);
    rig.idp.set_next_login(unverified);
    assert_login_refused(
        &rig,
        &logs,
        403,
        "Email domain not allowed",
        "is not verified",
    )
    .await;
    rig.idp
        .set_next_login(LoginSpec::new("u-2", "eve@other.example.org"));
    assert_login_refused(
        &rig,
        &logs,
        403,
        "Email domain not allowed",
        "domain other.example.org",
    )
    .await;
    rig.idp
        .set_next_login(LoginSpec::new("u-3", "alice@example.com"));
    rig.login().await.assert_signed_in();
}
