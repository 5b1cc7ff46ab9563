//! SCIM requests Entra and Okta send that used to be refused or ignored, replayed in each
//! dialect (Entra's default, its `aadOptscim062020` flag, Okta's): a changed `externalId` (IdP
//! quirk S12, security case J2), PATCH `remove` of `externalId`, `active` and the whole
//! enterprise extension (RFC 7644 §3.5.2.2, security case J3), Entra's membership probe
//! `members eq "<user>"` (S6), and a name or email change reaching the signed-in user's
//! `/auth` answer at once (security case J5).

use serde_json::json;

use crate::forward_auth_support::{Agent, Gate, PROVIDER, claims_of, signed_in, spawn_scim, user};
use crate::scim_support::{
    ADMINS_GROUP_ID, ENTERPRISE, ScimClient, ScimRig, USER, audit_actions, identity, teams_of_user,
};

/// A login identity of provider `entra` with `subject`, as a sign-in makes it.
async fn login_identity(rig: &ScimRig, subject: &str, email: &str, name: &str) -> i64 {
    let login = teamgate::store::users::LoginProfile {
        provider: "entra".into(),
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: true,
        name: Some(name.into()),
        claims_groups: Some(vec![]),
    };
    rig.app
        .state
        .store
        .write(move |tx| tx.upsert_login_user(&login, "2024-01-01T00:00:00Z"))
        .await
        .unwrap()
        .id
}

/// An Entra user in the `admins` group (mapped by its object id).
async fn entra_admin(rig: &ScimRig, user_name: &str, oid: &str) -> String {
    let id = rig.create_user("entra", user_name, Some(oid)).await;
    let found = rig
        .filter("entra", "Groups", "displayName eq \"Admins\"")
        .await;
    let group = match found.body["Resources"][0]["id"].as_str() {
        Some(g) => g.to_owned(),
        None => {
            rig.create_group("entra", "Admins", Some(ADMINS_GROUP_ID))
                .await
        }
    };
    rig.patch(
        "entra",
        &format!("/Groups/{group}"),
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]),
    )
    .await
    .assert_status(204);
    id
}

fn actions(audit: &[(String, String)]) -> Vec<&str> {
    audit.iter().map(|(a, _)| a.as_str()).collect()
}

// ---- externalId changes (S12, J2) ----

