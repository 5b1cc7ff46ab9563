//! Live reload: a valid file is applied to every user at once and audited; an invalid file is
//! refused and the old config stays active. Both in process and through the real binary
//! (`teamgate reload`, SIGHUP), plus graceful shutdown on SIGTERM finishing a request.

use std::time::Duration;

use rustix::process::Signal;
use teamgate::admin::reload::{ReloadError, reload};
use teamgate::domain::TeamId;
use teamgate::store::audit::AuditFilter;
use teamgate::store::{Store, applied};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin_support::{
    Server, config_path, database, demo_config, demo_sign_in, edit, fill, stderr, stdout, teamgate,
    wait_until,
};
use crate::helpers::{new_browser, spawn_app};

const BOB_GROUP: &str = "00000000-0000-0000-0000-00000000c003";

/// The demo config without the mapping that puts Bob in infra-editors.
fn without_bobs_mapping(config: &str) -> String {
    edit(
        config,
        r#"groups = [{ provider = "demo", id = "00000000-0000-0000-0000-00000000c003" }]"#,
        "groups = []",
    )
}

async fn teams_of(app: &crate::helpers::TestApp, email: &'static str) -> Vec<(String, String)> {
    app.state
        .store
        .read(move |conn| {
            let user = conn.find_users(email)?.remove(0);
            Ok::<_, teamgate::store::StoreError>(
                conn.memberships(user.id)?
                    .into_iter()
                    .map(|m| (m.row.team.to_string(), m.row.source.as_str().to_owned()))
                    .collect(),
            )
        })
        .await
        .unwrap()
}

fn infra_mapped(app: &crate::helpers::TestApp) -> bool {
    let config = app.state.config.get();
    let team = config
        .team(&TeamId::parse("infra-editors").unwrap())
        .unwrap();
    team.groups.iter().any(|(_, g)| g == BOB_GROUP)
}

#[tokio::test]
async fn a_valid_config_change_is_applied_to_every_user_at_once_and_audited() {
    let app = spawn_app(&demo_config()).await;
    demo_sign_in(&app, &new_browser(), "bob@example.com").await;
    assert_eq!(
        teams_of(&app, "bob@example.com").await,
        [("infra-editors".into(), "claims".into())]
    );
    let applied_before = teamgate::metrics::config_reloads("applied");

    std::fs::write(
        config_path(&app),
        fill(&app, &without_bobs_mapping(&demo_config())),
    )
    .unwrap();
    let applied = reload(&app.state, "test").await.unwrap();

    assert_eq!(applied.report.users_changed, 1);
    assert!(applied.status.ok);
    assert!(!infra_mapped(&app), "the live config is the new one");
    // Bob did not sign in again: the mapping change reached him at once.
    assert_eq!(
        teams_of(&app, "bob@example.com").await,
        [("everyone".into(), "default".into())]
    );
    let rows = app
        .state
        .store
        .read(|tx| {
            tx.audit(&AuditFilter {
                trigger: Some("config".into()),
                limit: 100,
                ..Default::default()
            })
        })
        .await
        .unwrap();
    let config_file = config_path(&app).display().to_string();
    let removal = rows
        .iter()
        .find(|r| r.action == "membership.remove")
        .expect("an audit row for the removed membership");
    assert_eq!(removal.team.as_deref(), Some("infra-editors"));
    assert_eq!(removal.user_label.as_deref(), Some("bob@example.com"));
    assert!(
        removal.detail.as_deref().unwrap().contains(&config_file),
        "{removal:?}"
    );
    let addition = rows.iter().find(|r| r.action == "membership.add").unwrap();
    assert_eq!(addition.team.as_deref(), Some("everyone"));
    let event = rows.iter().find(|r| r.action == "config.reload").unwrap();
    assert!(
        event
            .detail
            .as_deref()
            .unwrap()
            .starts_with(&format!("applied {config_file} (sha256 ")),
        "{event:?}"
    );
    assert!(teamgate::metrics::config_reloads("applied") > applied_before);
}

#[tokio::test]
async fn a_changed_idp_timeout_is_applied_at_the_next_restart_and_the_reload_says_so() {
    let app = spawn_app(&demo_config()).await;
    let longer = edit(
        &demo_config(),
        "[server]",
        "[server]\nidp_timeout_seconds = 4",
    );
    std::fs::write(config_path(&app), fill(&app, &longer)).unwrap();
    let applied = reload(&app.state, "test").await.unwrap();
    assert!(applied.status.ok);
    assert_eq!(
        applied.restart_pending,
        ["server.idp_timeout_seconds / idp_connect_timeout_seconds"]
    );
    assert!(
        applied
            .status
            .message
            .contains("restart to apply server.idp_timeout_seconds"),
        "{}",
        applied.status.message
    );
    // The running client keeps the timeout it was built with.
    assert_eq!(
        app.state.providers.http().timeout(),
        Duration::from_secs(10)
    );
}

