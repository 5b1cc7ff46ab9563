//! security-cases sections F (SCIM input, cases 61-74) and G (SCIM auth, cases 75-78), each
//! case named by its number, each checking status, `scimType` and body.

use reqwest::Method;
use serde_json::json;

use crate::scim_support::{
    ADMINS_GROUP_ID, ENTERPRISE, GROUP, PATCH_OP, ScimRig, USER, config, member_ids,
};

// ---------------------------------------------------------------------------------------
// 61: discovery, CRUD, attributes, PATCH, for Users and Groups

#[tokio::test]
async fn case_61_the_service_provider_config_describes_exactly_what_is_supported() {
    let rig = ScimRig::start().await;
    let r = rig.get("entra", "/ServiceProviderConfig").await;
    r.assert_status(200);
    assert_eq!(r.headers["content-type"], "application/scim+json");
    let c = &r.body;
    assert_eq!(
        c["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(c["patch"]["supported"], true);
    assert_eq!(c["bulk"]["supported"], false);
    assert_eq!(c["filter"]["supported"], true);
    assert_eq!(c["filter"]["maxResults"], 1000);
    assert_eq!(c["sort"]["supported"], false);
    assert_eq!(c["changePassword"]["supported"], false);
    assert_eq!(c["etag"]["supported"], true);
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        c["meta"]["location"],
        rig.app.url("/scim/v2/entra/ServiceProviderConfig")
    );
}

#[tokio::test]
async fn case_61_resource_types_list_users_with_the_enterprise_extension_and_groups() {
    let rig = ScimRig::start().await;
    let r = rig.get("entra", "/ResourceTypes").await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 2);
    let user = rig.get("entra", "/ResourceTypes/User").await;
    user.assert_status(200);
    assert_eq!(user.body["endpoint"], "/Users");
    assert_eq!(user.body["schema"], USER);
    assert_eq!(
        user.body["schemaExtensions"],
        json!([{"schema": ENTERPRISE, "required": false}])
    );
    let group = rig.get("entra", "/ResourceTypes/Group").await;
    assert_eq!(group.body["schema"], GROUP);
}

#[tokio::test]
async fn case_61_schemas_describe_every_attribute_that_is_accepted() {
    let rig = ScimRig::start().await;
    let r = rig.get("entra", "/Schemas").await;
    r.assert_status(200);
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [USER, ENTERPRISE, GROUP]);
    let user = rig.get("entra", &format!("/Schemas/{USER}")).await;
    user.assert_status(200);
    let attrs = user.body["attributes"].as_array().unwrap();
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
    assert_eq!(groups["mutability"], "readOnly");
    let group = rig.get("entra", &format!("/Schemas/{GROUP}")).await;
    let members = group.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "members")
        .unwrap()
        .clone();
    assert_eq!(members["multiValued"], true);
}

