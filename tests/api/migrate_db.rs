//! `teamgate migrate-db --from SQLITE --to postgres://...` (issue 13): the real binary copies a
//! used SQLite database (users, memberships, SCIM state, sessions, audit, keys) into an empty
//! PostgreSQL database, prints and checks the counts, refuses a non-empty target, and a server
//! started on the copy knows the same users and sessions.

use reqwest::StatusCode;

use crate::helpers::{TestDb, demo_config, demo_sign_in, new_browser, spawn_app_with, sql_one};
use crate::support::postgres;

fn migrate(from: &std::path::Path, to: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["migrate-db", "--from"])
        .arg(from)
        .args(["--to", to])
        .output()
        .unwrap()
}

#[tokio::test]
async fn migrate_db_copies_every_row_and_the_copy_serves_the_same_users() {
    if !postgres::require("copy a SQLite database into PostgreSQL") {
        return;
    }
    let source = spawn_app_with(&demo_config(), TestDb::sqlite).await;
    let browser = new_browser();
    demo_sign_in(&source, &browser, "alice@example.com").await;
    demo_sign_in(&source, &new_browser(), "bob@example.com").await;
    let me = browser.get(source.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let users = sql_one(&source.state, "SELECT COUNT(*) FROM users", &[]).await;
    let audit = sql_one(&source.state, "SELECT COUNT(*) FROM audit", &[]).await;
    let file = source.db.setting.clone();

    let target = TestDb::postgres();
    let out = migrate(std::path::Path::new(&file), &target.setting);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in [
        "users",
        "memberships",
        "audit",
        "sessions",
        "signing_keys",
        "scim_users",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no count for {table}: {stdout}"));
        let counts: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(counts[0], counts[1], "{line}");
    }
    assert!(stdout.contains("every row copied and counted"), "{stdout}");

    // Into a database that is not empty any more: refused, nothing written.
    let again = migrate(std::path::Path::new(&file), &target.setting);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A server on the copy: the same users, the same audit, and alice's session still works
    // (the cookie jar sends it to any port of 127.0.0.1).
    let setting = target.setting.clone();
    let copy = spawn_app_with(&demo_config(), move |_| TestDb {
        setting,
        pg_name: None,
    })
    .await;
    assert_eq!(
        sql_one(&copy.state, "SELECT COUNT(*) FROM users", &[]).await,
        users
    );
    let copied_audit: i64 = sql_one(&copy.state, "SELECT COUNT(*) FROM audit", &[])
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(copied_audit >= audit.unwrap().parse::<i64>().unwrap());
    let me = browser.get(copy.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the session moved with the data"
    );
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
    // New rows get new ids past the copied ones.
    demo_sign_in(&copy, &new_browser(), "carol@example.com").await;
    drop(copy);
    drop(target);
}
