//! The documented Okta provisioning sequence (developer.okta.com SCIM 2.0 reference,
//! IdP quirk K1-K7): the existence check, import with paging, POST with a password and
//! read-only groups, profile updates by PUT, deactivation by PUT and by PATCH without a path,
//! re-creation of a deactivated user, and group push with a rename sent with every update.

use serde_json::{Value, json};

use crate::scim_support::{ENGINEERING, GROUP, ScimRig, USER, member_ids};

fn okta_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Isabella", "familyName": "Silva"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Isabella Silva",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

#[tokio::test]
async fn the_okta_user_lifecycle_runs_end_to_end() {
    let rig = ScimRig::start().await;
    // Okta checks whether the user exists first (K2): an empty list.
    let r = rig
        .send(rig.req(reqwest::Method::GET, "okta", "/Users").query(&[
            ("filter", "userName eq \"isabella@okta.local\""),
            ("startIndex", "1"),
            ("count", "100"),
        ]))
        .await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 0);

    // POST with password and read-only groups (K3): 201, password dropped.
    let created = rig
        .post(
            "okta",
            "/Users",
            &okta_user("isabella@okta.local", "00u1dhhb1fkIGP7RL1d8"),
        )
        .await;
    created.assert_status(201);
    let id = created.id();
    assert!(created.body.get("password").is_none());
    assert!(
        !created.body.to_string().contains("1mz050nq"),
        "the password is never echoed"
    );
    let uid = rig.user_id("okta", &id).await;
    assert_eq!(rig.teams(uid).await, ["everyone"]);

    // A second POST with the same userName while active: 409 stops a duplicate (K2).
    rig.post(
        "okta",
        "/Users",
        &okta_user("Isabella@OKTA.local", "00uOTHER"),
    )
    .await
    .assert_error(409, Some("uniqueness"));

    // OIN apps update profiles by GET then PUT of the whole object (K4).
    let mut full = rig.get("okta", &format!("/Users/{id}")).await.body;
    full["name"]["familyName"] = json!("Silva-Santos");
    full["title"] = json!("Engineer");
    let r = rig.put("okta", &format!("/Users/{id}"), &full).await;
    r.assert_status(200);
    assert_eq!(r.body["name"]["familyName"], "Silva-Santos");
    assert_eq!(r.body["title"], "Engineer");
    assert_eq!(r.body["active"], true);

    // AIW apps deactivate with PUT active:false (K4).
    rig.add_session(uid).await;
    full["active"] = json!(false);
    let r = rig.put("okta", &format!("/Users/{id}"), &full).await;
    r.assert_status(200);
    assert_eq!(r.body["active"], false);
    assert_eq!(rig.sessions(uid).await, 0);
    assert!(rig.teams(uid).await.is_empty());

    // Reactivated, then deactivated with a no-path PATCH (K5).
    full["active"] = json!(true);
    rig.put("okta", &format!("/Users/{id}"), &full)
        .await
        .assert_status(200);
    assert_eq!(rig.teams(uid).await, ["everyone"]);
    assert!(rig.identity_active(uid).await);
    let r = rig
        .patch(
            "okta",
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.body["active"], false);
    assert!(!rig.identity_active(uid).await);
    let audit = rig.audit(uid).await;
    assert!(
        audit
            .iter()
            .any(|(a, _, t, d)| a == "scim.user.deactivate" && t == "scim" && d.contains("PATCH"))
    );

    // Okta never deletes: it re-creates the deactivated user with the same userName (K6).
    let again = rig
        .post(
            "okta",
            "/Users",
            &okta_user("isabella@okta.local", "00u1dhhb1fkIGP7RL1d8"),
        )
        .await;
    again.assert_status(201);
    assert_eq!(again.id(), id, "the same resource is revived");
    assert_eq!(again.body["active"], true);
    assert!(rig.identity_active(uid).await);
    let r = rig
        .filter("okta", "Users", "userName eq \"isabella@okta.local\"")
        .await;
    assert_eq!(r.body["totalResults"], 1);
}