#[tokio::test]
async fn case_61_a_user_is_created_read_replaced_and_deleted() {
    let rig = ScimRig::start().await;
    let created = rig
        .post("entra", "/Users", &json!({"schemas": [USER], "userName": "crud@x", "displayName": "Crud", "nickName": "c"}))
        .await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(created.body["active"], true, "active defaults to true");
    let read = rig.get("entra", &format!("/Users/{id}")).await;
    read.assert_status(200);
    assert_eq!(read.body["displayName"], "Crud");
    assert_eq!(read.etag(), created.etag());
    // PUT replaces: nickName, not sent again, is gone.
    let put = rig
        .put(
            "entra",
            &format!("/Users/{id}"),
            &json!({"schemas": [USER], "userName": "crud@x", "displayName": "Crud 2"}),
        )
        .await;
    put.assert_status(200);
    assert_eq!(put.body["displayName"], "Crud 2");
    assert!(put.body.get("nickName").is_none());
    assert_ne!(put.etag(), created.etag(), "a change gives a new version");
    assert!(
        put.body["meta"]["lastModified"].as_str().unwrap()
            >= created.body["meta"]["lastModified"].as_str().unwrap()
    );
    assert_eq!(put.body["meta"]["created"], created.body["meta"]["created"]);
    rig.delete("entra", &format!("/Users/{id}"))
        .await
        .assert_status(204);
    rig.get("entra", &format!("/Users/{id}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn case_61_a_group_is_created_read_replaced_and_deleted() {
    let rig = ScimRig::start().await;
    let u = rig.create_user("entra", "member@x", None).await;
    let created = rig
        .post(
            "entra",
            "/Groups",
            &json!({"schemas": [GROUP], "displayName": "G1", "members": [{"value": u}]}),
        )
        .await;
    created.assert_status(201);
    assert_eq!(member_ids(&created.body), std::slice::from_ref(&u));
    let id = created.id();
    let read = rig.get("entra", &format!("/Groups/{id}")).await;
    assert_eq!(read.body["displayName"], "G1");
    assert_eq!(
        read.body["members"][0]["$ref"],
        rig.app.url(&format!("/scim/v2/entra/Users/{u}"))
    );
    let put = rig
        .put(
            "entra",
            &format!("/Groups/{id}"),
            &json!({"schemas": [GROUP], "displayName": "G2", "members": []}),
        )
        .await;
    put.assert_status(200);
    assert_eq!(put.body["displayName"], "G2");
    assert!(member_ids(&put.body).is_empty());
    rig.delete("entra", &format!("/Groups/{id}"))
        .await
        .assert_status(204);
    rig.get("entra", &format!("/Groups/{id}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn case_61_attributes_and_excluded_attributes_shape_user_responses() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "shape@x", Some("ext-shape")).await;
    let r = rig
        .get(
            "entra",
            &format!("/Users/{id}?attributes=userName,name.givenName"),
        )
        .await;
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(r.body["name"], json!({"givenName": "Given"}));
    assert_eq!(r.body["id"], json!(id), "id is returned always");
    let r = rig
        .get(
            "entra",
            &format!("/Users/{id}?excludedAttributes=emails,meta,id"),
        )
        .await;
    assert!(r.body.get("emails").is_none() && r.body.get("meta").is_none());
    assert_eq!(r.body["id"], json!(id));
    assert_eq!(r.body["userName"], "shape@x");
}

#[tokio::test]
async fn case_61_attributes_and_excluded_attributes_shape_group_responses() {
    let rig = ScimRig::start().await;
    let u = rig.create_user("entra", "m@x", None).await;
    let g = rig.create_group("entra", "Shaped", None).await;
    rig.patch(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
    )
    .await
    .assert_status(204);
    let r = rig
        .get("entra", &format!("/Groups/{g}?attributes=displayName"))
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Shaped");
    let r = rig
        .get("entra", &format!("/Groups/{g}?attributes=members.value"))
        .await;
    assert_eq!(r.body["members"], json!([{"value": u}]));
    assert!(r.body.get("displayName").is_none());
    let r = rig
        .get("entra", &format!("/Groups/{g}?excludedAttributes=members"))
        .await;
    assert!(r.body.get("members").is_none());
}

#[tokio::test]
async fn case_61_patch_add_remove_and_replace_change_a_user() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "patchme@x", None).await;
    let path = format!("/Users/{id}");
    let r = rig.patch("entra", &path, json!([{"op": "add", "path": "emails", "value": [{"value": "home@x", "type": "home"}]}])).await;
    r.assert_status(200);
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 2);
    let r = rig.patch("entra", &path, json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "home2@x"}])).await;
    assert_eq!(r.body["emails"][1]["value"], "home2@x");
    let r = rig
        .patch(
            "entra",
            &path,
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        )
        .await;
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 1);
    let r = rig
        .patch(
            "entra",
            &path,
            json!([{"op": "add", "value": {"title": "Dr", "nickName": "P"}}]),
        )
        .await;
    assert_eq!(
        (r.body["title"].as_str(), r.body["nickName"].as_str()),
        (Some("Dr"), Some("P"))
    );
    let r = rig
        .patch("entra", &path, json!([{"op": "remove", "path": "title"}]))
        .await;
    assert!(r.body.get("title").is_none());
}

