//! Store-level tests of the SCIM tables on a fresh in-memory database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::filter_sql::{SqlFilter, translate};
use super::{groups, tokens, users};
use crate::config::GroupKey;
use crate::domain::scim::ResourceType;
use crate::domain::scim::filter::compile;
use crate::store::scim::{GroupValues, MemberRef, NewToken, Realm, UserValues};
use crate::store::sqlite::users::link_identity;
use crate::store::users::NewIdentity;

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    crate::store::sqlite::migrations::apply(&mut conn).unwrap();
    conn
}

fn realm(provider: &str) -> Realm {
    Realm::new(provider, None)
}

fn doc(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Insert a user the way the service does: identity first, then the SCIM row.
fn add_user(conn: &Connection, provider: &str, scim_id: &str, d: Value) -> i64 {
    let d = doc(d);
    let f = crate::domain::scim::resource::user_fields(&d);
    let subject = f
        .external_id
        .clone()
        .unwrap_or_else(|| format!("scim:{scim_id}"));
    let active = f.active.unwrap_or(true);
    let user_id = link_identity(
        conn,
        &NewIdentity {
            provider,
            subject: &subject,
            email: None,
            name: None,
            active,
        },
        "2024-01-01T00:00:00.000Z",
    )
    .unwrap()
    .user_id;
    let v = UserValues {
        user_name: &f.user_name,
        external_id: f.external_id.as_deref(),
        active,
        doc: &d,
    };
    users::insert(
        conn,
        &realm(provider),
        scim_id,
        user_id,
        &v,
        "2024-01-01T00:00:00.000Z",
    )
    .unwrap()
}

fn add_group(
    conn: &Connection,
    provider: &str,
    scim_id: &str,
    name: &str,
    ext: Option<&str>,
) -> i64 {
    let d = doc(json!({"displayName": name}));
    let v = GroupValues {
        display_name: name,
        external_id: ext,
        doc: &d,
    };
    groups::insert(
        conn,
        &realm(provider),
        scim_id,
        &v,
        "2024-01-01T00:00:00.000Z",
    )
    .unwrap()
}

fn user_ids(conn: &Connection, provider: &str, filter: &str) -> Vec<String> {
    let cond = compile(ResourceType::User, filter).unwrap();
    let sql = translate(ResourceType::User, &cond, &realm(provider)).unwrap();
    let (total, rows) = users::list(conn, &realm(provider), Some(&sql), 0, 100).unwrap();
    assert_eq!(total, rows.len());
    rows.into_iter().map(|r| r.scim_id).collect()
}

fn population(conn: &Connection) {
    add_user(
        conn,
        "entra",
        "u1",
        json!({
            "userName": "Alice@Example.com", "externalId": "oid-1", "active": true, "title": "Boss",
            "name": {"givenName": "Alice"},
            "emails": [{"value": "alice@example.com", "type": "work"}, {"value": "a@home.example", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701"}
        }),
    );
    add_user(
        conn,
        "entra",
        "u2",
        json!({
            "userName": "bob_100%@example.com", "externalId": "oid-2", "active": false,
            "emails": [{"value": "bob@example.com", "type": "home"}]
        }),
    );
    add_user(
        conn,
        "entra",
        "u3",
        json!({"userName": "ÉLODIE@example.com", "active": true}),
    );
    add_user(
        conn,
        "okta",
        "u4",
        json!({"userName": "alice@example.com", "externalId": "oid-1"}),
    );
}

#[test]
fn user_name_filters_are_case_insensitive_and_per_provider() {
    let conn = db();
    population(&conn);
    assert_eq!(
        user_ids(&conn, "entra", "userName eq \"alice@EXAMPLE.com\""),
        ["u1"]
    );
    assert_eq!(
        user_ids(&conn, "entra", "userName eq \"élodie@example.com\""),
        ["u3"],
        "full Unicode folding"
    );
    assert_eq!(
        user_ids(&conn, "okta", "userName eq \"ALICE@example.com\""),
        ["u4"]
    );
    assert_eq!(user_ids(&conn, "entra", "userName sw \"ALI\""), ["u1"]);
}

#[test]
fn external_id_is_case_exact() {
    let conn = db();
    population(&conn);
    assert_eq!(user_ids(&conn, "entra", "externalId eq \"oid-1\""), ["u1"]);
    assert!(user_ids(&conn, "entra", "externalId eq \"OID-1\"").is_empty());
    assert_eq!(
        user_ids(&conn, "entra", "externalId sw \"oid\""),
        ["u1", "u2"]
    );
    assert!(user_ids(&conn, "entra", "externalId sw \"OID\"").is_empty());
    assert_eq!(user_ids(&conn, "entra", "externalId ew \"-2\""), ["u2"]);
    assert_eq!(
        user_ids(&conn, "entra", "externalId co \"d-\""),
        ["u1", "u2"]
    );
}

#[test]
fn case_69_like_wildcards_in_values_are_literal() {
    let conn = db();
    population(&conn);
    assert_eq!(user_ids(&conn, "entra", "userName co \"_100%\""), ["u2"]);
    assert!(user_ids(&conn, "entra", "userName co \"%\" and userName sw \"a\"").is_empty());
    assert!(user_ids(&conn, "entra", "userName co \"_\" and userName sw \"a\"").is_empty());
    assert!(user_ids(&conn, "entra", "userName eq \"' OR 1=1 --\"").is_empty());
    assert!(
        user_ids(
            &conn,
            "entra",
            "userName eq \"\\\\\" or userName eq \"\\u0000\""
        )
        .is_empty()
    );
}

#[test]
fn booleans_nulls_and_not() {
    let conn = db();
    population(&conn);
    assert_eq!(user_ids(&conn, "entra", "active eq false"), ["u2"]);
    assert_eq!(user_ids(&conn, "entra", "active eq \"True\""), ["u1", "u3"]);
    assert_eq!(user_ids(&conn, "entra", "title pr"), ["u1"]);
    assert_eq!(user_ids(&conn, "entra", "not (title pr)"), ["u2", "u3"]);
    assert_eq!(
        user_ids(&conn, "entra", "title ne \"Boss\""),
        ["u2", "u3"],
        "absent counts as not equal"
    );
    assert_eq!(user_ids(&conn, "entra", "externalId eq null"), ["u3"]);
    assert_eq!(
        user_ids(&conn, "entra", "not (externalId eq \"oid-1\")"),
        ["u2", "u3"]
    );
    assert_eq!(
        user_ids(&conn, "entra", "title eq \"boss\""),
        ["u1"],
        "title is caseExact=false"
    );
}

#[test]
fn value_paths_and_sub_attributes_read_the_stored_document() {
    let conn = db();
    population(&conn);
    assert_eq!(
        user_ids(
            &conn,
            "entra",
            "emails[type eq \"work\"].value eq \"ALICE@example.com\""
        ),
        ["u1"]
    );
    assert!(
        user_ids(
            &conn,
            "entra",
            "emails[type eq \"home\"].value eq \"alice@example.com\""
        )
        .is_empty()
    );
    assert_eq!(user_ids(&conn, "entra", "emails.value co \"bob\""), ["u2"]);
    assert_eq!(
        user_ids(&conn, "entra", "emails[type eq \"home\"]"),
        ["u1", "u2"]
    );
    assert_eq!(
        user_ids(&conn, "entra", "name.givenName eq \"alice\""),
        ["u1"]
    );
    assert_eq!(
        user_ids(
            &conn,
            "entra",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701\""
        ),
        ["u1"]
    );
    assert_eq!(user_ids(&conn, "entra", "emails pr"), ["u1", "u2"]);
}

#[test]
fn precedence_survives_translation() {
    let conn = db();
    population(&conn);
    // and binds tighter: u3 matches the second branch alone.
    assert_eq!(
        user_ids(
            &conn,
            "entra",
            "userName sw \"bob\" and active eq true or userName sw \"É\""
        ),
        ["u3"]
    );
    assert_eq!(
        user_ids(
            &conn,
            "entra",
            "userName sw \"bob\" and (active eq true or userName sw \"b\")"
        ),
        ["u2"]
    );
}

#[test]
fn meta_dates_compare_in_time_order() {
    let conn = db();
    population(&conn);
    assert_eq!(
        user_ids(&conn, "entra", "meta.created ge \"2024-01-01T00:00:00Z\"").len(),
        3
    );
    assert!(
        user_ids(
            &conn,
            "entra",
            "meta.lastModified gt \"2024-01-01T00:00:00.0001Z\""
        )
        .is_empty()
    );
    assert_eq!(
        user_ids(&conn, "entra", "meta.resourceType eq \"User\"").len(),
        3
    );
}

#[test]
fn paging_is_stable_in_insertion_order_with_a_total() {
    let conn = db();
    for i in 0..25 {
        add_user(
            &conn,
            "okta",
            &format!("p{i:02}"),
            json!({"userName": format!("user{i}")}),
        );
    }
    let (total, page) = users::list(&conn, &realm("okta"), None, 10, 10).unwrap();
    assert_eq!(total, 25);
    let ids: Vec<String> = page.into_iter().map(|r| r.scim_id).collect();
    assert_eq!(
        ids,
        (10..20).map(|i| format!("p{i:02}")).collect::<Vec<_>>()
    );
    let (total, page) = users::list(&conn, &realm("okta"), None, 0, 0).unwrap();
    assert_eq!((total, page.len()), (25, 0));
}

#[test]
fn user_name_uniqueness_is_per_provider_and_case_insensitive() {
    let conn = db();
    population(&conn);
    assert!(
        users::by_user_name(&conn, &realm("entra"), "ALICE@example.COM")
            .unwrap()
            .is_some()
    );
    let d = doc(json!({"userName": "alice@EXAMPLE.com"}));
    let id = link_identity(
        &conn,
        &NewIdentity {
            provider: "entra",
            subject: "scim:dup",
            email: None,
            name: None,
            active: true,
        },
        "t",
    )
    .unwrap()
    .user_id;
    let v = UserValues {
        user_name: "alice@EXAMPLE.com",
        external_id: None,
        active: true,
        doc: &d,
    };
    let err = users::insert(&conn, &realm("entra"), "dup", id, &v, "t").unwrap_err();
    assert!(matches!(err, crate::store::StoreError::Conflict(_)));
}

fn group_ids(conn: &Connection, filter: &str) -> Vec<String> {
    let cond = compile(ResourceType::Group, filter).unwrap();
    let sql: SqlFilter = translate(ResourceType::Group, &cond, &realm("entra")).unwrap();
    groups::list(conn, &realm("entra"), Some(&sql), 0, 100)
        .unwrap()
        .1
        .into_iter()
        .map(|g| g.scim_id)
        .collect()
}

#[test]
fn groups_filter_on_display_name_and_members() {
    let conn = db();
    population(&conn);
    let g1 = add_group(&conn, "entra", "g1", "Admins", Some("gid-1"));
    let _g2 = add_group(&conn, "entra", "g2", "Viewers", None);
    let MemberRef { member: u1, .. } = users::resolve(&conn, &realm("entra"), "u1")
        .unwrap()
        .unwrap();
    assert!(groups::add_member(&conn, g1, u1).unwrap());
    assert!(
        !groups::add_member(&conn, g1, u1).unwrap(),
        "adding twice is a no-op"
    );
    assert_eq!(group_ids(&conn, "displayName eq \"admins\""), ["g1"]);
    assert_eq!(group_ids(&conn, "members[value eq \"u1\"]"), ["g1"]);
    assert_eq!(group_ids(&conn, "members.value eq \"u1\""), ["g1"]);
    assert!(group_ids(&conn, "members[value eq \"u2\"]").is_empty());
    assert_eq!(group_ids(&conn, "members pr"), ["g1"]);
    assert_eq!(group_ids(&conn, "not (members pr)"), ["g2"]);
    assert_eq!(group_ids(&conn, "members[value sw \"u\"]"), ["g1"]);
    assert_eq!(group_ids(&conn, "externalId eq \"gid-1\""), ["g1"]);
}

#[test]
fn groups_of_user_feeds_reconcile_by_external_id_or_name() {
    let conn = db();
    population(&conn);
    let g1 = add_group(&conn, "entra", "g1", "Admins", Some("gid-1"));
    let g2 = add_group(&conn, "entra", "g2", "Viewers", None);
    let MemberRef {
        member: u1,
        user_id,
    } = users::resolve(&conn, &realm("entra"), "u1")
        .unwrap()
        .unwrap();
    assert_eq!(
        super::groups_of_user(&conn, user_id, GroupKey::Id).unwrap(),
        Some(vec![])
    );
    groups::add_member(&conn, g1, u1).unwrap();
    groups::add_member(&conn, g2, u1).unwrap();
    assert_eq!(
        super::groups_of_user(&conn, user_id, GroupKey::Id).unwrap(),
        Some(vec!["gid-1".to_owned(), "g2".to_owned()])
    );
    assert_eq!(
        super::groups_of_user(&conn, user_id, GroupKey::Name).unwrap(),
        Some(vec!["Admins".to_owned(), "Viewers".to_owned()])
    );
    let never = link_identity(
        &conn,
        &NewIdentity {
            provider: "entra",
            subject: "login-only",
            email: None,
            name: None,
            active: true,
        },
        "t",
    )
    .unwrap()
    .user_id;
    assert_eq!(
        super::groups_of_user(&conn, never, GroupKey::Id).unwrap(),
        None
    );
    // Deleting the user drops its memberships with it.
    users::delete(&conn, u1).unwrap();
    assert!(groups::member_identities(&conn, g1).unwrap().is_empty());
}

#[test]
fn tokens_are_found_by_hash_and_revoked_per_provider() {
    let conn = db();
    let hash = [7u8; 32];
    tokens::insert(
        &conn,
        &NewToken {
            public_id: "t1",
            provider: "entra",
            tenant: None,
            hash,
            created_at: "now",
            expires_at: 4_000_000_000,
            note: Some("note"),
        },
    )
    .unwrap();
    let (row, stored) = tokens::by_hash(&conn, &hash).unwrap().unwrap();
    assert_eq!(row.provider, "entra");
    assert_eq!(stored, hash.to_vec());
    assert!(
        !tokens::revoke(&conn, "okta", "t1", "now").unwrap(),
        "another provider's token"
    );
    assert!(tokens::revoke(&conn, "entra", "t1", "now").unwrap());
    assert!(
        !tokens::revoke(&conn, "entra", "t1", "now").unwrap(),
        "already revoked"
    );
    assert!(
        tokens::list(&conn, "entra").unwrap()[0]
            .revoked_at
            .is_some()
    );
}

/// Security case J1: the tenants of one provider are separate realms.
#[test]
fn the_tenants_of_one_provider_are_separate_realms_with_their_own_names() {
    let conn = db();
    let a = Realm::new("partners", Some("11111111-1111-4111-8111-111111111111"));
    let b = Realm::new("partners", Some("22222222-2222-4222-8222-222222222222"));
    let add = |realm: &Realm, scim_id: &str, subject: &str| {
        let d = doc(json!({"userName": "same@example.com"}));
        let id = link_identity(
            &conn,
            &NewIdentity {
                provider: "partners",
                subject,
                email: None,
                name: None,
                active: true,
            },
            "t",
        )
        .unwrap()
        .user_id;
        let v = UserValues {
            user_name: "same@example.com",
            external_id: Some("oid"),
            active: true,
            doc: &d,
        };
        users::insert(&conn, realm, scim_id, id, &v, "t")
    };
    add(&a, "ua", &a.subject("oid")).unwrap();
    add(&b, "ub", &b.subject("oid")).unwrap();
    assert!(add(&a, "ua2", "other").is_err(), "unique within a tenant");
    assert_eq!(
        users::get(&conn, &a, "ua").unwrap().unwrap().tenant,
        a.tenant
    );
    assert!(users::get(&conn, &b, "ua").unwrap().is_none());
    assert!(
        users::get(&conn, &realm("partners"), "ua")
            .unwrap()
            .is_none()
    );
    assert!(users::resolve(&conn, &b, "ua").unwrap().is_none());
    let cond = compile(ResourceType::User, "externalId eq \"oid\"").unwrap();
    for (r, want) in [(&a, "ua"), (&b, "ub")] {
        let sql = translate(ResourceType::User, &cond, r).unwrap();
        let (_, rows) = users::list(&conn, r, Some(&sql), 0, 10).unwrap();
        assert_eq!(
            rows.iter().map(|u| u.scim_id.as_str()).collect::<Vec<_>>(),
            [want]
        );
    }
    let g = GroupValues {
        display_name: "Admins",
        external_id: Some("gid"),
        doc: &doc(json!({"displayName": "Admins"})),
    };
    let ga = groups::insert(&conn, &a, "ga", &g, "t").unwrap();
    groups::insert(&conn, &b, "gb", &g, "t").unwrap();
    let member = users::resolve(&conn, &a, "ua").unwrap().unwrap();
    groups::add_member(&conn, ga, member.member).unwrap();
    assert_eq!(
        super::groups_of_user(&conn, member.user_id, GroupKey::Id).unwrap(),
        Some(vec!["11111111-1111-4111-8111-111111111111/gid".to_owned()]),
        "a tenant's group keys carry the tenant"
    );
}