#[tokio::test]
async fn s12_entra_replaces_external_id_in_both_dialects_and_the_login_link_follows() {
    let rig = ScimRig::start().await;
    let id = entra_admin(&rig, "alice@contoso.com", "oid-1").await;
    let path = format!("/Users/{id}");
    let first = rig.user_id("entra", &id).await;
    rig.add_session(first).await;
    assert_eq!(rig.teams(first).await, ["admins"]);

    // Default dialect: `Replace externalId` among the other replaces of Entra's mapping.
    let r = rig
        .patch(
            "entra",
            &path,
            json!([
                {"op": "Replace", "path": "externalId", "value": "oid-2"},
                {"op": "Replace", "path": "displayName", "value": "Alice"},
                {"op": "Replace", "path": "active", "value": "True"}
            ]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["externalId"], "oid-2");
    let second = rig.user_id("entra", &id).await;
    assert_ne!(second, first, "the link moved");
    assert_eq!(identity(&rig.app.state, second).await.0, "oid-2");
    assert_eq!(
        rig.teams(second).await,
        ["admins"],
        "the SCIM teams moved with it"
    );
    // The identity left behind: disabled like a deleted user's, sessions ended, no teams.
    assert!(!rig.identity_active(first).await);
    assert_eq!(rig.sessions(first).await, 0);
    assert!(rig.teams(first).await.is_empty());
    let moved = audit_actions(&rig.app.state, second).await;
    assert!(actions(&moved).contains(&"scim.user.relink"), "{moved:?}");
    let relink = moved.iter().find(|(a, _)| a == "scim.user.relink").unwrap();
    assert!(relink.1.contains("externalId oid-1 -> oid-2"), "{relink:?}");
    assert!(actions(&audit_actions(&rig.app.state, first).await).contains(&"scim.user.unlink"));
    // Entra's look-up by externalId follows (the index is the login subject's).
    let r = rig
        .filter("entra", "Users", "externalId eq \"oid-2\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = rig
        .filter("entra", "Users", "externalId eq \"oid-1\"")
        .await;
    assert_eq!(r.body["totalResults"], 0);

    // aadOptscim062020: a no-path replace whose value names externalId (S5), onto an identity
    // a sign-in already made: it is linked as it is (its profile is the login's).
    let login = login_identity(&rig, "oid-3", "alice.login@contoso.com", "Alice Login").await;
    let r = rig
        .patch(
            "entra",
            &path,
            json!([{"op": "replace", "value": {"externalId": "oid-3", "displayName": "Alice"}}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(rig.user_id("entra", &id).await, login);
    assert_eq!(rig.teams(login).await, ["admins"]);
    let (_, active, email, verified, name) = identity(&rig.app.state, login).await;
    assert!(active && verified);
    assert_eq!(
        (email.as_deref(), name.as_deref()),
        (Some("alice.login@contoso.com"), Some("Alice Login"))
    );
    assert!(!rig.identity_active(second).await);
    // Replacing it with the value it has is no change at all.
    let etag = rig.get("entra", &path).await.etag();
    rig.patch(
        "entra",
        &path,
        json!([{"op": "Replace", "path": "externalId", "value": "oid-3"}]),
    )
    .await
    .assert_status(200);
    assert_eq!(rig.get("entra", &path).await.etag(), etag);
}

#[tokio::test]
async fn case_j2_an_external_id_another_provisioned_user_is_linked_through_is_409_and_changes_nothing()
 {
    let rig = ScimRig::start().await;
    let alice = entra_admin(&rig, "alice@contoso.com", "oid-alice").await;
    let bob = rig
        .create_user("entra", "bob@contoso.com", Some("oid-bob"))
        .await;
    let (alice_uid, bob_uid) = (
        rig.user_id("entra", &alice).await,
        rig.user_id("entra", &bob).await,
    );
    let before = rig.get("entra", &format!("/Users/{bob}")).await;
    for ops in [
        json!([{"op": "Replace", "path": "externalId", "value": "oid-alice"}]),
        json!([{"op": "replace", "value": {"externalId": "oid-alice"}}]),
    ] {
        rig.patch("entra", &format!("/Users/{bob}"), ops)
            .await
            .assert_error(409, Some("uniqueness"));
    }
    rig.put(
        "entra",
        &format!("/Users/{bob}"),
        &json!({"schemas": [USER], "userName": "bob@contoso.com", "externalId": "oid-alice"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    assert_eq!(
        rig.get("entra", &format!("/Users/{bob}")).await.etag(),
        before.etag()
    );
    assert_eq!(rig.user_id("entra", &bob).await, bob_uid);
    assert_eq!(rig.user_id("entra", &alice).await, alice_uid);
    assert!(rig.identity_active(alice_uid).await && rig.identity_active(bob_uid).await);
    assert_eq!(rig.teams(alice_uid).await, ["admins"]);
}

#[tokio::test]
async fn k4_okta_puts_the_whole_user_with_another_external_id_and_the_link_follows() {
    let rig = ScimRig::start().await;
    let body = |external_id: Option<&str>| {
        let mut b = json!({"schemas": [USER], "userName": "dana@example.com", "active": true,
            "name": {"givenName": "Dana", "familyName": "Scully"},
            "emails": [{"primary": true, "value": "dana@example.com", "type": "work"}],
            "groups": []});
        if let Some(e) = external_id {
            b["externalId"] = json!(e);
        }
        b
    };
    let r = rig.post("okta", "/Users", &body(Some("00u1"))).await;
    r.assert_status(201);
    let id = r.id();
    let first = rig.user_id("okta", &id).await;
    // A PUT without externalId does not assert it: the link stays (RFC 7644 §3.5.1).
    let r = rig.put("okta", &format!("/Users/{id}"), &body(None)).await;
    r.assert_status(200);
    assert_eq!(r.body["externalId"], "00u1");
    assert_eq!(rig.user_id("okta", &id).await, first);
    // A PUT with another one moves the link.
    let r = rig
        .put("okta", &format!("/Users/{id}"), &body(Some("00u2")))
        .await;
    r.assert_status(200);
    let second = rig.user_id("okta", &id).await;
    assert_ne!(second, first);
    assert_eq!(identity(&rig.app.state, second).await.0, "00u2");
    assert!(!rig.identity_active(first).await);
}

// ---- PATCH remove (RFC 7644 §3.5.2.2, J3) ----

#[tokio::test]
async fn case_j3_patch_remove_of_external_id_links_the_user_to_its_placeholder_and_ends_the_old_sessions()
 {
    let rig = ScimRig::start().await;
    for (op, user_name) in [("Remove", "ann@contoso.com"), ("remove", "ben@contoso.com")] {
        let id = entra_admin(&rig, user_name, &format!("oid-{user_name}")).await;
        let linked = rig.user_id("entra", &id).await;
        rig.add_session(linked).await;
        let r = rig
            .patch(
                "entra",
                &format!("/Users/{id}"),
                json!([{"op": op, "path": "externalId"}]),
            )
            .await;
        r.assert_status(200);
        assert!(r.body.get("externalId").is_none(), "{}", r.body);
        let now = rig.user_id("entra", &id).await;
        assert_eq!(identity(&rig.app.state, now).await.0, format!("scim:{id}"));
        assert_eq!(
            rig.teams(now).await,
            ["admins"],
            "still provisioned, still in its group"
        );
        assert!(!rig.identity_active(linked).await);
        assert_eq!(rig.sessions(linked).await, 0);
        assert!(rig.teams(linked).await.is_empty());
    }
}

#[tokio::test]
async fn case_j3_patch_remove_of_active_leaves_it_unassigned_which_reads_as_active_for_access_too()
{
    // RFC 7644 §3.5.2.2: the attribute is removed and "SHALL be considered unassigned";
    // RFC 7643 §4.1.1 leaves what `active` means to the server: teamgate reads unassigned as
    // active, as for a user created without it, and access follows (security case J3).
    let rig = ScimRig::start().await;
    let id = entra_admin(&rig, "carl@contoso.com", "oid-carl").await;
    let uid = rig.user_id("entra", &id).await;
    let path = format!("/Users/{id}");
    rig.patch(
        "entra",
        &path,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await
    .assert_status(200);
    assert!(rig.teams(uid).await.is_empty());
    for (i, op) in ["remove", "Remove"].into_iter().enumerate() {
        let r = rig
            .patch("entra", &path, json!([{"op": op, "path": "active"}]))
            .await;
        r.assert_status(200);
        assert!(
            r.body.get("active").is_none(),
            "removed: unassigned, so not rendered"
        );
        let got = rig.get("entra", &path).await;
        assert!(got.body.get("active").is_none(), "{}", got.body);
        assert!(rig.identity_active(uid).await, "the login identity follows");
        assert_eq!(rig.teams(uid).await, ["admins"], "and so do its teams");
        let r = rig.filter("entra", "Users", "active eq true").await;
        assert_eq!(r.body["totalResults"], 1);
        if i == 0 {
            let audit = rig.audit(uid).await;
            assert!(
                audit.iter().any(|(a, _, _, d)| a == "scim.user.activate"
                    && d.contains("unassigned reads as active")),
                "{audit:?}"
            );
            rig.patch(
                "entra",
                &path,
                json!([{"op": "replace", "path": "active", "value": false}]),
            )
            .await
            .assert_status(200);
            assert!(!rig.identity_active(uid).await);
        }
    }
}

#[tokio::test]
async fn rfc7644_patch_remove_of_the_enterprise_extension_removes_all_of_it_in_each_dialect() {
    let rig = ScimRig::start().await;
    let with_extension = |user_name: &str| {
        json!({"schemas": [USER, ENTERPRISE], "userName": user_name, "externalId": format!("x-{user_name}"),
            "active": true, ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}})
    };
    // Entra's default dialect capitalises the op, its aadOptscim062020 flag does not (S1).
    for (provider, op, dialect) in [("entra", "Remove", "default"), ("entra", "remove", "flag")] {
        let user_name = format!("{dialect}@example.com");
        let r = rig
            .post(provider, "/Users", &with_extension(&user_name))
            .await;
        r.assert_status(201);
        let id = r.id();
        let r = rig
            .patch(
                provider,
                &format!("/Users/{id}"),
                json!([{"op": op, "path": ENTERPRISE}]),
            )
            .await;
        r.assert_status(200);
        assert!(r.body.get(ENTERPRISE).is_none(), "{}", r.body);
        assert_eq!(
            r.body["schemas"],
            json!([USER]),
            "the URN leaves schemas too"
        );
        let got = rig.get(provider, &format!("/Users/{id}")).await;
        assert!(got.body.get(ENTERPRISE).is_none());
        assert_eq!(
            got.body["userName"],
            json!(user_name),
            "the core attributes stay"
        );
        // Removing it again is no error and no change.
        let etag = got.etag();
        rig.patch(
            provider,
            &format!("/Users/{id}"),
            json!([{"op": op, "path": ENTERPRISE}]),
        )
        .await
        .assert_status(200);
        assert_eq!(
            rig.get(provider, &format!("/Users/{id}")).await.etag(),
            etag
        );
    }
    let r = rig
        .filter("entra", "Users", &format!("{ENTERPRISE}:employeeNumber pr"))
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // Okta removes attributes by PUTting the user without them (K4).
    let r = rig
        .post("okta", "/Users", &with_extension("okta@example.com"))
        .await;
    let id = r.id();
    let mut body = with_extension("okta@example.com");
    body.as_object_mut().unwrap().remove(ENTERPRISE);
    let r = rig.put("okta", &format!("/Users/{id}"), &body).await;
    r.assert_status(200);
    assert!(r.body.get(ENTERPRISE).is_none(), "{}", r.body);
}

#[tokio::test]
async fn rfc7644_patch_remove_of_a_groups_external_id_changes_the_key_its_mapping_sees() {
    let rig = ScimRig::start().await;
    let id = entra_admin(&rig, "erin@contoso.com", "oid-erin").await;
    let uid = rig.user_id("entra", &id).await;
    let group = rig
        .filter("entra", "Groups", "displayName eq \"Admins\"")
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    rig.patch(
        "entra",
        &format!("/Groups/{group}"),
        json!([{"op": "remove", "path": "externalId"}]),
    )
    .await
    .assert_status(204);
    let got = rig.get("entra", &format!("/Groups/{group}")).await;
    assert!(got.body.get("externalId").is_none(), "{}", got.body);
    assert_eq!(
        rig.teams(uid).await,
        ["everyone"],
        "the group no longer maps"
    );
    rig.patch(
        "entra",
        &format!("/Groups/{group}"),
        json!([{"op": "Add", "path": "externalId", "value": ADMINS_GROUP_ID}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(uid).await, ["admins"]);
}

// ---- Entra's membership probe (S6) ----

#[tokio::test]
async fn s6_entra_probes_membership_with_members_eq_and_finds_the_group_only_for_a_member() {
    let rig = ScimRig::start().await;
    let member = entra_admin(&rig, "fay@contoso.com", "oid-fay").await;
    let outsider = rig
        .create_user("entra", "gus@contoso.com", Some("oid-gus"))
        .await;
    let group = rig
        .filter("entra", "Groups", "displayName eq \"Admins\"")
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (user, found) in [(&member, 1), (&outsider, 0)] {
        // Exactly as Entra sends it: the filter and attributes=id in the query.
        let filter = format!("id eq \"{group}\" and members eq \"{user}\"");
        let rb = rig
            .req(reqwest::Method::GET, "entra", "/Groups")
            .query(&[("filter", filter.as_str()), ("attributes", "id")]);
        let r = rig.send(rb).await;
        r.assert_status(200);
        assert_eq!(r.body["totalResults"], found, "{filter}");
        if found == 1 {
            let resource = &r.body["Resources"][0];
            assert_eq!(resource["id"], json!(group));
            assert!(resource.get("members").is_none() && resource.get("displayName").is_none());
        }
        // The same probe with excludedAttributes, and the plain form on its own.
        let filter = format!("members eq \"{user}\"");
        let rb = rig.req(reqwest::Method::GET, "entra", "/Groups").query(&[
            ("filter", filter.as_str()),
            ("excludedAttributes", "members"),
        ]);
        assert_eq!(rig.send(rb).await.body["totalResults"], found);
    }
    // The members of another provider are never found through this one.
    let r = rig
        .filter("okta", "Groups", &format!("members eq \"{member}\""))
        .await;
    assert_eq!(r.body["totalResults"], 0);
}

// ---- Profile from SCIM (J5) ----

async fn auth(agent: &Agent, gate: &Gate) -> reqwest::Response {
    agent.get(&gate.url("/auth")).await
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn case_j5_a_scim_name_or_email_change_reaches_auth_and_the_assertion_at_once() {
    let (gate, token) = spawn_scim().await;
    let scim = ScimClient::at(&gate.direct, &gate.state, PROVIDER, &token);
    let agent = signed_in(&gate, user("sub-hana", "hana@example.com", &["g-eng"])).await;
    let r = auth(&agent, &gate).await;
    assert_eq!(header(&r, "x-teamgate-name"), "hana Example");
    // The IdP provisions the signed-in person (externalId = the login subject): linking alone
    // rewrites nothing the login established.
    let id = scim
        .create_user("hana.scim@example.com", Some("sub-hana"))
        .await;
    let uid = scim.user_id(&id).await;
    let r = auth(&agent, &gate).await;
    assert_eq!(header(&r, "x-teamgate-name"), "hana Example");
    assert_eq!(header(&r, "x-teamgate-email"), "hana@example.com");

    // Entra's default dialect renames her: /auth says so on the very next request.
    scim.patch(
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "displayName", "value": "Hana Renamed"}]),
    )
    .await
    .assert_status(200);
    let r = auth(&agent, &gate).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-teamgate-name"), "Hana Renamed");
    let claims = claims_of(&header(&r, "x-teamgate-assertion"));
    assert_eq!(claims["name"], "Hana Renamed");

    // The flag's form, with the work email: the email changes, and is no longer verified.
    scim.patch(
        &format!("/Users/{id}"),
        json!([
            {"op": "replace", "value": {"displayName": "Hana Flag"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "hana.new@example.com"}
        ]),
    )
    .await
    .assert_status(200);
    let r = auth(&agent, &gate).await;
    assert_eq!(header(&r, "x-teamgate-name"), "Hana Flag");
    // Apps get an email only when it is verified: the old one is gone at once, and the new
    // one is not handed out until a sign-in verifies it.
    assert_eq!(header(&r, "x-teamgate-email"), "");
    assert_eq!(header(&r, "x-teamgate-email-verified"), "false");
    let (_, _, email, verified, _) = identity(&gate.state, uid).await;
    assert_eq!(email.as_deref(), Some("hana.new@example.com"));
    assert!(!verified, "an email set by SCIM is not verified");
    let audit = audit_actions(&gate.state, uid).await;
    let profile: Vec<&String> = audit
        .iter()
        .filter(|(a, _)| a == "user.profile")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(profile.len(), 2, "{audit:?}");
    assert!(profile[0].contains("from SCIM") && profile[0].contains("Hana Renamed"));
    assert!(
        profile[1].contains("not verified: set by SCIM"),
        "{profile:?}"
    );

    // Re-sending unchanged values (Entra's periodic cycle, Okta's PUT) changes nothing; the
    // next sign-in is the newest source and sets the IdP's values back.
    agent_sign_in_again(&gate, &agent).await;
    let r = auth(&agent, &gate).await;
    assert_eq!(header(&r, "x-teamgate-name"), "hana Example");
    assert_eq!(header(&r, "x-teamgate-email"), "hana@example.com");
    let (_, _, _, verified, _) = identity(&gate.state, uid).await;
    assert!(verified);
    let audit = audit_actions(&gate.state, uid).await;
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "user.profile" && d.contains("from the sign-in")),
        "{audit:?}"
    );
    scim.patch(
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "displayName", "value": "Hana Flag"}]),
    )
    .await
    .assert_status(200);
    let r = auth(&agent, &gate).await;
    assert_eq!(
        header(&r, "x-teamgate-name"),
        "hana Example",
        "an unchanged value is no news"
    );
}

async fn agent_sign_in_again(gate: &Gate, agent: &Agent) {
    crate::forward_auth_support::sign_in(
        gate,
        agent,
        &gate.direct.clone(),
        user("sub-hana", "hana@example.com", &["g-eng"]),
    )
    .await;
}

#[tokio::test]
async fn case_j5_okta_puts_a_new_name_and_the_identity_follows() {
    let rig = ScimRig::start().await;
    let body = |given: &str| {
        json!({"schemas": [USER], "userName": "ivy@example.com", "externalId": "00uivy", "active": true,
            "name": {"givenName": given, "familyName": "Ng"},
            "emails": [{"primary": true, "value": "ivy@example.com", "type": "work"}]})
    };
    let r = rig.post("okta", "/Users", &body("Ivy")).await;
    let id = r.id();
    let uid = rig.user_id("okta", &id).await;
    assert_eq!(
        identity(&rig.app.state, uid).await.4.as_deref(),
        Some("Ivy Ng")
    );
    rig.put("okta", &format!("/Users/{id}"), &body("Ivonne"))
        .await
        .assert_status(200);
    assert_eq!(
        identity(&rig.app.state, uid).await.4.as_deref(),
        Some("Ivonne Ng")
    );
    let audit = audit_actions(&rig.app.state, uid).await;
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "user.profile" && d.contains("\"Ivonne Ng\"")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn case_j5_an_email_set_by_scim_claims_no_config_membership() {
    let (gate, token) = spawn_scim().await;
    let scim = ScimClient::at(&gate.direct, &gate.state, PROVIDER, &token);
    // `everyone` names alice@example.com and bob@example.com as members (verified emails only).
    let id = scim
        .create_user("mallory@example.com", Some("sub-mallory"))
        .await;
    let uid = scim.user_id(&id).await;
    scim.patch(
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@example.com"}]),
    )
    .await
    .assert_status(200);
    let (_, _, email, verified, _) = identity(&gate.state, uid).await;
    assert_eq!(email.as_deref(), Some("alice@example.com"));
    assert!(!verified);
    assert!(
        teams_of_user(&gate.state, uid).await.is_empty(),
        "a SCIM email never claims the teams that name it"
    );
}
