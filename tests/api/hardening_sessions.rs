//! The hardening round (docs/security-cases.md, section I), sessions and the database: a flood
//! of `/login` leaves the database bounded and sign-ins working (I2), the database is private
//! to teamgate's user (I3), a refresh refused by the IdP ends the user's sessions (I6).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::task::JoinSet;
use tracing::Level;

use crate::helpers::{TestDb, demo_config, hold_writes, spawn_app, spawn_app_with, sql_rows};
use crate::oidc_common::*;
use crate::test_idp::{LoginSpec, TestIdp, TestIdpOptions};

// ---- I2. Pre-login sessions ----

/// (rows without a user, the latest expiry among them, the largest data) in the sessions table.
async fn pre_login_rows(rig: &Rig) -> (i64, i64, i64) {
    let row = sql_rows(
        &rig.app.state,
        "SELECT COUNT(*), COALESCE(MAX(expires_at), 0), COALESCE(MAX(LENGTH(data)), 0)
         FROM sessions WHERE user_id IS NULL",
        &[],
    )
    .await
    .remove(0);
    let n = |i: usize| -> i64 { row[i].as_deref().unwrap_or("0").parse().unwrap() };
    (n(0), n(1), n(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_leaves_the_sessions_table_bounded_and_real_sign_ins_work() {
    let idp = TestIdp::start().await;
    // The test client is the trusted proxy (loopback), as nginx in front of teamgate would be.
    let rig = Rig::start_with_server(
        "oidc",
        idp,
        "trusted_proxies = [\"127.0.0.1\"]\nlogin_rate_per_minute = 60\nlogin_rate_burst = 20",
        "",
        "",
    )
    .await;
    let long_rd = format!("/{}", "a".repeat(2000));
    let flood_url = rig
        .app
        .url(&format!("/login?provider={PROVIDER}&rd={long_rd}"));
    let started = Instant::now();
    let flood = {
        let url = flood_url.clone();
        tokio::spawn(async move {
            // Cookieless, as a script would: every request would start a new session.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let mut batch = JoinSet::new();
                for _ in 0..50 {
                    let (client, url) = (client.clone(), url.clone());
                    batch.spawn(async move {
                        let r = client
                            .get(url)
                            .header("x-forwarded-for", "203.0.113.66")
                            .send()
                            .await
                            .unwrap();
                        let retry_after = r.headers().get("retry-after").cloned();
                        (r.status(), retry_after, r.text().await.unwrap_or_default())
                    });
                }
                while let Some(r) = batch.join_next().await {
                    statuses.push(r.unwrap());
                }
            }
            statuses
        })
    };
    // Meanwhile a real user, behind the same proxy but from another address, signs in.
    let user = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-forwarded-for"),
                reqwest::header::HeaderValue::from_static("198.51.100.7"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    rig.idp
        .set_next_login(LoginSpec::new("u-real", "real@example.com"));
    let signed_in = login(&rig.app, &user, &rig.idp, PROVIDER).await;
    signed_in.assert_signed_in();
    assert_eq!(me(&rig.app, &user).await.0, StatusCode::OK);

    let statuses = flood.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(statuses.len(), 2000);
    let allowed = statuses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::SEE_OTHER)
        .count();
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(allowed + refused.len(), 2000, "only 303 or 429");
    // The burst, plus one a second for as long as the flood ran.
    let budget = 20 + elapsed.as_secs() as usize + 2;
    assert!(allowed <= budget, "{allowed} logins started in {elapsed:?}");
    let (status, retry_after, page) = refused[0];
    assert_eq!(*status, 429);
    let wait: u64 = retry_after
        .as_ref()
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(page.contains("Too many sign-in attempts"), "{page}");

    let (rows, latest, largest) = pre_login_rows(&rig).await;
    let now = rig.app.state.clock.unix();
    assert!(rows as usize <= budget + 1, "{rows} pre-login rows");
    assert!(
        latest <= now + teamgate::store::sessions::PRE_LOGIN_TTL,
        "a pre-login row lives until {latest} (now {now})"
    );
    assert!(
        largest as usize <= teamgate::oidc::pending::MAX_PENDING_BYTES + 256,
        "a pre-login row of {largest} bytes"
    );
}

#[tokio::test]
async fn one_browser_starting_many_logins_with_long_return_urls_keeps_one_small_session_row() {
    let rig = Rig::oidc().await;
    let b = browser();
    for i in 0..20 {
        let rd = format!("/{i}{}", "b".repeat(2000));
        let r = b
            .get(rig.app.url(&format!("/login?provider={PROVIDER}&rd={rd}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login {i}");
    }
    let (rows, _, largest) = pre_login_rows(&rig).await;
    assert_eq!(rows, 1);
    assert!(
        largest as usize <= teamgate::oidc::pending::MAX_PENDING_BYTES + 256,
        "{largest} bytes"
    );
    // The newest login is still in it and completes.
    let callback = {
        let authorize = start_login(&rig.app, &b, PROVIDER).await;
        rig.idp.authorize_redirect(&authorize).await
    };
    hit(&b, &callback).await.assert_signed_in();
}

// ---- I3. Database permissions ----

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_private_to_teamgates_user_and_so_is_a_directory_it_creates()
 {
    // A directory teamgate has to create, two levels deep. (File modes: SQLite's own files.)
    let config = demo_config().replace("{DB}", "{DB}.d/data/teamgate.db");
    let app = spawn_app_with(&config, TestDb::sqlite).await;
    crate::helpers::demo_sign_in(&app, &crate::helpers::new_browser(), "alice@example.com").await;
    app.state
        .store
        .write(|tx| tx.set_setting("test.write", "x"))
        .await
        .unwrap();
    let db = app
        .state
        .config
        .get()
        .server
        .database
        .sqlite_path()
        .unwrap()
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let data = db.parent().unwrap();
    assert_eq!(mode(data), 0o700, "{}", data.display());
    assert_eq!(mode(data.parent().unwrap()), 0o700);
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_readable_by_others_is_reported_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let (logs, _guard) = capture_logs(Level::WARN);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = demo_config().replace("{DB}", &db.display().to_string());
    let _app = spawn_app_with(&config, TestDb::sqlite).await;
    let text = logs.text();
    assert!(
        text.contains("can be read by other users") && text.contains("shared.db"),
        "{text}"
    );
    // Left as the operator made it: teamgate warns, it does not chmod behind their back.
    assert_eq!(mode(&db), 0o644);
}

// ---- I6. A refresh refused by the IdP ----

#[tokio::test]
async fn an_idp_refusing_the_refresh_token_ends_the_users_sessions_and_forward_auth_at_once() {
    let (logs, _guard) = capture_logs(Level::INFO);
    let rig = Rig::start(
        "oidc",
        TestIdpOptions::default(),
        "refresh_interval_seconds = 1",
    )
    .await;
    rig.idp.with_knobs(|k| k.issue_refresh_token = true);
    rig.idp
        .set_next_login(LoginSpec::new("u-1", "alice@example.com").with_groups([STAFF_GROUP]));
    rig.login().await.assert_signed_in();
    let auth = || async {
        rig.app
            .browser
            .get(rig.app.url("/auth"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(auth().await, 200);
    // One refresh goes through; then the IdP disables the user: their tokens are revoked.
    let calls = rig.idp.token_calls();
    assert!(
        eventually(Duration::from_secs(5), || async {
            rig.idp.token_calls() > calls
        })
        .await
    );
    assert_eq!(auth().await, 200, "an accepted refresh keeps the session");
    rig.idp.revoke_refresh_tokens();
    let ended = eventually(Duration::from_secs(5), || async {
        auth().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        ended,
        "/auth still answers for the user; log:\n{}",
        logs.text()
    );
    assert_eq!(me(&rig.app, &rig.app.browser).await.0, 401);
    assert_eq!(signed_in_sessions(&rig.app).await, 0, "the rows are gone");
    let audit = sql_rows(
        &rig.app.state,
        "SELECT trigger, action, detail FROM audit WHERE action = 'session.revoke'",
        &[],
    )
    .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0][0].as_deref(), Some("refresh"));
    assert!(logs.text().contains("invalid_grant"), "{}", logs.text());
    // The grant is gone: no more refreshes for this user.
    let calls = rig.idp.token_calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.idp.token_calls(), calls);
    // Signing in again works as usual.
    login(&rig.app, &browser(), &rig.idp, PROVIDER)
        .await
        .assert_signed_in();
}

// ---- I4. A signed-out session cannot come back ----

/// The race, ordered with the database lock: another process holds the write lock, so every
/// write waits in the writer's queue, in order. `POST /logout` queues the deletion of the
/// session; then a request that loaded the same session (before the deletion could commit)
/// queues its save of a fresher `last_seen`. When the lock is released the deletion commits
/// first and the save second: the save must not bring the row back. (On PostgreSQL another
/// session holds the lock every write job takes; both writes wait and then run in either
/// order, and in either the row must stay deleted.)
#[tokio::test]
async fn a_request_that_loaded_the_session_before_sign_out_cannot_write_it_back() {
    let app = spawn_app(&demo_config()).await;
    let b = crate::helpers::new_browser();
    crate::helpers::demo_sign_in(&app, &b, "alice@example.com").await;
    let home = b
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::helpers::hidden_inputs(&home)
        .into_iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value)
        .expect("the sign-out form's token");
    let user_sessions = || async {
        crate::helpers::sql_count(
            &app.state,
            "SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL",
            &[],
        )
        .await
    };
    assert_eq!(user_sessions().await, 1);
    // A minute on, every request refreshes last_seen: each one writes the session back.
    app.state.clock.advance(Duration::from_secs(61));
    let hog = hold_writes(&app.state).await;
    let logout = {
        let (b, url) = (b.clone(), app.url("/logout"));
        tokio::spawn(async move {
            b.post(url)
                .form(&[("csrf", csrf)])
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // The sign-out has loaded the session and queued its deletion behind the lock (there is
    // no signal for "queued"; it takes microseconds, the lock holds for seconds).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = {
        let (b, url) = (b.clone(), app.url("/api/v1/me"));
        tokio::spawn(async move { b.get(url).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !logout.is_finished() && !stale.is_finished(),
        "the lock held nobody"
    );
    hog.release().await;
    assert!(logout.await.unwrap().is_redirection());
    assert_eq!(
        stale.await.unwrap(),
        StatusCode::OK,
        "it was signed in when it loaded"
    );
    assert_eq!(user_sessions().await, 0, "the signed-out session came back");
    assert_eq!(
        b.get(app.url("/api/v1/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