#[tokio::test]
async fn case_61_patch_add_remove_and_replace_change_a_group() {
    let rig = ScimRig::start().await;
    let (a, b) = (
        rig.create_user("entra", "a@x", None).await,
        rig.create_user("entra", "b@x", None).await,
    );
    let g = rig.create_group("entra", "PatchGroup", None).await;
    let path = format!("/Groups/{g}");
    rig.patch(
        "entra",
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await
    .assert_status(204);
    rig.patch(
        "entra",
        &path,
        json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
    )
    .await
    .assert_status(204);
    assert_eq!(
        member_ids(&rig.get("entra", &path).await.body),
        std::slice::from_ref(&b)
    );
    rig.patch(
        "entra",
        &path,
        json!([{"op": "replace", "path": "members", "value": [{"value": a}]}]),
    )
    .await
    .assert_status(204);
    assert_eq!(
        member_ids(&rig.get("entra", &path).await.body),
        std::slice::from_ref(&a)
    );
    rig.patch("entra", &path, json!([{"op": "replace", "path": "displayName", "value": "Renamed"}, {"op": "remove", "path": "members"}]))
        .await
        .assert_status(204);
    let r = rig.get("entra", &path).await;
    assert_eq!(r.body["displayName"], "Renamed");
    assert!(member_ids(&r.body).is_empty());
}

// ---------------------------------------------------------------------------------------
// 62-64

#[tokio::test]
async fn case_62_unknown_urls_ids_schemas_and_resource_types_are_404_with_a_scim_body() {
    let rig = ScimRig::start().await;
    for path in [
        "/Users/no-such-id",
        "/Groups/no-such-id",
        "/Schemas/urn:x",
        "/ResourceTypes/Device",
        "/Devices",
        "/Users/a/b",
        "",
    ] {
        let r = rig.get("entra", path).await;
        r.assert_error(404, None);
    }
    let r = rig
        .send(rig.client.get(rig.app.url("/scim/v3/entra/Users")))
        .await;
    r.assert_error(404, None);
    // An unknown provider is not a 404: SCIM authenticates first, and no token is valid
    // for it (tests/api/hardening_web.rs::an_unknown_provider_and_a_provider_with_scim_disabled_answer_401_like_a_bad_token).
    rig.get("nonexistent", "/Users")
        .await
        .assert_error(401, None);
    // What RFC 7644 lets a server leave out is a 501, not a 404.
    rig.get("entra", "/Me").await.assert_error(501, None);
    rig.post(
        "entra",
        "/.search",
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    )
    .await
    .assert_error(501, None);
    rig.delete("entra", "/Users/no-such-id")
        .await
        .assert_error(404, None);
    rig.patch(
        "entra",
        "/Groups/no-such-id",
        json!([{"op": "add", "path": "displayName", "value": "x"}]),
    )
    .await
    .assert_error(404, None);
}

#[tokio::test]
async fn case_62_write_methods_on_discovery_endpoints_are_405() {
    let rig = ScimRig::start().await;
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/User",
        "/Schemas",
        &format!("/Schemas/{USER}"),
    ] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = rig
                .with_body(method.clone(), "entra", path, &json!({}))
                .await;
            r.assert_error(405, None);
            assert_eq!(r.headers["allow"], "GET", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn case_63_duplicate_username_is_409_uniqueness() {
    let rig = ScimRig::start().await;
    rig.create_user("entra", "dup@example.com", None).await;
    let r = rig
        .post(
            "entra",
            "/Users",
            &json!({"schemas": [USER], "userName": "dup@example.com"}),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn case_63_duplicate_username_differing_by_case_is_409() {
    let rig = ScimRig::start().await;
    rig.create_user("entra", "Jane.Doe@Example.com", None).await;
    let r = rig
        .post(
            "entra",
            "/Users",
            &json!({"schemas": [USER], "userName": "jane.doe@example.COM"}),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Renaming another user into it, by PUT or PATCH, is refused the same way.
    let other = rig.create_user("entra", "other@example.com", None).await;
    let r = rig
        .put(
            "entra",
            &format!("/Users/{other}"),
            &json!({"schemas": [USER], "userName": "JANE.DOE@example.com"}),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    let r = rig
        .patch(
            "entra",
            &format!("/Users/{other}"),
            json!([{"op": "replace", "path": "userName", "value": "jane.doe@EXAMPLE.com"}]),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Another provider has its own namespace.
    rig.create_user("okta", "jane.doe@example.com", None).await;
    // Groups: displayName is unique per provider too.
    rig.create_group("entra", "Admins", None).await;
    rig.post(
        "entra",
        "/Groups",
        &json!({"schemas": [GROUP], "displayName": "ADMINS"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn case_64_client_supplied_id_and_meta_are_ignored() {
    let rig = ScimRig::start().await;
    let r = rig
        .post(
            "entra",
            "/Users",
            &json!({"schemas": [USER], "userName": "idmeta@x", "id": "my-own-id",
                    "meta": {"created": "1999-01-01T00:00:00Z", "version": "W/\"99\"", "resourceType": "Group"}}),
        )
        .await;
    r.assert_status(201);
    assert_ne!(r.id(), "my-own-id");
    assert_ne!(r.body["meta"]["created"], "1999-01-01T00:00:00Z");
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    let id = r.id();
    let r = rig
        .put(
            "entra",
            &format!("/Users/{id}"),
            &json!({"schemas": [USER], "userName": "idmeta@x", "id": "other", "meta": {}}),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.id(), id);
}

#[tokio::test]
async fn case_64_changing_a_read_only_attribute_is_400_mutability() {
    // A user's externalId is no longer immutable: Entra replaces it (IdP quirk S12), and the
    // link to the login identity follows it (security case J2).
    let rig = ScimRig::start().await;
    let id = rig
        .create_user("entra", "immutable@x", Some("oid-fixed"))
        .await;
    let path = format!("/Users/{id}");
    let before = rig.get("entra", &path).await;
    rig.patch(
        "entra",
        &path,
        json!([{"op": "replace", "path": "id", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    rig.patch(
        "entra",
        &path,
        json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    rig.patch(
        "entra",
        &path,
        json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
    )
    .await
    .assert_error(400, Some("mutability"));
    assert_eq!(
        rig.get("entra", &path).await.etag(),
        before.etag(),
        "nothing changed"
    );
    // The same value again is not a change.
    rig.patch(
        "entra",
        &path,
        json!([{"op": "replace", "path": "externalId", "value": "oid-fixed"}]),
    )
    .await
    .assert_status(200);
}

// ---------------------------------------------------------------------------------------
// 65-67: PATCH errors and atomicity

#[tokio::test]
async fn case_65_a_bad_patch_path_is_400_invalid_path() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "path@x", None).await;
    for path in [
        "emails[type eq",
        "shoeSize",
        "name.shoe",
        "emails[shoe eq \"x\"]",
        "name[givenName pr]",
        "a b",
    ] {
        let r = rig
            .patch(
                "entra",
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            )
            .await;
        r.assert_error(400, Some("invalidPath"));
    }
}

#[tokio::test]
async fn case_65_remove_without_path_is_400_no_target() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "nopath@x", None).await;
    rig.patch("entra", &format!("/Users/{id}"), json!([{"op": "remove"}]))
        .await
        .assert_error(400, Some("noTarget"));
}

#[tokio::test]
async fn case_65_a_path_filter_matching_nothing_is_400_no_target() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "filter@x", None).await;
    rig.patch(
        "entra",
        &format!("/Users/{id}"),
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
    let member = rig.create_user("entra", "notmember@x", None).await;
    let g = rig.create_group("entra", "Nobody", None).await;
    rig.patch(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
    )
    .await
    .assert_error(400, Some("noTarget"));
}

#[tokio::test]
async fn case_66_a_patch_whose_second_operation_fails_applies_nothing() {
    let rig = ScimRig::start().await;
    let u = rig
        .create_user("entra", "atomic@x", Some("oid-atomic"))
        .await;
    let uid = rig.user_id("entra", &u).await;
    let g = rig
        .create_group("entra", "Admins", Some(ADMINS_GROUP_ID))
        .await;
    let before = rig.get("entra", &format!("/Groups/{g}")).await;
    // First op adds the member (which would grant `admins`), second names an unknown user.
    let r = rig
        .patch(
            "entra",
            &format!("/Groups/{g}"),
            json!([
                {"op": "add", "path": "members", "value": [{"value": u}]},
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
            ]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let after = rig.get("entra", &format!("/Groups/{g}")).await;
    assert!(member_ids(&after.body).is_empty());
    assert_eq!(after.body["displayName"], "Admins");
    assert_eq!(after.etag(), before.etag());
    assert_eq!(
        rig.teams(uid).await,
        ["everyone"],
        "no team was granted, not even for a moment"
    );
    assert!(
        !rig.audit(uid)
            .await
            .iter()
            .any(|(a, t, _, _)| a == "membership.add" && t == "admins")
    );
    // Users too: a valid first op and an invalid second one.
    let r = rig
        .patch(
            "entra",
            &format!("/Users/{u}"),
            json!([{"op": "replace", "path": "displayName", "value": "Changed"}, {"op": "replace", "path": "active", "value": "perhaps"}]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(
        rig.get("entra", &format!("/Users/{u}"))
            .await
            .body
            .get("displayName")
            .is_none()
    );
}

#[tokio::test]
async fn case_67_unknown_op_missing_schema_bad_json_and_bad_types_are_400_without_change() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "syntax@x", None).await;
    let path = format!("/Users/{id}");
    let etag = rig.get("entra", &path).await.etag();
    rig.patch(
        "entra",
        &path,
        json!([{"op": "merge", "path": "title", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidSyntax"));
    let no_schema = json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]});
    rig.with_body(Method::PATCH, "entra", &path, &no_schema)
        .await
        .assert_error(400, Some("invalidSyntax"));
    let r = rig
        .send(
            rig.req(Method::PATCH, "entra", &path)
                .header("content-type", "application/scim+json")
                .body("{\"schemas\": ["),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"));
    let r = rig
        .send(
            rig.req(Method::POST, "entra", "/Users")
                .header("content-type", "application/scim+json")
                .body("not json"),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"));
    rig.patch(
        "entra",
        &path,
        json!([{"op": "replace", "path": "userName", "value": 42}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    rig.post(
        "entra",
        "/Users",
        &json!({"schemas": [USER], "userName": "x", "active": "sometimes"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    rig.post("entra", "/Users", &json!({"userName": "no-schemas"}))
        .await
        .assert_error(400, Some("invalidValue"));
    let g = rig.create_group("entra", "G", None).await;
    rig.patch(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let r = rig
        .send(
            rig.req(Method::POST, "entra", "/Users")
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    r.assert_error(415, None);
    assert_eq!(rig.get("entra", &path).await.etag(), etag);
}

#[tokio::test]
async fn case_67_capitalised_ops_and_string_booleans_are_accepted_as_entra_sends_them() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "quirks@x", None).await;
    for (op, value, want) in [
        ("Replace", "False", false),
        ("REPLACE", "TRUE", true),
        ("replace", "false", false),
    ] {
        let r = rig
            .patch(
                "entra",
                &format!("/Users/{id}"),
                json!([{"op": op, "path": "active", "value": value}]),
            )
            .await;
        r.assert_status(200);
        assert_eq!(r.body["active"], want);
    }
}

// ---------------------------------------------------------------------------------------
// 68-71: filters and paging

#[tokio::test]
async fn case_68_bad_filter_syntax_and_unsupported_attributes_are_400_never_all_rows() {
    let rig = ScimRig::start().await;
    rig.create_user("entra", "one@x", None).await;
    rig.create_user("entra", "two@x", None).await;
    for filter in [
        "userName eq",
        "userName equals \"one@x\"",
        "userName eq \"one@x\" or",
        "(userName eq \"one@x\"",
        "shoeSize eq \"44\"",
        "active gt true",
        "password eq \"x\"",
        "userName eq one@x",
        "groups.value eq \"x\"",
        "\"one@x\"",
    ] {
        let r = rig.filter("entra", "Users", filter).await;
        r.assert_error(400, Some("invalidFilter"));
        assert!(r.body.get("Resources").is_none(), "{filter}: {}", r.body);
    }
    rig.filter("entra", "Groups", "members.display eq \"x\"")
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn case_69_hostile_filter_values_are_bound_parameters() {
    let rig = ScimRig::start().await;
    let long = "ü".repeat(300);
    let mut names = vec![
        "quote\"d@x",
        "back\\slash@x",
        "o'brien@x",
        "100%@x",
        "under_score@x",
        "' OR 1=1 --",
        "nul\u{0}byte",
        &long,
    ];
    if rig.app.db.is_postgres() {
        // PostgreSQL text holds no NUL character: refused as an invalid value, not a 500.
        let r = rig
            .post(
                "entra",
                "/Users",
                &json!({"schemas": [USER], "userName": "nul\u{0}byte"}),
            )
            .await;
        r.assert_error(400, Some("invalidValue"));
        names.retain(|n| !n.contains('\u{0}'));
    }
    for n in names.iter().copied() {
        rig.create_user("entra", n, None).await;
    }
    rig.create_user("entra", "1000@x", None).await;
    rig.create_user("entra", "underXscore@x", None).await;
    for n in names {
        let filter = format!("userName eq {}", serde_json::to_string(n).unwrap());
        let r = rig.filter("entra", "Users", &filter).await;
        r.assert_status(200);
        assert_eq!(r.body["totalResults"], 1, "{n:?}");
        assert_eq!(r.body["Resources"][0]["userName"], json!(n));
    }
    // LIKE wildcards in co/sw/ew are literal.
    let r = rig.filter("entra", "Users", "userName co \"%\"").await;
    assert_eq!(r.body["totalResults"], 1);
    let r = rig.filter("entra", "Users", "userName sw \"under_\"").await;
    assert_eq!(r.body["totalResults"], 1);
    let r = rig
        .filter(
            "entra",
            "Users",
            "userName ew \"' OR 1=1 --\" or userName eq \"x\" ",
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
}

#[tokio::test]
async fn case_70_a_ten_kilobyte_filter_is_400() {
    let rig = ScimRig::start().await;
    let filter = format!("userName eq \"{}\"", "a".repeat(10 * 1024));
    rig.filter("entra", "Users", &filter)
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn case_70_a_thousand_nested_parentheses_is_400_without_crashing() {
    let rig = ScimRig::start().await;
    let filter = format!("{}userName pr{}", "(".repeat(1000), ")".repeat(1000));
    rig.filter("entra", "Users", &filter)
        .await
        .assert_error(400, Some("invalidFilter"));
    let nots = format!("{}userName pr{}", "not (".repeat(300), ")".repeat(300));
    rig.filter("entra", "Users", &nots)
        .await
        .assert_error(400, Some("invalidFilter"));
    // The server is still answering.
    rig.get("entra", "/ServiceProviderConfig")
        .await
        .assert_status(200);
}

async fn bulk_users(rig: &ScimRig, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let client = rig.client.clone();
        let url = rig.app.url("/scim/v2/entra/Users");
        let token = rig.entra_token.clone();
        tasks.spawn(async move {
            for i in (chunk..n).step_by(8) {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(
                        json!({"schemas": [USER], "userName": format!("bulk{i:05}@x")}).to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test]
async fn case_70_user_name_pr_on_a_big_table_is_paged() {
    let rig = ScimRig::start().await;
    bulk_users(&rig, 1_050).await;
    let r = rig.filter("entra", "Users", "userName pr").await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 1_050);
    assert_eq!(r.body["itemsPerPage"], 100, "the default page");
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn case_71_count_above_max_results_is_clamped_negative_count_is_0_start_index_below_1_is_1() {
    let rig = ScimRig::start().await;
    bulk_users(&rig, 1_010).await;
    let page = |start: &str, count: &str| {
        rig.send(
            rig.req(Method::GET, "entra", "/Users")
                .query(&[("startIndex", start), ("count", count)]),
        )
    };
    let r = page("1", "5000").await;
    assert_eq!(r.body["itemsPerPage"], 1000);
    assert_eq!(r.body["totalResults"], 1010);
    let r = page("1", "-3").await;
    assert_eq!(r.body["itemsPerPage"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    assert_eq!(r.body["totalResults"], 1010);
    // The users were created concurrently, so the stable order is not creation order: compare
    // with the first page asked for properly.
    let first = page("1", "2").await;
    let r = page("-7", "2").await;
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(r.body["Resources"], first.body["Resources"]);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 2);
    let r = page("1001", "100").await;
    assert_eq!(r.body["itemsPerPage"], 10);
    page("x", "1").await.assert_error(400, Some("invalidValue"));
}

// ---------------------------------------------------------------------------------------
// 72-74

#[tokio::test]
async fn case_72_an_oversize_body_is_413_before_it_is_parsed() {
    let rig = ScimRig::start().await;
    // Not JSON at all: a 400 would mean it was parsed.
    let big = "x".repeat(9 * 1024 * 1024);
    let r = rig
        .send(
            rig.req(Method::POST, "entra", "/Users")
                .header("content-type", "application/scim+json")
                .body(big.clone()),
        )
        .await;
    r.assert_error(413, None);
    // Without a Content-Length (chunked): still 413, decided while reading.
    let (status, body) = chunked_post(&rig, "/scim/v2/entra/Users", 9 * 1024 * 1024).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(
        body.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{body}"
    );
    let r = rig
        .send(
            rig.req(Method::POST, "entra", "/Bulk")
                .body("y".repeat(9 * 1024 * 1024)),
        )
        .await;
    r.assert_error(413, None);
}

/// POST `total` bytes with `Transfer-Encoding: chunked` over a raw connection; returns the
/// status line and the body of the answer (the server may answer before reading it all).
async fn chunked_post(rig: &ScimRig, path: &str, total: usize) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", rig.app.port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        rig.entra_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn case_72_bulk_is_not_supported_and_says_so() {
    let rig = ScimRig::start().await;
    let r = rig
        .post(
            "entra",
            "/Bulk",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}),
        )
        .await;
    r.assert_error(501, None);
    assert_eq!(
        rig.get("entra", "/ServiceProviderConfig").await.body["bulk"]["supported"],
        false
    );
}

#[tokio::test]
async fn case_73_attributes_apply_to_get_list_and_search_and_delete_is_204_then_404() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "sel@x", Some("ext-sel")).await;
    let r = rig
        .get(
            "entra",
            "/Users?attributes=userName&filter=userName%20eq%20%22sel@x%22",
        )
        .await;
    let u = &r.body["Resources"][0];
    assert_eq!(u["userName"], "sel@x");
    assert!(u.get("emails").is_none() && u.get("externalId").is_none());
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "externalId eq \"ext-sel\"",
        "excludedAttributes": ["emails", "name"],
        "startIndex": 1,
        "count": 10
    });
    let r = rig.post("entra", "/Users/.search", &search).await;
    r.assert_status(200);
    assert_eq!(r.body["totalResults"], 1);
    let u = &r.body["Resources"][0];
    assert!(u.get("emails").is_none() && u.get("name").is_none());
    assert_eq!(u["userName"], "sel@x");
    let r = rig
        .post(
            "entra",
            "/Groups/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        )
        .await;
    r.assert_status(200);
    rig.delete("entra", &format!("/Users/{id}"))
        .await
        .assert_status(204);
    rig.get("entra", &format!("/Users/{id}"))
        .await
        .assert_error(404, None);
    rig.delete("entra", &format!("/Users/{id}"))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn case_74_a_scim_user_with_a_login_accounts_email_is_not_adopted() {
    let rig = ScimRig::start().await;
    // A login created this account first.
    let login = teamgate::store::users::LoginProfile {
        provider: "entra".into(),
        subject: "oid-login-person".into(),
        email: Some("shared@example.com".into()),
        email_verified: true,
        name: Some("Login Person".into()),
        claims_groups: Some(vec![]),
    };
    let login_id = rig
        .app
        .state
        .store
        .write(move |tx| tx.upsert_login_user(&login, "2024-01-01T00:00:00Z"))
        .await
        .unwrap()
        .id;
    // A SCIM user with the same email but another externalId: a different identity.
    let body = json!({"schemas": [USER], "userName": "shared@example.com", "externalId": "oid-someone-else",
        "emails": [{"value": "shared@example.com", "type": "work", "primary": true}], "displayName": "Impostor"});
    let r = rig.post("entra", "/Users", &body).await;
    r.assert_status(201);
    let scim_uid = rig.user_id("entra", &r.id()).await;
    assert_ne!(scim_uid, login_id, "no adoption by email");
    let row = crate::helpers::sql_rows(
        &rig.app.state,
        "SELECT email, name FROM users WHERE id = ?1",
        &[login_id.into()],
    )
    .await;
    let (email, name) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    assert_eq!(
        (email.as_str(), name.as_str()),
        ("shared@example.com", "Login Person")
    );
    // The same person (same externalId = login subject) is linked, without rewriting the email.
    let body = json!({"schemas": [USER], "userName": "login.person@example.com", "externalId": "oid-login-person",
        "emails": [{"value": "changed@example.com", "type": "work"}], "displayName": "Renamed"});
    let r = rig.post("entra", "/Users", &body).await;
    r.assert_status(201);
    assert_eq!(rig.user_id("entra", &r.id()).await, login_id);
    let email = crate::helpers::sql_one(
        &rig.app.state,
        "SELECT email FROM users WHERE id = ?1",
        &[login_id.into()],
    )
    .await
    .unwrap();
    assert_eq!(email, "shared@example.com");
}

// ---------------------------------------------------------------------------------------
// G: 75-78

#[tokio::test]
async fn case_75_missing_malformed_unknown_expired_and_revoked_tokens_are_401_with_a_bearer_challenge()
 {
    let rig = ScimRig::start().await;
    let url = rig.app.url("/scim/v2/entra/Users");
    let expired = crate::scim_support::token(&rig.app, "entra").await;
    let revoked = crate::scim_support::token(&rig.app, "entra").await;
    crate::helpers::sql_exec(
        &rig.app.state,
        "UPDATE scim_tokens SET expires_at = 1 WHERE id = (SELECT MAX(id) - 1 FROM scim_tokens)",
        &[],
    )
    .await;
    let config = rig.app.state.config.get();
    let list = teamgate::provisioning::tokens::list(&rig.app.state.store, &config, "entra")
        .await
        .unwrap();
    let last = list.last().unwrap().public_id.clone();
    teamgate::provisioning::tokens::revoke(
        &rig.app.state.store,
        &rig.app.state.clock,
        &config,
        "entra",
        &last,
    )
    .await
    .unwrap();
    let cases: Vec<(&str, Option<String>, bool)> = vec![
        ("no header", None, false),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into()), false),
        ("empty bearer", Some("Bearer ".into()), false),
        ("bare token", Some(rig.entra_token.clone()), false),
        (
            "unknown token",
            Some("Bearer tgscim_not-a-real-token".into()),
            true,
        ),
        ("expired token", Some(format!("Bearer {expired}")), true),
        ("revoked token", Some(format!("Bearer {revoked}")), true),
    ];
    for (what, header, invalid) in cases {
        let mut rb = rig.client.get(&url);
        if let Some(h) = header {
            rb = rb.header("authorization", h);
        }
        let r = rig.send(rb).await;
        r.assert_error(401, None);
        let challenge = r.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        assert_eq!(
            challenge.contains("invalid_token"),
            invalid,
            "{what}: {challenge}"
        );
    }
    // The scheme is case-insensitive (RFC 6750 §2.1).
    let r = rig
        .send(
            rig.client
                .get(&url)
                .header("authorization", format!("bearer {}", rig.entra_token)),
        )
        .await;
    r.assert_status(200);
}

#[test]
fn case_75_plain_http_is_refused_unless_the_public_url_is_loopback() {
    let text = config()
        .replace("{PUBLIC_URL}", "http://login.example.com")
        .replace("{DB}", "/tmp/x.db");
    let err = teamgate::config::Config::parse(&text, std::path::Path::new("/tmp/teamgate.toml"))
        .unwrap_err();
    assert!(err.to_string().contains("plain http"), "{err}");
    let text = config()
        .replace("{PUBLIC_URL}", "http://127.0.0.1:8080")
        .replace("{DB}", "/tmp/x.db");
    assert!(
        teamgate::config::Config::parse(&text, std::path::Path::new("/tmp/teamgate.toml")).is_ok()
    );
}

#[tokio::test]
async fn case_76_an_access_token_in_the_query_is_401() {
    let rig = ScimRig::start().await;
    let url = rig.app.url(&format!(
        "/scim/v2/entra/Users?access_token={}",
        rig.entra_token
    ));
    let r = rig.send(rig.client.get(&url)).await;
    r.assert_error(401, None);
    // Even alongside a valid header.
    let r = rig
        .send(rig.client.get(&url).bearer_auth(&rig.entra_token))
        .await;
    r.assert_error(401, None);
}

#[tokio::test]
async fn case_77_tokens_are_stored_hashed_expire_and_overlap_for_rotation() {
    let rig = ScimRig::start().await;
    let stored =
        crate::helpers::sql_column(&rig.app.state, "SELECT hash FROM scim_tokens", &[]).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|h| h.len() == 64), "SHA-256 digests only");
    // Every column of every token row, as text: the tokens themselves appear nowhere.
    let everything = crate::helpers::sql_rows(
        &rig.app.state,
        "SELECT public_id, provider, hash, created_at, expires_at, revoked_at, note FROM scim_tokens",
        &[],
    )
    .await;
    for t in [&rig.entra_token, &rig.okta_token] {
        let hex = crate::helpers::hex(t.as_bytes());
        for value in everything.iter().flatten().flatten() {
            assert!(
                !value.contains(t.as_str()) && !value.contains(&hex),
                "a token stored in clear"
            );
        }
    }
    if let Some(path) = rig.app.state.config.get().server.database.sqlite_path() {
        let dump = std::fs::read(path).unwrap();
        let wal = std::fs::read(format!("{}-wal", path.display())).unwrap_or_default();
        for t in [&rig.entra_token, &rig.okta_token] {
            let needle = t.as_bytes();
            assert!(
                !dump.windows(needle.len()).any(|w| w == needle),
                "the token is not in the database file"
            );
            assert!(
                !wal.windows(needle.len()).any(|w| w == needle),
                "nor in its WAL"
            );
        }
    }
    // Rotation: a second token works beside the first; revoking the first leaves the second.
    let config = rig.app.state.config.get();
    let second = crate::scim_support::token(&rig.app, "entra").await;
    let url = rig.app.url("/scim/v2/entra/Users");
    for t in [&rig.entra_token, &second] {
        rig.send(rig.client.get(&url).bearer_auth(t))
            .await
            .assert_status(200);
    }
    let first_id = teamgate::provisioning::tokens::list(&rig.app.state.store, &config, "entra")
        .await
        .unwrap()[0]
        .public_id
        .clone();
    teamgate::provisioning::tokens::revoke(
        &rig.app.state.store,
        &rig.app.state.clock,
        &config,
        "entra",
        &first_id,
    )
    .await
    .unwrap();
    rig.send(rig.client.get(&url).bearer_auth(&rig.entra_token))
        .await
        .assert_error(401, None);
    rig.send(rig.client.get(&url).bearer_auth(&second))
        .await
        .assert_status(200);
    // A lifetime is mandatory and bounded.
    assert!(
        teamgate::provisioning::tokens::create(
            &rig.app.state.store,
            &rig.app.state.clock,
            &config,
            "entra",
            None,
            0,
            None
        )
        .await
        .is_err()
    );
    assert!(
        teamgate::provisioning::tokens::create(
            &rig.app.state.store,
            &rig.app.state.clock,
            &config,
            "entra",
            None,
            10_000,
            None
        )
        .await
        .is_err()
    );
    let t = teamgate::provisioning::tokens::create(
        &rig.app.state.store,
        &rig.app.state.clock,
        &config,
        "entra",
        None,
        30,
        None,
    )
    .await
    .unwrap();
    let days = (t.expires_at - time::OffsetDateTime::now_utc()).whole_days();
    assert!((29..=30).contains(&days));
}

#[tokio::test]
async fn case_78_one_providers_token_cannot_read_or_change_another_providers_resources() {
    let rig = ScimRig::start().await;
    let okta_user = rig.create_user("okta", "okta-only@x", None).await;
    let okta_group = rig.create_group("okta", "OktaGroup", None).await;
    // Entra's token on Okta's URLs: not a credential there.
    let r = rig
        .send(
            rig.client
                .get(rig.app.url(&format!("/scim/v2/okta/Users/{okta_user}")))
                .bearer_auth(&rig.entra_token),
        )
        .await;
    r.assert_error(401, None);
    // Entra's URLs with Okta's resource ids: not found, whatever the method.
    rig.get("entra", &format!("/Users/{okta_user}"))
        .await
        .assert_error(404, None);
    rig.get("entra", &format!("/Groups/{okta_group}"))
        .await
        .assert_error(404, None);
    rig.put(
        "entra",
        &format!("/Users/{okta_user}"),
        &json!({"schemas": [USER], "userName": "stolen"}),
    )
    .await
    .assert_error(404, None);
    rig.patch(
        "entra",
        &format!("/Groups/{okta_group}"),
        json!([{"op": "replace", "path": "displayName", "value": "x"}]),
    )
    .await
    .assert_error(404, None);
    rig.delete("entra", &format!("/Users/{okta_user}"))
        .await
        .assert_error(404, None);
    let r = rig
        .filter("entra", "Users", "userName eq \"okta-only@x\"")
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // Nor can an Entra group take an Okta user as a member.
    let g = rig.create_group("entra", "EntraGroup", None).await;
    rig.patch(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "add", "path": "members", "value": [{"value": okta_user}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(
        rig.get("okta", &format!("/Users/{okta_user}")).await.body["userName"],
        "okta-only@x"
    );
}

#[tokio::test]
async fn case_78_a_browser_cookie_is_not_a_scim_credential_and_a_scim_token_opens_nothing_else() {
    use crate::forward_auth_support::{PROVIDER, signed_in, spawn_scim, user};
    let (gate, token) = spawn_scim().await;
    // A real signed-in session: its cookie opens /auth...
    let agent = signed_in(&gate, user("u-alice", "alice@example.com", &[])).await;
    assert!(agent.cookie(&gate.direct, "teamgate").is_some());
    assert_eq!(agent.get(&gate.url("/auth")).await.status(), 200);
    // ...and nothing on /scim, whatever it is sent with.
    let users = gate.url(&format!("/scim/v2/{PROVIDER}/Users"));
    let with_cookie = [
        agent.client.get(&users),
        agent
            .client
            .post(&users)
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": [USER], "userName": "cookie@x"}).to_string()),
        agent.client.get(&users).bearer_auth("not-a-token"),
        agent.client.get(&users).basic_auth("alice", Some("x")),
    ];
    for request in with_cookie {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
    }
    let list: serde_json::Value = reqwest::Client::new()
        .get(&users)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalResults"], 0, "nothing was created: {list}");
    // A SCIM token opens nothing else. No redirects followed: a 303 to the sign-in page is a
    // refusal, not what it leads to.
    let client = crate::helpers::new_browser();
    for path in ["/auth", "/api/v1/me", "/admin"] {
        let response = client
            .get(gate.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            !response.status().is_success(),
            "{path} answered {} to a SCIM token",
            response.status()
        );
    }
}

/// Even its own token opens nothing; the answer is the bad token's 401 (authentication first:
/// a 403 would tell a stranger the provider exists).
#[tokio::test]
async fn a_provider_with_scim_disabled_refuses_every_request_with_a_scim_error() {
    let rig = ScimRig::start().await;
    let token = crate::scim_support::token(&rig.app, "nosync").await;
    let r = rig
        .send(
            rig.client
                .get(rig.app.url("/scim/v2/nosync/Users"))
                .bearer_auth(&token),
        )
        .await;
    r.assert_error(401, None);
    let r = rig
        .send(
            rig.client
                .post(rig.app.url("/scim/v2/nosync/Users"))
                .bearer_auth(&token)
                .body("{}"),
        )
        .await;
    r.assert_error(401, None);
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_412_and_the_current_one_is_accepted() {
    let rig = ScimRig::start().await;
    let id = rig.create_user("entra", "etag@x", None).await;
    let path = format!("/Users/{id}");
    let v1 = rig.get("entra", &path).await.etag();
    let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "A"}]});
    let r = rig
        .send(
            rig.req(Method::PATCH, "entra", &path)
                .header("if-match", &v1)
                .header("content-type", "application/scim+json")
                .body(ops.to_string()),
        )
        .await;
    r.assert_status(200);
    let v2 = r.etag();
    assert_ne!(v1, v2);
    let r = rig
        .send(
            rig.req(Method::PATCH, "entra", &path)
                .header("if-match", &v1)
                .header("content-type", "application/scim+json")
                .body(ops.to_string()),
        )
        .await;
    r.assert_error(412, None);
    let r = rig
        .send(
            rig.req(Method::DELETE, "entra", &path)
                .header("if-match", &v1),
        )
        .await;
    r.assert_error(412, None);
    let r = rig
        .send(
            rig.req(Method::GET, "entra", &path)
                .header("if-none-match", &v2),
        )
        .await;
    assert_eq!(r.status.as_u16(), 304);
    let r = rig
        .send(
            rig.req(Method::DELETE, "entra", &path)
                .header("if-match", &v2),
        )
        .await;
    r.assert_status(204);
}
