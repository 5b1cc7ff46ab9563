//! `match_by_email` (security case J4): a provisioned user whom no id links to a login (a SCIM
//! client that sends no `externalId`) is joined by the first sign-in whose VERIFIED email equals
//! its userName or primary email, once, audited; never with an unverified email, never when two
//! SCIM users could be meant, never across the tenants of a multi-tenant provider, and never
//! when the key is off (the default).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::new_browser;
use crate::oidc_common::{PROVIDER, Rig, STAFF_GROUP, TENANT_A, TENANT_B, login, me, subjects};
use crate::scim_support::{ScimClient, USER, audit_actions, identity, tenant_token};
use crate::test_idp::{EntraUser, LoginSpec, TestIdpOptions};

async fn okta(match_by_email: bool) -> Rig {
    Rig::start(
        "okta",
        TestIdpOptions::default(),
        &format!("match_by_email = {match_by_email}\nscim = {{ enabled = true }}"),
    )
    .await
}

async fn scim(rig: &Rig) -> ScimClient {
    let token = crate::scim_support::token(&rig.app, PROVIDER).await;
    ScimClient::new(&rig.app, PROVIDER, &token)
}

/// A user as a SCIM client without an externalId mapping provisions it, in the `staff` group
/// (Okta groups map by name).
async fn provision(scim: &ScimClient, user_name: &str, email: &str) -> String {
    let r = scim
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": user_name, "active": true,
                "name": {"givenName": "Pat", "familyName": "Doe"},
                "emails": [{"primary": true, "value": email, "type": "work"}]}),
        )
        .await;
    r.assert_status(201);
    r.id()
}