#[tokio::test]
async fn a_re_created_user_name_with_another_okta_id_is_a_new_person() {
    let rig = ScimRig::start().await;
    let old = rig
        .post("okta", "/Users", &okta_user("reused@okta.local", "00uOLD"))
        .await
        .id();
    let old_uid = rig.user_id("okta", &old).await;
    rig.patch(
        "okta",
        &format!("/Users/{old}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await
    .assert_status(200);
    let new = rig
        .post("okta", "/Users", &okta_user("reused@okta.local", "00uNEW"))
        .await;
    new.assert_status(201);
    assert_ne!(new.id(), old);
    let new_uid = rig.user_id("okta", &new.id()).await;
    assert_ne!(new_uid, old_uid, "the new person gets a new login identity");
    assert!(
        !rig.identity_active(old_uid).await,
        "the old identity stays disabled"
    );
    rig.get("okta", &format!("/Users/{old}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn okta_import_pages_through_users_in_a_stable_order() {
    let rig = ScimRig::start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            rig.create_user(
                "okta",
                &format!("user{i}@okta.local"),
                Some(&format!("00u{i}")),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let r = rig
            .send(rig.req(reqwest::Method::GET, "okta", "/Users").query(&[
                ("startIndex", start.to_string()),
                ("count", "3".to_string()),
            ]))
            .await;
        r.assert_status(200);
        assert_eq!(r.body["totalResults"], 7);
        assert_eq!(r.body["startIndex"], start);
        let page = r.body["Resources"].as_array().unwrap();
        assert_eq!(r.body["itemsPerPage"], page.len());
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        start += 3;
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn okta_group_push_renames_with_every_update_and_membership_follows() {
    let rig = ScimRig::start().await;
    let ana = rig
        .create_user("okta", "ana@okta.local", Some("00uANA"))
        .await;
    let ben = rig
        .create_user("okta", "ben@okta.local", Some("00uBEN"))
        .await;
    let (ana_uid, ben_uid) = (
        rig.user_id("okta", &ana).await,
        rig.user_id("okta", &ben).await,
    );

    // Group push: POST {displayName, members:[]} (K7).
    let created = rig
        .post(
            "okta",
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "Eng", "members": []}),
        )
        .await;
    created.assert_status(201);
    let gid = created.id();

    // Membership update: rename (with the group's id, ignored) + add, in one PATCH.
    let path = format!("/Groups/{gid}");
    rig.patch(
        "okta",
        &path,
        json!([
            {"op": "replace", "value": {"id": gid, "displayName": ENGINEERING}},
            {"op": "add", "path": "members", "value": [{"value": ana, "display": "ana@okta.local"}]}
        ]),
    )
    .await
    .assert_status(204);
    assert_eq!(
        rig.teams(ana_uid).await,
        ["engineering"],
        "Okta maps groups by name"
    );

    // The same rename again with a remove by filter and an add by value (K7).
    rig.patch(
        "okta",
        &path,
        json!([
            {"op": "replace", "value": {"id": gid, "displayName": ENGINEERING}},
            {"op": "remove", "path": format!("members[value eq \"{ana}\"]")},
            {"op": "add", "path": "members", "value": [{"value": ben}]}
        ]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(ana_uid).await, ["everyone"]);
    assert_eq!(rig.teams(ben_uid).await, ["engineering"]);

    // Replace with path members.
    rig.patch(
        "okta",
        &path,
        json!([{"op": "replace", "path": "members", "value": [{"value": ana}, {"value": ben}]}]),
    )
    .await
    .assert_status(204);
    assert_eq!(member_ids(&rig.get("okta", &path).await.body), {
        let mut v = vec![ana.clone(), ben.clone()];
        v.sort();
        v
    });

    // A real rename to an unmapped name takes the team away from every member.
    rig.patch(
        "okta",
        &path,
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Engineering (old)"}}]),
    )
    .await
    .assert_status(204);
    assert_eq!(rig.teams(ana_uid).await, ["everyone"]);
    assert_eq!(rig.teams(ben_uid).await, ["everyone"]);

    // AIW apps send PUT for groups; renaming back restores the team.
    let r = rig
        .put(
            "okta",
            &path,
            &json!({"schemas": [GROUP], "displayName": ENGINEERING, "members": [{"value": ben}]}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(member_ids(&r.body), std::slice::from_ref(&ben));
    assert_eq!(rig.teams(ben_uid).await, ["engineering"]);
    assert_eq!(rig.teams(ana_uid).await, ["everyone"]);

    // Unlink + delete.
    rig.delete("okta", &path).await.assert_status(204);
    assert_eq!(rig.teams(ben_uid).await, ["everyone"]);
}

#[tokio::test]
async fn a_group_put_without_members_leaves_them_alone() {
    let rig = ScimRig::start().await;
    let ana = rig.create_user("okta", "ana@okta.local", None).await;
    let gid = rig.create_group("okta", ENGINEERING, None).await;
    rig.patch(
        "okta",
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": ana}]}]),
    )
    .await
    .assert_status(204);
    let r = rig
        .put(
            "okta",
            &format!("/Groups/{gid}"),
            &json!({"schemas": [GROUP], "displayName": ENGINEERING}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(member_ids(&r.body), [ana]);
}
