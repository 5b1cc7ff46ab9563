//! security cases 84-89 for SCIM, and 51 (deprovisioning ends sessions): concurrent writers,
//! a lock held past the busy timeout, Bulk, deactivation racing a login, SCIM racing login
//! reconciliation. The crash cases (86, 87 under SIGKILL) are in `scim_crash`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::oidc_common::{Rig, STAFF_GROUP, me};
use crate::scim_support::{GROUP, ScimRig, USER, token};
use crate::test_idp::{LoginSpec, TestIdpOptions};

#[tokio::test]
async fn case_84_fifty_concurrent_writers_never_see_a_busy_database() {
    let rig = ScimRig::start().await;
    let group = rig.create_group("entra", "Shared", None).await;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..50 {
        let client = rig.client.clone();
        let base = rig.app.url("/scim/v2/entra");
        let token = rig.entra_token.clone();
        let store = rig.app.state.store.clone();
        let group = group.clone();
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..6 {
                // SCIM writes: a create, then a membership change on one shared group.
                let r = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(json!({"schemas": [USER], "userName": format!("w{w}-{i}@x")}).to_string())
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status());
                let id = r.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                let r = client
                    .patch(format!("{base}/Groups/{group}"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(ops.to_string())
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status());
                // What a login writes, through the same store, at the same time.
                let profile = teamgate::store::users::LoginProfile {
                    provider: "okta".into(),
                    subject: format!("login-{w}-{i}"),
                    email: None,
                    email_verified: false,
                    name: None,
                    claims_groups: Some(vec!["Engineering".into()]),
                };
                store
                    .write(move |tx| tx.upsert_login_user(&profile, "2024-01-01T00:00:00Z"))
                    .await
                    .expect("a login write failed");
            }
            statuses
        });
    }
    let mut n = 0;
    while let Some(statuses) = tasks.join_next().await {
        for s in statuses.unwrap() {
            assert!(s.is_success(), "a concurrent write answered {s}");
            n += 1;
        }
    }
    assert_eq!(n, 600);
    let r = rig.get("entra", &format!("/Groups/{group}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 300);
}

#[test]
fn case_84_a_deferred_read_then_write_fails_with_busy_where_begin_immediate_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.db");
    let a = rusqlite::Connection::open(&path).unwrap();
    a.pragma_update(None, "journal_mode", "WAL").unwrap();
    a.busy_timeout(Duration::from_secs(5)).unwrap();
    a.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let b = rusqlite::Connection::open(&path).unwrap();
    b.busy_timeout(Duration::from_secs(5)).unwrap();

    // Deferred: A reads, B commits a write, A's upgrade to writer fails at once with BUSY
    // (its snapshot is stale); the busy timeout cannot help (launchbadge/sqlx#853).
    a.execute_batch("BEGIN DEFERRED").unwrap();
    let _: i64 = a
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    b.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT")
        .unwrap();
    let started = Instant::now();
    let err = a.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed without waiting"
    );
    a.execute_batch("ROLLBACK").unwrap();

    // Immediate: A asks for the write lock up front, waits while B holds it, then succeeds.
    b.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (3)")
        .unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        b.execute_batch("COMMIT").unwrap();
    });
    let started = Instant::now();
    a.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the lock"
    );
    a.execute("INSERT INTO t VALUES (4)", []).unwrap();
    a.execute_batch("COMMIT").unwrap();
    holder.join().unwrap();
    let n: i64 = a
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn case_85_a_lock_held_past_the_busy_timeout_is_a_503_with_retry_after() {
    let rig = ScimRig::start().await;
    // SQLite: another connection holds the write lock. PostgreSQL: another session holds the
    // lock every write job takes shared (the one the config sync takes exclusive).
    let database = rig.app.state.config.get().server.database.clone();
    let sqlite_hog = database.sqlite_path().map(|path| {
        let hog = rusqlite::Connection::open(path).unwrap();
        hog.execute_batch("BEGIN IMMEDIATE").unwrap();
        hog
    });
    let pg_hog = match rig.app.db.pg_conninfo() {
        Some(conninfo) => {
            let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute("SELECT pg_advisory_lock(8386093285548536933)")
                .await
                .unwrap();
            Some(client)
        }
        None => None,
    };
    let started = Instant::now();
    let r = rig
        .post(
            "entra",
            "/Users",
            &json!({"schemas": [USER], "userName": "blocked@x"}),
        )
        .await;
    r.assert_error(503, None);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        started.elapsed() >= teamgate::store::sqlite::BUSY_TIMEOUT - Duration::from_millis(100)
    );
    // Reads keep working meanwhile (WAL), and nothing was half-written.
    let list = rig
        .filter("entra", "Users", "userName eq \"blocked@x\"")
        .await;
    assert_eq!(list.body["totalResults"], 0);
    if let Some(hog) = sqlite_hog {
        hog.execute_batch("ROLLBACK").unwrap();
    }
    drop(pg_hog);
    rig.post(
        "entra",
        "/Users",
        &json!({"schemas": [USER], "userName": "blocked@x"}),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn case_86_bulk_is_refused_whole_and_a_replayed_create_is_409_without_a_duplicate() {
    let rig = ScimRig::start().await;
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "1", "data": {"schemas": [USER], "userName": "bulk@x"}}
    ]});
    rig.post("entra", "/Bulk", &bulk)
        .await
        .assert_error(501, None);
    assert_eq!(
        rig.filter("entra", "Users", "userName eq \"bulk@x\"")
            .await
            .body["totalResults"],
        0
    );
    let body = json!({"schemas": [USER], "userName": "replayed@x", "externalId": "oid-replayed"});
    rig.post("entra", "/Users", &body).await.assert_status(201);
    rig.post("entra", "/Users", &body)
        .await
        .assert_error(409, Some("uniqueness"));
    assert_eq!(
        rig.filter("entra", "Users", "externalId eq \"oid-replayed\"")
            .await
            .body["totalResults"],
        1
    );
}

