//! The PostgreSQL store's own mechanics, beyond what the whole suite checks on both backends.
//! These run on a PostgreSQL database of their own whatever the suite's backend (skipped with
//! a printed reason when no server answers, a failure under `TEAMGATE_REQUIRE_E2E=1`):
//! - writes whose results nobody reads (audit rows, membership rows) go out with the next
//!   statement or the COMMIT; when one of them fails, the request fails and nothing of it is
//!   stored (PostgreSQL answers a COMMIT of a failed transaction with a rollback, not an error,
//!   so the store must look at the writes' own answers);
//! - a database filling up gets planner statistics before autovacuum's first visit, so lookups
//!   use their unique index rather than scanning a realm.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::scim_support::{ScimRig, USER};
use crate::support::postgres;

/// One value of `sql` on the rig's database.
fn one(conninfo: &str, sql: &str) -> String {
    postgres::rows_on(conninfo, sql).unwrap()[0][0]
        .clone()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_write_sent_with_the_commit_that_fails_fails_the_request_and_stores_nothing() {
    if !postgres::require("check writes sent with the COMMIT on PostgreSQL") {
        return;
    }
    let rig = ScimRig::start_on_postgres().await;
    let conninfo = rig.app.db.pg_conninfo().unwrap();
    // The creation's audit row is the last write before the COMMIT, sent with it.
    postgres::batch_on(
        &conninfo,
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.action = 'scim.user.create' THEN RAISE EXCEPTION 'refused by the test'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit
           FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .unwrap();

    let r = rig
        .post(
            "entra",
            "/Users",
            &json!({"schemas": [USER], "userName": "refused@example.com"}),
        )
        .await;
    r.assert_error(500, None);
    for table in ["scim_users", "users", "memberships"] {
        assert_eq!(
            one(&conninfo, &format!("SELECT count(*) FROM {table}")),
            "0",
            "{table} holds a row of the refused request"
        );
    }

    // The connection went back to the pool clean: the next request is stored whole.
    postgres::batch_on(&conninfo, "DROP TRIGGER refuse_audit ON audit").unwrap();
    let id = rig.create_user("entra", "accepted@example.com", None).await;
    assert_eq!(
        one(
            &conninfo,
            &format!("SELECT count(*) FROM scim_users WHERE scim_id = '{id}'")
        ),
        "1"
    );
    assert_eq!(
        one(
            &conninfo,
            "SELECT count(*) FROM audit WHERE action = 'scim.user.create'"
        ),
        "1"
    );
    // The default team's membership and its audit row went with the same COMMIT.
    assert_eq!(
        one(&conninfo, "SELECT count(*) FROM memberships"),
        one(
            &conninfo,
            "SELECT count(*) FROM audit WHERE action = 'membership.add'"
        ),
    );
}

#[tokio::test]
async fn a_database_filling_up_gets_planner_statistics_before_autovacuum_does() {
    if !postgres::require("check planner statistics on PostgreSQL") {
        return;
    }
    let rig = ScimRig::start_on_postgres().await;
    let conninfo = rig.app.db.pg_conninfo().unwrap();
    let analyzed = || {
        one(
            &conninfo,
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'scim_users'",
        )
    };
    assert_eq!(analyzed(), "0", "a new database starts without statistics");

    // 256 commits start the first ANALYZE (store::postgres::statistics); a creation is one.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = rig.client.clone();
        let base = rig.app.url("/scim/v2/entra/Users");
        let token = rig.entra_token.clone();
        tasks.spawn(async move {
            for i in 0..34 {
                let r = client
                    .post(&base)
                    .bearer_auth(&token)
                    .json(&json!({"schemas": [USER], "userName": format!("u{worker}-{i}@example.com")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    while analyzed() == "0" {
        assert!(
            Instant::now() < deadline,
            "no ANALYZE of scim_users after 272 creations"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // With statistics, a userName lookup takes the realm's userName index; without them the
    // planner ties it with the realm's listing index and reads the whole realm.
    let plan = postgres::rows_on(
        &conninfo,
        "EXPLAIN SELECT id FROM scim_users
         WHERE provider = 'entra' AND tenant = '' AND user_name_key = 'u3-7@example.com'",
    )
    .unwrap();
    let plan: Vec<String> = plan.into_iter().filter_map(|r| r[0].clone()).collect();
    assert!(
        plan.iter().any(|l| l.contains("scim_users_user_name")),
        "plan: {plan:#?}"
    );
}
