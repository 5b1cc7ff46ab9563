//! The documented Microsoft Entra provisioning sequence, replayed request by request with
//! Entra's own bodies (learn.microsoft.com "Tutorial: develop a SCIM endpoint", IdP quirk S1-S9):
//! Test Connection, create user, the look-ups, updates in both dialects, disable with "False",
//! group creation with Entra's extra schema, members added and removed both ways, deletions.

use serde_json::json;

use crate::scim_support::{
    ADMINS_GROUP_ID, ENTERPRISE, GROUP, PATCH_OP, ScimRig, USER, member_ids,
};

#[tokio::test]
async fn test_connection_finds_nobody_with_200_and_an_empty_list() {
    let rig = ScimRig::start().await;
    let r = rig
        .filter(
            "entra",
            "Users",
            "userName eq \"non-existent user 8a4d0a56-7fb1-4a4c-a1c2-77c3f4ad3c0c\"",
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(r.headers["content-type"], "application/scim+json");
}

#[tokio::test]
async fn the_entra_user_lifecycle_runs_end_to_end() {
    let rig = ScimRig::start().await;
    // Create User, exactly as Entra sends it (client meta ignored, empty roles).
    let created = rig
        .post(
            "entra",
            "/Users",
            &json!({
                "schemas": [USER, ENTERPRISE],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": []
            }),
        )
        .await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(
        created.body["userName"],
        "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    let location = created.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(location, rig.app.url(&format!("/scim/v2/entra/Users/{id}")));
    assert_eq!(created.body["meta"]["location"], location);
    assert!(
        created.headers["etag"]
            .to_str()
            .unwrap()
            .starts_with("W/\"")
    );

    // Get User, and the three look-ups Entra makes (S6).
    let got = rig.get("entra", &format!("/Users/{id}")).await;
    got.assert_status(200);
    assert_eq!(got.body["name"]["familyName"], "familyName");
    for filter in [
        "userName eq \"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1\"",
        "externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"",
        "emails[type eq \"work\"].value eq \"Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com\"",
    ] {
        let r = rig.filter("entra", "Users", filter).await;
        r.assert_status(200);
        assert_eq!(r.body["totalResults"], 1, "{filter}");
        assert_eq!(r.body["Resources"][0]["id"], json!(id), "{filter}");
    }

    // Update User [Multi-valued properties], default dialect: capitalised ops.
    rig.patch(
        "entra",
        &format!("/Users/{id}"),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
    )
    .await
    .assert_status(200);
    // Update User [Single-valued properties].
    let r = rig
        .patch(
            "entra",
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.body["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    assert_eq!(r.body["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(r.body["name"]["familyName"], "updatedFamilyName");
    assert_eq!(r.body["name"]["givenName"], "givenName");

    // The aadOptscim062020 dialect: lowercase ops, a no-path multi-attribute replace (S5).
    let r = rig
        .patch(
            "entra",
            &format!("/Users/{id}"),
            json!([
                {"op": "replace", "value": {
                    "displayName": "Updated Display",
                    "name.givenName": "UpdatedGiven",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984"
                }},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "flag@microsoft.com"}
            ]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["displayName"], "Updated Display");
    assert_eq!(r.body["name"]["givenName"], "UpdatedGiven");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "701984");
    assert_eq!(r.body["emails"][0]["value"], "flag@microsoft.com");
    assert!(
        r.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE))
    );

    // Disable User: a string "False" (S2); the user stays readable with active:false (S8).
    let user_id = rig.user_id("entra", &id).await;
    rig.add_session(user_id).await;
    let r = rig
        .patch(
            "entra",
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        rig.get("entra", &format!("/Users/{id}")).await.body["active"],
        false
    );
    assert!(!rig.identity_active(user_id).await);
    assert_eq!(
        rig.sessions(user_id).await,
        0,
        "disabling ends the user's sessions"
    );
    assert!(
        rig.teams(user_id).await.is_empty(),
        "a disabled user holds no teams"
    );
    let r = rig.filter("entra", "Users", "active eq false").await;
    assert_eq!(r.body["totalResults"], 1);

    // Delete User (hard delete, about 30 days later): 204, then 404 with the error schema.
    rig.delete("entra", &format!("/Users/{id}"))
        .await
        .assert_status(204);
    rig.get("entra", &format!("/Users/{id}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn the_entra_group_lifecycle_maps_members_to_teams_and_back() {
    let rig = ScimRig::start().await;
    let alice = rig
        .create_user("entra", "alice@contoso.com", Some("oid-alice"))
        .await;
    let bob = rig
        .create_user("entra", "bob@contoso.com", Some("oid-bob"))
        .await;
    let alice_uid = rig.user_id("entra", &alice).await;
    let bob_uid = rig.user_id("entra", &bob).await;
    assert_eq!(
        rig.teams(alice_uid).await,
        ["everyone"],
        "no group yet: the default team"
    );

    // Create Group with Entra's extra schema, its object id as externalId, empty members (S7).
    let created = rig
        .post(
            "entra",
            "/Groups",
            &json!({
                "externalId": ADMINS_GROUP_ID,
                "id": "c4a2d4e6-0000-0000-0000-chosen-by-entra",
                "displayName": "displayName",
                "meta": {"resourceType": "Group"},
                "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "members": []
            }),
        )
        .await;
    created.assert_status(201);
    let gid = created.id();
    assert_ne!(
        gid, "c4a2d4e6-0000-0000-0000-chosen-by-entra",
        "client ids are ignored"
    );

    // Get Group and Get Group by displayName, both without members (S6, S7).
    let r = rig
        .get(
            "entra",
            &format!("/Groups/{gid}?excludedAttributes=members"),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["displayName"], "displayName");
    let r = rig
        .send(rig.req(reqwest::Method::GET, "entra", "/Groups").query(&[
            ("excludedAttributes", "members"),
            ("filter", "displayName eq \"displayName\""),
        ]))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], json!(gid));

    // Update Group [Non-member attributes]: 204.
    rig.patch(
        "entra",
        &format!("/Groups/{gid}"),
        json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]),
    )
    .await
    .assert_status(204);

    // Update Group [Add Members]: $ref null, answered 204 (S4); the mapping grants the team.
    rig.patch(
        "entra",
        &format!("/Groups/{gid}"),
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": alice}, {"$ref": null, "value": bob}]}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(alice_uid).await, ["admins"]);
    assert_eq!(rig.teams(bob_uid).await, ["admins"]);
    let audit = rig.audit(alice_uid).await;
    assert!(
        audit
            .iter()
            .any(|(action, team, trigger, detail)| action == "membership.add"
                && team == "admins"
                && trigger == "scim"
                && detail.contains(&format!("SCIM PATCH /scim/v2/entra/Groups/{gid}"))),
        "the audit row names the SCIM request: {audit:?}"
    );
    let group = rig.get("entra", &format!("/Groups/{gid}")).await;
    let mut want = vec![alice.clone(), bob.clone()];
    want.sort();
    assert_eq!(member_ids(&group.body), want);
    let r = rig
        .filter("entra", "Groups", &format!("members[value eq \"{alice}\"]"))
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let user = rig.get("entra", &format!("/Users/{alice}")).await;
    assert_eq!(user.body["groups"][0]["value"], json!(gid));

    // Update Group [Remove Members], default form (value list, S3)...
    rig.patch(
        "entra",
        &format!("/Groups/{gid}"),
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": alice}]}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(alice_uid).await, ["everyone"]);
    // ...and the aadOptscim062020 form (a value filter, no value).
    rig.patch(
        "entra",
        &format!("/Groups/{gid}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(bob_uid).await, ["everyone"]);
    let group = rig.get("entra", &format!("/Groups/{gid}")).await;
    assert!(member_ids(&group.body).is_empty());

    // Delete Group: 204, then 404; a member's teams follow.
    rig.patch(
        "entra",
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": alice}]}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(alice_uid).await, ["admins"]);
    rig.delete("entra", &format!("/Groups/{gid}"))
        .await
        .assert_status(204);
    rig.get("entra", &format!("/Groups/{gid}"))
        .await
        .assert_error(404, None);
    assert_eq!(rig.teams(alice_uid).await, ["everyone"]);
}

#[tokio::test]
async fn a_patch_op_body_without_the_capitalised_operations_key_is_still_read() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "carol@contoso.com", None).await;
    let body = json!({"schemas": [PATCH_OP], "operations": [{"op": "Add", "path": "title", "value": "Engineer"}]});
    let r = rig
        .with_body(
            reqwest::Method::PATCH,
            "entra",
            &format!("/Users/{id}"),
            &body,
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["title"], "Engineer");
}