async fn staff_group(scim: &ScimClient, members: &[&str]) {
    let members: Vec<_> = members.iter().map(|m| json!({"value": m})).collect();
    scim.post(
        "/Groups",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": STAFF_GROUP, "members": members}),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn case_j4_match_by_email_joins_a_first_sign_in_with_a_verified_email_to_the_scim_user_once()
{
    let rig = okta(true).await;
    let scim = scim(&rig).await;
    let pat = provision(&scim, "pat@example.com", "pat@example.com").await;
    staff_group(&scim, &[&pat]).await;
    let provisioned = scim.user_id(&pat).await;
    assert!(
        identity(&rig.app.state, provisioned)
            .await
            .0
            .starts_with("scim:")
    );

    rig.idp
        .set_next_login(LoginSpec::new("00upat", "pat@example.com"));
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "staff", "{info}");
    assert_eq!(info["teams"][0]["grants"][0]["source"], "scim");
    let (subject, _, email, verified, _) = identity(&rig.app.state, provisioned).await;
    assert_eq!(
        subject, "00upat",
        "the provisioned identity took the login subject"
    );
    assert_eq!(email.as_deref(), Some("pat@example.com"));
    assert!(verified);
    assert_eq!(subjects(&rig.app).await, ["00upat"], "no second identity");
    let audit = audit_actions(&rig.app.state, provisioned).await;
    let linked: Vec<_> = audit
        .iter()
        .filter(|(a, _)| a == "identity.link_by_email")
        .collect();
    assert_eq!(linked.len(), 1, "{audit:?}");
    assert!(
        linked[0].1.contains("verified email pat@example.com"),
        "{linked:?}"
    );

    // The join is by id from now on: SCIM deprovisioning reaches the session.
    scim.patch(
        &format!("/Users/{pat}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await
    .assert_status(200);
    let (status, _) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Once: another subject with the same verified email is a new identity.
    rig.idp
        .set_next_login(LoginSpec::new("00uother", "pat@example.com"));
    let browser = new_browser();
    login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
    assert_eq!(subjects(&rig.app).await, ["00upat", "00uother"]);
}

#[tokio::test]
async fn case_j4_match_by_email_never_joins_on_an_unverified_or_ambiguous_email() {
    let rig = okta(true).await;
    let scim = scim(&rig).await;
    let quinn = provision(&scim, "quinn@example.com", "quinn@example.com").await;
    staff_group(&scim, &[&quinn]).await;
    let mut unverified = LoginSpec::new("00uquinn", "quinn@example.com");
    unverified.email_verified = Some(false);
    rig.idp.set_next_login(unverified);
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
    let placeholder = scim.user_id(&quinn).await;
    assert!(
        identity(&rig.app.state, placeholder)
            .await
            .0
            .starts_with("scim:")
    );

    // Two SCIM users could be meant (one by userName, one by primary email): no join.
    provision(&scim, "robin@example.com", "robin.work@example.com").await;
    provision(&scim, "robin.sso", "robin@example.com").await;
    rig.idp
        .set_next_login(LoginSpec::new("00urobin", "robin@example.com"));
    let browser = new_browser();
    login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    assert!(subjects(&rig.app).await.contains(&"00urobin".to_owned()));
    let audit = crate::helpers::sql_count(
        &rig.app.state,
        "SELECT COUNT(*) FROM audit WHERE action = 'identity.link_by_email'",
        &[],
    )
    .await;
    assert_eq!(audit, 0);
}

#[tokio::test]
async fn case_j4_without_match_by_email_a_verified_email_joins_nothing() {
    let rig = okta(false).await;
    let scim = scim(&rig).await;
    let sam = provision(&scim, "sam@example.com", "sam@example.com").await;
    staff_group(&scim, &[&sam]).await;
    rig.idp
        .set_next_login(LoginSpec::new("00usam", "sam@example.com"));
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
    assert!(
        identity(&rig.app.state, scim.user_id(&sam).await)
            .await
            .0
            .starts_with("scim:")
    );
}

#[tokio::test]
async fn case_j4_match_by_email_never_joins_across_tenants() {
    let rig = Rig::start_with_teams(
        "entra",
        TestIdpOptions::entra_multi_tenant(),
        &format!(
            "tenant = \"common\"\nallowed_tenants = [\"{TENANT_A}\", \"{TENANT_B}\"]\nmatch_by_email = true\nscim = {{ enabled = true }}"
        ),
        "",
    )
    .await;
    let a = ScimClient::new(
        &rig.app,
        PROVIDER,
        &tenant_token(&rig.app, PROVIDER, TENANT_A).await,
    );
    let r = a
        .post(
            "/Users",
            &json!({"schemas": [USER], "userName": "tess@shared.example.com", "active": true}),
        )
        .await;
    r.assert_status(201);
    let tess = r.id();
    let group = a.create_group("Staff", STAFF_GROUP).await;
    a.add_member(&group, &tess).await;
    let verified = |tid: &str| {
        let mut user = EntraUser::new(tid, "tess@shared.example.com");
        user.email = Some("tess@shared.example.com".into());
        let spec = user.login_spec().claim("xms_edov", json!(true));
        (user, spec)
    };
    // Tenant B's user with the same verified email is someone else.
    let (eve, spec) = verified(TENANT_B);
    rig.idp.set_next_login(spec);
    rig.login().await.assert_signed_in();
    let (_, info) = me(&rig.app, &rig.app.browser).await;
    assert_eq!(info["teams"][0]["id"], "everyone", "{info}");
    assert!(
        subjects(&rig.app)
            .await
            .contains(&format!("{TENANT_B}/{}", eve.oid))
    );
    assert!(
        identity(&rig.app.state, a.user_id(&tess).await)
            .await
            .0
            .starts_with("scim:")
    );
    // Tenant A's is the provisioned user.
    let (tess_login, spec) = verified(TENANT_A);
    rig.idp.set_next_login(spec);
    let browser = new_browser();
    login(&rig.app, &browser, &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
    let (_, info) = me(&rig.app, &browser).await;
    assert_eq!(info["teams"][0]["id"], "staff", "{info}");
    assert_eq!(
        identity(&rig.app.state, a.user_id(&tess).await).await.0,
        format!("{TENANT_A}/{}", tess_login.oid)
    );
}