#[tokio::test]
async fn an_invalid_config_file_is_refused_and_the_old_config_stays_active() {
    let app = spawn_app(&demo_config()).await;
    demo_sign_in(&app, &new_browser(), "bob@example.com").await;
    let memberships_before = teams_of(&app, "bob@example.com").await;

    // Invalid as a whole (an unknown role) although it also drops Bob's mapping.
    let broken = edit(
        &without_bobs_mapping(&demo_config()),
        r#"role = "owner""#,
        r#"role = "overlord""#,
    );
    std::fs::write(config_path(&app), fill(&app, &broken)).unwrap();
    let err = reload(&app.state, "test").await.unwrap_err();

    let ReloadError::Invalid(errors) = &err else {
        panic!("expected the file to be refused as invalid, got {err}");
    };
    assert!(
        errors
            .to_string()
            .contains("\"overlord\" is not a built-in role"),
        "{errors}"
    );
    assert!(infra_mapped(&app), "the old config stays live");
    assert_eq!(teams_of(&app, "bob@example.com").await, memberships_before);
    let status = app
        .state
        .store
        .read(applied::last_reload)
        .await
        .unwrap()
        .unwrap();
    assert!(!status.ok);
    assert!(status.message.contains("overlord"), "{status:?}");

    // A file that moves the database is refused as well: only a restart can do that.
    let moved = demo_config().replace("{DB}", "{DB}.elsewhere");
    std::fs::write(config_path(&app), fill(&app, &moved)).unwrap();
    assert!(matches!(
        reload(&app.state, "test").await,
        Err(ReloadError::NeedsRestart(_))
    ));
    assert_eq!(
        app.state.config.get().server.database.describe(),
        database(&app)
    );
    assert_eq!(teams_of(&app, "bob@example.com").await, memberships_before);
}

/// A demo config for a `teamgate serve` child in `dir`: port 0, database `db`.
fn server_config(dir: &std::path::Path, text: &str, db: &str) -> std::path::PathBuf {
    let path = dir.join("teamgate.toml");
    let text = edit(
        text,
        r#"listen     = "127.0.0.1:8080""#,
        r#"listen     = "127.0.0.1:0""#,
    )
    .replace("{PUBLIC_URL}", "http://127.0.0.1:8080")
    .replace("{DB}", db);
    std::fs::write(&path, text).unwrap();
    path
}

/// The last reload outcome, read as the command-line tools read (off the runtime).
fn last_reload(database: &teamgate::config::Database) -> Option<applied::ReloadStatus> {
    let database = database.clone();
    std::thread::spawn(move || {
        Store::open_database_read_only(&database)
            .unwrap()
            .read_blocking(applied::last_reload)
            .unwrap()
    })
    .join()
    .unwrap()
}

fn last_reload_seq(database: &teamgate::config::Database) -> i64 {
    last_reload(database).map_or(0, |s| s.seq)
}

