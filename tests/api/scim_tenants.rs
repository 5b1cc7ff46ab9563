//! SCIM on a multi-tenant Entra provider (security case J1): each token is bound to one tenant
//! (`teamgate scim-token create PROVIDER --tenant <tid>`), sees and changes only that tenant's
//! users and groups, links its users to the login subject `{tid}/{externalId}` (what that
//! tenant's sign-ins produce), and its groups match only the mappings written for its tenant.
//! The attack of issue 11 (finding 5): tenant B's provisioning job creating tenant A's users and
//! a group whose externalId is A's mapped group id, to be granted A's teams.

use reqwest::StatusCode;
use serde_json::json;
use teamgate::provisioning::tokens::{self, TokenError};

use crate::helpers::{TestApp, new_browser, spawn_app};
use crate::oidc_common::{
    PROVIDER, Rig, TENANT_A, TENANT_B, TENANT_FOREIGN, login, me, secret_file,
};
use crate::scim_support::{ScimClient, USER, audit_actions, identity, teams_of_user, tenant_token};
use crate::test_idp::{EntraUser, TestIdpOptions};

/// The group of tenant A that team `a-admins` maps.
const GROUP_A: &str = "0a7d1e2f-0000-4000-8000-00000000a001";

fn file(provider: &str, multi_tenant: bool) -> String {
    let secret = secret_file("client-secret");
    let (tenancy, mapping) = if multi_tenant {
        (
            format!(
                "tenant = \"organizations\"\nissuer = \"http://127.0.0.1:9/organizations/v2.0\"\nallowed_tenants = [\"{TENANT_A}\", \"{TENANT_B}\"]"
            ),
            format!("{{ provider = \"{provider}\", tenant = \"{TENANT_A}\", id = \"{GROUP_A}\" }}"),
        )
    } else {
        (
            "issuer = \"http://127.0.0.1:9/organizations/v2.0\"".to_owned(),
            format!("{{ provider = \"{provider}\", id = \"{GROUP_A}\" }}"),
        )
    };
    format!(
        r#"
[server]
public_url = "{{PUBLIC_URL}}"
database = "{{DB}}"

[[provider]]
id = "{provider}"
kind = "entra"
{tenancy}
client_id = "teamgate"
client_secret_file = "{secret}"
scim = {{ enabled = true }}

[[team]]
id = "a-admins"
roles = [{{ scope = "org/acme", role = "owner" }}]
groups = [{mapping}]

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]

[defaults]
teams_without_groups = ["everyone"]
"#
    )
}

async fn app() -> TestApp {
    spawn_app(&file("partners", true)).await
}

#[tokio::test]
async fn case_j1_a_token_of_a_multi_tenant_provider_is_bound_to_one_allowed_tenant() {
    let app = app().await;
    let config = app.state.config.get();
    let create = |tenant: Option<&'static str>| {
        let (store, clock, config) = (
            app.state.store.clone(),
            app.state.clock.clone(),
            config.clone(),
        );
        async move { tokens::create(&store, &clock, &config, "partners", tenant, 30, None).await }
    };
    let err = create(None).await.unwrap_err();
    assert!(matches!(err, TokenError::TenantRequired(_)), "{err}");
    assert!(err.to_string().contains("--tenant <tenant-id>"), "{err}");
    let err = create(Some(TENANT_FOREIGN)).await.unwrap_err();
    assert!(matches!(err, TokenError::TenantNotAllowed { .. }), "{err}");
    assert!(
        err.to_string().contains(TENANT_A),
        "names the allowed tenants: {err}"
    );
    let made = create(Some("11111111-1111-4111-8111-111111111111"))
        .await
        .unwrap();
    assert_eq!(made.tenant.as_deref(), Some(TENANT_A));
    // The CLI says which tenant the token is for, and lists it.
    let cli_config = (*config).clone();
    let out = tokio::task::spawn_blocking(move || {
        let created = teamgate::admin::scim_tokens::run_cli(
            &cli_config,
            teamgate::admin::scim_tokens::TokenCommand::Create {
                provider: "partners".into(),
                valid_days: Some(1),
                note: None,
                tenant: Some(TENANT_B.into()),
            },
        )
        .unwrap();
        let listed = teamgate::admin::scim_tokens::run_cli(
            &cli_config,
            teamgate::admin::scim_tokens::TokenCommand::List {
                provider: "partners".into(),
            },
        )
        .unwrap();
        (created, listed)
    })
    .await
    .unwrap();
    assert!(
        out.0.contains(&format!("for tenant: {TENANT_B}")),
        "{}",
        out.0
    );
    assert!(out.1.contains(&format!("tenant {TENANT_B}")), "{}", out.1);
    assert!(out.1.contains(&format!("tenant {TENANT_A}")), "{}", out.1);

    // A single-tenant provider refuses --tenant.
    let single = spawn_app(&file("entra", false)).await;
    let config = single.state.config.get();
    let err = tokens::create(
        &single.state.store,
        &single.state.clock,
        &config,
        "entra",
        Some(TENANT_A),
        30,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TokenError::TenantNotApplicable(_)), "{err}");
}