/// A teamgate whose one provider `idp` (a test IdP) also provisions over SCIM.
async fn login_rig() -> (Rig, String) {
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "scim = { enabled = true }",
    )
    .await;
    let token = token(&rig.app, "idp").await;
    (rig, token)
}

async fn scim(
    rig: &Rig,
    token: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let r = reqwest::Client::new()
        .request(method, rig.app.url(&format!("/scim/v2/idp{path}")))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or_default())
}

fn patch_ops(ops: serde_json::Value) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[tokio::test]
async fn case_51_scim_deactivation_and_delete_end_the_users_sessions_at_once() {
    let (rig, token) = login_rig().await;
    rig.idp
        .set_next_login(LoginSpec::new("oid-dana", "dana@example.com"));
    rig.login().await.assert_signed_in();
    assert_eq!(me(&rig.app, &rig.app.browser).await.0, StatusCode::OK);
    // The IdP provisions the same person: externalId = the login subject.
    let (status, user) = scim(
        &rig,
        &token,
        Method::POST,
        "/Users",
        json!({"schemas": [USER], "userName": "dana@example.com", "externalId": "oid-dana"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(
        me(&rig.app, &rig.app.browser).await.0,
        StatusCode::OK,
        "provisioning an active user keeps the session"
    );
    let (status, _) = scim(
        &rig,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        patch_ops(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me(&rig.app, &rig.app.browser).await.0,
        StatusCode::UNAUTHORIZED,
        "deactivation ends the session"
    );
    // Reactivated, signed in again, then deleted: the session ends again.
    let (status, _) = scim(
        &rig,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        patch_ops(json!([{"op": "replace", "value": {"active": true}}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    rig.idp
        .set_next_login(LoginSpec::new("oid-dana", "dana@example.com"));
    rig.login().await.assert_signed_in();
    assert_eq!(me(&rig.app, &rig.app.browser).await.0, StatusCode::OK);
    let (status, _) = scim(
        &rig,
        &token,
        Method::DELETE,
        &format!("/Users/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        me(&rig.app, &rig.app.browser).await.0,
        StatusCode::UNAUTHORIZED,
        "deletion ends the session"
    );
    // And a deleted user cannot sign in again until re-provisioned.
    rig.idp
        .set_next_login(LoginSpec::new("oid-dana", "dana@example.com"));
    let outcome = rig.login().await;
    assert_ne!(
        outcome.status,
        StatusCode::SEE_OTHER,
        "a deprovisioned user signed in: {}",
        outcome.body
    );
    assert_eq!(
        me(&rig.app, &rig.app.browser).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn case_88_a_deactivation_racing_a_login_callback_leaves_no_live_session() {
    let (rig, token) = login_rig().await;
    let (status, user) = scim(
        &rig,
        &token,
        Method::POST,
        "/Users",
        json!({"schemas": [USER], "userName": "eve@example.com", "externalId": "oid-eve"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = user["id"].as_str().unwrap().to_owned();
    // The login is under way: the browser is back from the IdP with a code...
    rig.idp
        .set_next_login(LoginSpec::new("oid-eve", "eve@example.com"));
    let callback = rig.callback_url(&rig.app.browser).await;
    // ...when the IdP deactivates the user...
    let (status, _) = scim(
        &rig,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        patch_ops(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // ...so the callback, arriving after, must not create a live session.
    let outcome = rig.hit(&callback).await;
    assert_ne!(
        outcome.status,
        StatusCode::SEE_OTHER,
        "signed in after deactivation: {}",
        outcome.body
    );
    assert_eq!(
        me(&rig.app, &rig.app.browser).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(crate::oidc_common::signed_in_sessions(&rig.app).await, 0);
}

#[tokio::test]
async fn case_89_scim_group_changes_racing_logins_lose_no_update_and_each_source_keeps_its_rows() {
    let (rig, token) = login_rig().await;
    // The same person through both doors: claims carry STAFF_GROUP; SCIM toggles a SCIM group
    // with the same object id. Each source owns its rows (documented precedence).
    rig.idp
        .set_next_login(LoginSpec::new("oid-finn", "finn@example.com").with_groups([STAFF_GROUP]));
    rig.login().await.assert_signed_in();
    let (_, user) = scim(
        &rig,
        &token,
        Method::POST,
        "/Users",
        json!({"schemas": [USER], "userName": "finn@example.com", "externalId": "oid-finn"}),
    )
    .await;
    let uid = user["id"].as_str().unwrap().to_owned();
    let (_, group) = scim(
        &rig,
        &token,
        Method::POST,
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Staff", "externalId": STAFF_GROUP}),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();

    let mut logins = tokio::task::JoinSet::new();
    for i in 0..8 {
        let browser = crate::helpers::new_browser();
        let spec = if i % 2 == 0 {
            LoginSpec::new("oid-finn", "finn@example.com").with_groups([STAFF_GROUP])
        } else {
            LoginSpec::new("oid-finn", "finn@example.com").with_groups(Vec::<String>::new())
        };
        rig.idp.set_next_login(spec);
        let callback = crate::oidc_common::callback_url(&rig.app, &browser, &rig.idp, "idp").await;
        logins.spawn(async move { browser.get(callback).send().await.map(|r| r.status()) });
        let op = if i % 2 == 0 { "add" } else { "remove" };
        let ops = if op == "add" {
            json!([{"op": "add", "path": "members", "value": [{"value": uid}]}])
        } else {
            json!([{"op": "remove", "path": "members", "value": [{"value": uid}]}])
        };
        let (status, _) = scim(
            &rig,
            &token,
            Method::PATCH,
            &format!("/Groups/{gid}"),
            patch_ops(ops),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    while let Some(r) = logins.join_next().await {
        r.unwrap().unwrap();
    }
    // Whatever the interleaving, the stored memberships are exactly what the stored inputs
    // say: reconciling again changes nothing.
    let config = rig.app.state.config.get();
    let plan = rig
        .app
        .state
        .store
        .write(move |tx| {
            let user = tx.user_by_subject("idp", "oid-finn")?.unwrap();
            let trigger = teamgate::store::audit::Trigger::new(
                teamgate::store::audit::TriggerKind::Cli,
                None,
                None,
            );
            teamgate::membership::reconcile::reconcile_user(tx, user.id, &config, &trigger, "t")
        })
        .await
        .unwrap();
    assert!(plan.is_empty(), "a lost update: {plan:?}");
    // The last SCIM change removed the member; the SCIM row is gone whatever logins did.
    let rows: Vec<(String, String)> = crate::helpers::sql_rows(
        &rig.app.state,
        "SELECT m.team_id, m.source FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE u.subject = 'oid-finn' ORDER BY 1, 2",
        &[],
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
    .collect();
    assert!(!rows.iter().any(|(_, s)| s == "scim"), "{rows:?}");
}

#[tokio::test]
async fn case_89_a_stale_if_match_on_a_group_is_412() {
    let rig = ScimRig::start().await;
    let g = rig.create_group("entra", "Versioned", None).await;
    let v1 = rig.get("entra", &format!("/Groups/{g}")).await.etag();
    rig.patch(
        "entra",
        &format!("/Groups/{g}"),
        json!([{"op": "replace", "path": "displayName", "value": "V2"}]),
    )
    .await
    .assert_status(204);
    let body = json!({"schemas": [GROUP], "displayName": "Lost update"});
    let r = rig
        .send(
            rig.req(Method::PUT, "entra", &format!("/Groups/{g}"))
                .header("if-match", v1)
                .header("content-type", "application/scim+json")
                .body(body.to_string()),
        )
        .await;
    r.assert_error(412, None);
    assert_eq!(
        rig.get("entra", &format!("/Groups/{g}")).await.body["displayName"],
        "V2"
    );
}