#[tokio::test]
async fn teamgate_reload_makes_the_server_apply_a_valid_file_and_an_invalid_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::TestDb::fresh(dir.path());
    let config = server_config(dir.path(), &demo_config(), &db.setting);
    let server = Server::start(&config, &db.setting);
    let database = teamgate::config::Config::load(&config)
        .unwrap()
        .server
        .database;
    let path = config.to_str().unwrap();

    // A rename, applied by the server on `teamgate reload`.
    let renamed = edit(
        &demo_config(),
        r#"name = "Security Viewers""#,
        r#"name = "Security Readers""#,
    );
    server_config(dir.path(), &renamed, &db.setting);
    assert_eq!(teamgate(&["plan", "--config", path]).status.code(), Some(2));
    let out = teamgate(&["reload", "--config", path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("1 renamed"), "{}", stdout(&out));
    let out = teamgate(&["plan", "--config", path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "applied, so nothing left to plan: {}",
        stdout(&out)
    );

    // Another file than the one the server re-reads: refused before any signal.
    let seq = last_reload_seq(&database);
    let other = dir.path().join("other.toml");
    std::fs::copy(&config, &other).unwrap();
    let out = teamgate(&["reload", "--config", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // SQLite: one pid file per database names the file the server re-reads. PostgreSQL
    // (replicas share the database): one pid file per config file, and none for this one.
    assert!(
        stderr(&out).contains("the server re-reads") || stderr(&out).contains("no pid file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(last_reload_seq(&database), seq);

    // An invalid file: `teamgate reload` refuses it itself and never signals the server.
    let broken = edit(&renamed, r#"role = "owner""#, r#"role = "overlord""#);
    server_config(dir.path(), &broken, &db.setting);
    let out = teamgate(&["reload", "--config", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("overlord"), "{}", stderr(&out));
    assert_eq!(last_reload_seq(&database), seq);

    // SIGHUP with the invalid file on disk: the server refuses it, logs why, keeps running.
    server.signal(Signal::HUP);
    wait_until(Duration::from_secs(10), || last_reload_seq(&database) > seq);
    let status = last_reload(&database).unwrap();
    assert!(
        !status.ok && status.message.contains("overlord"),
        "{status:?}"
    );
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // Still on the renamed config: planning it shows nothing to do.
    server_config(dir.path(), &renamed, &db.setting);
    assert_eq!(teamgate(&["plan", "--config", path]).status.code(), Some(0));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_before_the_server_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::TestDb::fresh(dir.path());
    let config = server_config(dir.path(), &demo_config(), &db.setting);
    let mut server = Server::start(&config, &db.setting);

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let body = "csrf=abcd";
    // `Expect: 100-continue`: the server answers "100 Continue" when the handler starts
    // reading the body, the signal that the request is in flight.
    let head = format!(
        "POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        interim.push(stream.read_u8().await.unwrap());
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );

    server.signal(Signal::TERM);
    server.wait_for_log("shutting down");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );

    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let mut exited = None;
    wait_until(Duration::from_secs(10), || {
        exited = server.child.try_wait().unwrap();
        exited.is_some()
    });
    assert!(exited.unwrap().success(), "a clean exit after the drain");
    assert!(
        !dir.path().join("teamgate.db.pid").exists(),
        "the pid file is removed at exit"
    );
}

/// Start a login for alice (in the staff group), hold it at the token endpoint, rewrite the
/// config file with `change` and reload; returns the login's outcome once it completes.
async fn login_across_a_reload(
    rig: &crate::oidc_common::Rig,
    change: impl FnOnce(&str) -> String,
) -> crate::oidc_common::Outcome {
    use crate::oidc_common::{STAFF_GROUP, browser, hit};
    use crate::test_idp::{Endpoint, LoginSpec};

    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    let browser = browser();
    let callback = rig.callback_url(&browser).await;
    // The callback takes its config snapshot, then waits on the token endpoint.
    rig.idp.with_knobs(|k| {
        k.delay(Endpoint::Token, Duration::from_secs(1));
    });
    let in_flight = tokio::spawn(async move { hit(&browser, &callback).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let path = config_path(&rig.app);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, change(&text)).unwrap();
    reload(&rig.app.state, "test").await.unwrap();
    assert!(
        !in_flight.is_finished(),
        "the login finished before the reload"
    );
    in_flight.await.unwrap()
}

/// A login whose callback began before a reload and writes after it is reconciled with the
/// new config: its write job reads the config in force, not the snapshot its request took.
#[tokio::test]
async fn a_login_in_flight_during_a_reload_gets_the_teams_of_the_new_config() {
    use crate::oidc_common::{PROVIDER, Rig, STAFF_GROUP, teams_of};

    let rig = Rig::oidc().await;
    let mapping = format!(r#"groups = [{{ provider = "{PROVIDER}", id = "{STAFF_GROUP}" }}]"#);
    let outcome = login_across_a_reload(&rig, |text| edit(text, &mapping, "groups = []")).await;
    outcome.assert_signed_in();
    assert_eq!(teams_of(&rig.app, "u-1").await, ["everyone"]);
}

/// A reload that narrows the provider's email domains while a login is in flight refuses
/// that login, with nothing written and no session.
#[tokio::test]
async fn a_login_in_flight_when_a_reload_narrows_the_email_domains_is_refused() {
    use crate::oidc_common::{PROVIDER, Rig};

    let rig = Rig::oidc().await;
    let id_line = format!("id = \"{PROVIDER}\"\n");
    let outcome = login_across_a_reload(&rig, |text| {
        edit(
            text,
            &id_line,
            &format!("{id_line}allowed_email_domains = [\"elsewhere.example\"]\n"),
        )
    })
    .await;
    outcome.assert_refused(403, "Email domain not allowed");
    rig.assert_nobody_signed_in().await;
}