#[tokio::test]
async fn case_j1_a_token_without_a_tenant_opens_nothing_on_a_multi_tenant_provider() {
    let app = app().await;
    // A token made while the provider was single-tenant, then the provider became multi-tenant.
    let mut before = teamgate::config::Config::parse(
        &file("partners", false)
            .replace("{PUBLIC_URL}", "http://127.0.0.1:1")
            .replace("{DB}", "unused.db"),
        std::path::Path::new("config/case.toml"),
    )
    .unwrap();
    before.server.database = app.state.config.get().server.database.clone();
    let old = tokens::create(
        &app.state.store,
        &app.state.clock,
        &before,
        "partners",
        None,
        30,
        None,
    )
    .await
    .unwrap();
    let scim = ScimClient::new(&app, "partners", old.token.expose());
    let r = scim.get("/Users").await;
    r.assert_error(401, None);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let r = scim
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "x@a.example.com", "externalId": "oid"}),
        )
        .await;
    r.assert_error(401, None);
}

#[tokio::test]
async fn case_j1_one_tenants_token_neither_sees_nor_changes_another_tenants_users_and_groups() {
    let app = app().await;
    let a = ScimClient::new(
        &app,
        "partners",
        &tenant_token(&app, "partners", TENANT_A).await,
    );
    let b = ScimClient::new(
        &app,
        "partners",
        &tenant_token(&app, "partners", TENANT_B).await,
    );
    let alice = a
        .create_user("alice@a.example.com", Some("oid-alice"))
        .await;
    let group = a.create_group("Admins", GROUP_A).await;
    a.add_member(&group, &alice).await;

    // Reads: 404 by id, nothing in lists or filters (Entra's own look-ups, IdP quirk S6).
    b.get(&format!("/Users/{alice}"))
        .await
        .assert_error(404, None);
    b.get(&format!("/Groups/{group}"))
        .await
        .assert_error(404, None);
    for (resource, filter) in [
        ("Users", "userName eq \"alice@a.example.com\"".to_owned()),
        ("Users", "externalId eq \"oid-alice\"".to_owned()),
        (
            "Users",
            "emails[type eq \"work\"].value eq \"alice@a.example.com\"".to_owned(),
        ),
        ("Groups", "displayName eq \"Admins\"".to_owned()),
        ("Groups", format!("externalId eq \"{GROUP_A}\"")),
        ("Groups", format!("members[value eq \"{alice}\"]")),
    ] {
        let r = b.query(resource, &[("filter", filter.as_str())]).await;
        r.assert_status(200);
        assert_eq!(r.body["totalResults"], 0, "{resource} {filter}");
    }
    let r = b.get("/Users").await;
    assert_eq!(r.body["totalResults"], 0);

    // Writes: 404, and A's user cannot be made a member of B's group.
    b.patch(
        &format!("/Users/{alice}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .assert_error(404, None);
    b.put(
        &format!("/Users/{alice}"),
        &json!({"schemas": [USER], "userName": "alice@a.example.com", "active": false}),
    )
    .await
    .assert_error(404, None);
    b.delete(&format!("/Users/{alice}"))
        .await
        .assert_error(404, None);
    b.patch(
        &format!("/Groups/{group}"),
        json!([{"op": "Remove", "path": "members", "value": [{"value": alice}]}]),
    )
    .await
    .assert_error(404, None);
    b.delete(&format!("/Groups/{group}"))
        .await
        .assert_error(404, None);
    let b_group = b.create_group("B Admins", "b-group").await;
    b.patch(
        &format!("/Groups/{b_group}"),
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": alice}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));

    // Names are unique per tenant: B can neither squat A's names nor learn they exist.
    b.create_user("alice@a.example.com", Some("oid-b-alice"))
        .await;
    b.create_group("Admins", "b-admins").await;

    // A's user, group and membership are untouched.
    let uid = a.user_id(&alice).await;
    assert_eq!(teams_of_user(&app.state, uid).await, ["a-admins"]);
    let got = a.get(&format!("/Groups/{group}")).await;
    assert_eq!(got.body["members"][0]["value"], json!(alice));
    assert_eq!(
        identity(&app.state, uid).await.0,
        format!("{TENANT_A}/oid-alice")
    );
}

#[tokio::test]
async fn case_j1_a_group_tenant_b_pushes_with_tenant_a_ids_grants_no_team_and_reaches_no_a_user() {
    let app = app().await;
    let a = ScimClient::new(
        &app,
        "partners",
        &tenant_token(&app, "partners", TENANT_A).await,
    );
    let b = ScimClient::new(
        &app,
        "partners",
        &tenant_token(&app, "partners", TENANT_B).await,
    );
    let alice = a
        .create_user("alice@a.example.com", Some("oid-alice"))
        .await;
    let alice_uid = a.user_id(&alice).await;
    assert_eq!(teams_of_user(&app.state, alice_uid).await, ["everyone"]);

    // Tenant B's job: a user claiming A's user's object id, and a group claiming A's mapped
    // group id, with that user as member.
    let eve = b.create_user("eve@b.example.com", Some("oid-alice")).await;
    let forged = b.create_group("Forged Admins", GROUP_A).await;
    b.add_member(&forged, &eve).await;
    let eve_uid = b.user_id(&eve).await;
    assert_ne!(eve_uid, alice_uid, "B's externalId names B's own identity");
    assert_eq!(
        identity(&app.state, eve_uid).await.0,
        format!("{TENANT_B}/oid-alice")
    );
    assert_eq!(
        teams_of_user(&app.state, eve_uid).await,
        ["everyone"],
        "A's mapping never matches B's group"
    );
    // Renaming, re-keying or replacing the members of B's group changes nothing either.
    b.patch(
        &format!("/Groups/{forged}"),
        json!([{"op": "replace", "value": {"externalId": GROUP_A.to_uppercase(), "displayName": "Admins"}}]),
    )
    .await
    .assert_status(204);
    assert_eq!(teams_of_user(&app.state, eve_uid).await, ["everyone"]);
    // Deactivating B's user leaves A's user alone.
    b.patch(
        &format!("/Users/{eve}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .assert_status(200);
    assert!(
        identity(&app.state, alice_uid).await.1,
        "A's user is still active"
    );
    assert_eq!(teams_of_user(&app.state, alice_uid).await, ["everyone"]);

    // The same group pushed by A's job grants A's team.
    let real = a.create_group("Admins", GROUP_A).await;
    a.add_member(&real, &alice).await;
    assert_eq!(teams_of_user(&app.state, alice_uid).await, ["a-admins"]);
    let audit = audit_actions(&app.state, alice_uid).await;
    assert!(
        audit.iter().any(|(action, _)| action == "membership.add"),
        "{audit:?}"
    );
}

/// A multi-tenant Entra provider with SCIM on, beside a test IdP speaking for tenants A and B.
async fn login_rig() -> Rig {
    Rig::start_with_teams(
        "entra",
        TestIdpOptions::entra_multi_tenant(),
        &format!(
            "tenant = \"common\"\nallowed_tenants = [\"{TENANT_A}\", \"{TENANT_B}\"]\nscim = {{ enabled = true }}"
        ),
        &format!(
            "[[team]]\nid = \"a-admins\"\nroles = [{{ scope = \"org/acme\", role = \"owner\" }}]\ngroups = [{{ provider = \"{PROVIDER}\", tenant = \"{TENANT_A}\", id = \"{GROUP_A}\" }}]\n"
        ),
    )
    .await
}

#[tokio::test]
async fn case_j1_a_multi_tenant_login_of_a_scim_provisioned_user_joins_the_scim_identity() {
    let rig = login_rig().await;
    let a = ScimClient::new(
        &rig.app,
        PROVIDER,
        &tenant_token(&rig.app, PROVIDER, TENANT_A).await,
    );
    let user = EntraUser::new(TENANT_A, "alice@a.example.com");
    // Entra provisions the user (externalId = objectId) and its group before the first sign-in.
    let alice = a.create_user("alice@a.example.com", Some(&user.oid)).await;
    let group = a.create_group("Admins", GROUP_A).await;
    a.add_member(&group, &alice).await;
    let provisioned = a.user_id(&alice).await;
    assert_eq!(
        teams_of_user(&rig.app.state, provisioned).await,
        ["a-admins"]
    );

    // The sign-in carries no groups claim: the SCIM groups alone grant the team.
    rig.idp.set_next_login(user.login_spec());
    rig.login().await.assert_signed_in();
    let (status, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["teams"][0]["id"], "a-admins");
    assert_eq!(info["teams"][0]["grants"][0]["source"], "scim");
    assert_eq!(
        info["teams"][0]["grants"][0]["via"],
        json!(format!("{TENANT_A}/{GROUP_A}"))
    );
    let subjects = crate::oidc_common::subjects(&rig.app).await;
    assert_eq!(
        subjects,
        vec![format!("{TENANT_A}/{}", user.oid)],
        "one identity: the login joined the SCIM one"
    );
    // Deprovisioning through SCIM reaches the signed-in session.
    a.patch(
        &format!("/Users/{alice}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .assert_status(200);
    let (status, _) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn case_j1_a_tenant_b_login_whose_groups_claim_names_tenant_a_groups_gets_no_tenant_a_team() {
    let rig = login_rig().await;
    // Group claims are the signing tenant's: B's token listing A's group id maps to nothing.
    let eve = EntraUser::new(TENANT_B, "eve@b.example.com").with_groups([GROUP_A]);
    rig.idp.set_next_login(eve.login_spec());
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
    // The same claim from tenant A grants the team.
    let alice = EntraUser::new(TENANT_A, "alice@a.example.com").with_groups([GROUP_A]);
    rig.idp.set_next_login(alice.login_spec());
    let browser = new_browser();
    login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(info["teams"][0]["id"], "a-admins", "{info}");
}

#[tokio::test]
async fn e4_an_overage_of_a_multi_tenant_user_asks_graph_about_that_tenants_mapped_groups() {
    let rig = login_rig().await;
    // Graph answers for the user's own tenant, about plain object ids; the answer is that
    // tenant's groups (security case J1).
    let alice = EntraUser::new(TENANT_A, "alice@a.example.com").with_groups([GROUP_A]);
    rig.idp.set_next_login(alice.overage_login_spec(&rig.idp));
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "a-admins", "{info}");
    assert_eq!(
        info["teams"][0]["grants"][0]["via"],
        json!(format!("{TENANT_A}/{GROUP_A}"))
    );
    // The same group id in tenant B's directory maps to nothing.
    let eve = EntraUser::new(TENANT_B, "eve@b.example.com").with_groups([GROUP_A]);
    rig.idp.set_next_login(eve.overage_login_spec(&rig.idp));
    let browser = new_browser();
    login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
}
