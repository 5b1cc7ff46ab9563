//! Running teamgate in production: served under a path of a site (public_url with a path), the
//! request id a trusted proxy sends and the W3C `traceparent`, paths in the config resolved
//! beside the config file, `check-config --config`, the shipped systemd unit (checked by
//! `systemd-analyze`), and a backup of the live database under SCIM write load restored into a
//! new server that serves the same users.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_support::{Server, demo_config, edit};
use crate::helpers::{TestDb, new_browser, spawn_app, spawn_app_with};
use crate::scim_support::{self, USER};
use crate::support::e2e;

fn demo_under(path_and_extra: &str) -> String {
    edit(
        &demo_config(),
        "public_url = \"{PUBLIC_URL}\"",
        path_and_extra,
    )
}

#[tokio::test]
async fn under_a_path_every_route_links_and_redirects_carry_the_path_and_nothing_is_served_outside_it()
 {
    let app = spawn_app(&demo_config().replace("{PUBLIC_URL}", "{PUBLIC_URL}/tg")).await;
    let tg = |path: &str| app.url(&format!("/tg{path}"));
    for (path, status) in [
        ("/tg/healthz", 200),
        ("/tg/", 200),
        ("/tg", 200),
        ("/tg/.well-known/jwks.json", 200),
        ("/tg/demo-idp/.well-known/openid-configuration", 200),
        ("/healthz", 404),
        ("/", 404),
        ("/login", 404),
        ("/tgx/healthz", 404),
    ] {
        assert_eq!(app.get(path).await.status().as_u16(), status, "{path}");
    }
    // Links on the start page, the admin redirect, the login's return URL.
    let home = app.get("/tg/").await.text().await.unwrap();
    assert!(home.contains("href=\"&#x2f;tg/login\""), "{home}");
    let admin = app.get("/tg/admin/users?q=a").await;
    assert_eq!(admin.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        admin.headers()["location"],
        "/tg/login?rd=%2Ftg%2Fadmin%2Fusers%3Fq%3Da"
    );
    // A whole demo sign-in under the path: the IdP's issuer, the callback, the start page.
    let client = new_browser();
    let (hops, last) = crate::helpers::follow(&client, &tg("/login")).await;
    assert_eq!(last.status(), 200, "{hops:?}");
    let picker = last.text().await.unwrap();
    let mut form = crate::helpers::hidden_inputs(&picker);
    form.push(("email".into(), "alice@example.com".into()));
    let picked = client
        .post(tg("/demo-idp/authorize/pick"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = picked.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&tg("/callback/demo")), "{callback}");
    let (hops, last) = crate::helpers::follow(&client, &callback).await;
    assert_eq!(hops.last().unwrap().0.as_str(), tg("/"), "{hops:?}");
    assert!(last.text().await.unwrap().contains("alice@example.com"));
    let me = client.get(tg("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    // The assertion's issuer is the public URL, path included.
    let auth = client.get(tg("/auth")).send().await.unwrap();
    assert_eq!(auth.status(), 200);
    let token = auth.headers()["x-teamgate-assertion"].to_str().unwrap();
    assert_eq!(
        crate::forward_auth_support::claims_of(token)["iss"],
        json!(tg(""))
    );
}

#[tokio::test]
async fn a_public_url_path_that_is_not_plain_segments_is_a_config_error() {
    for bad in ["/a b", "/a//b", "/a;b", "/a:b", "/a%20b"] {
        let text = demo_config()
            .replace("{PUBLIC_URL}", &format!("http://127.0.0.1:8080{bad}"))
            .replace("{DB}", "x.db");
        let errors = teamgate::config::Config::parse(&text, std::path::Path::new("t.toml"))
            .err()
            .unwrap_or_else(|| panic!("{bad:?} was accepted"))
            .to_string();
        assert!(
            errors.contains("server.public_url") && errors.contains("plain segments"),
            "{bad:?}: {errors}"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxys_request_id_is_kept_and_anyone_elses_is_replaced() {
    let trusting = spawn_app(&demo_under(
        "public_url = \"{PUBLIC_URL}\"\ntrusted_proxies = [\"127.0.0.1\"]",
    ))
    .await;
    let plain = spawn_app(&demo_config()).await;
    let client = reqwest::Client::new();
    let id_of = |url: String, rid: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .get(url)
                .header("x-request-id", rid)
                .send()
                .await
                .unwrap();
            r.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    let nginx_style = "5f1c0e2b8a9d4c3e9b7a6f5e4d3c2b1a";
    assert_eq!(
        id_of(trusting.url("/healthz"), nginx_style).await,
        nginx_style
    );
    // Too long, or not plain: teamgate makes its own.
    for bad in [
        "a b",
        "<x>",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    ] {
        let got = id_of(trusting.url("/healthz"), bad).await;
        assert_ne!(got, bad);
        assert!(!got.is_empty());
    }
    // From a peer that is not a trusted proxy, the header is ignored.
    assert_ne!(id_of(plain.url("/healthz"), nginx_style).await, nginx_style);
    // The error page shows the id the proxy logged.
    let missing = client
        .get(trusting.url("/login?provider=nope"))
        .header("x-request-id", nginx_style)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains(nginx_style));
}

#[test]
fn a_w3c_traceparent_trace_id_is_logged_with_the_request() {
    // The real binary and its JSON log: every line of a request carries its span's fields.
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("teamgate.toml");
    let text = demo_config()
        .replace("{PUBLIC_URL}", "http://127.0.0.1:8080")
        .replace(
            "listen     = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1:0\"",
        )
        .replace("{DB}", "teamgate.db");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_logging(
        &config,
        &dir.path().join("teamgate.db").display().to_string(),
        "info,teamgate::web::request_id=debug",
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = get_with(&server, &format!("00-{trace}-00f067aa0ba902b7-01"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let rid = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id")
        .trim()
        .to_owned();
    let line = server.wait_for_log("response");
    let span = &line["span"];
    assert_eq!(span["trace_id"], trace, "{line}");
    assert_eq!(span["request_id"], rid.as_str(), "{line}");
    assert_eq!(span["path"], "/healthz", "{line}");
    // An invalid one is not taken: the request gets a trace id of its own.
    get_with(
        &server,
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    );
    let line = server.wait_for_log("response");
    let own = line["span"]["trace_id"].as_str().unwrap();
    assert_eq!(own.len(), 32);
    assert_ne!(own, "00000000000000000000000000000000");
}

/// `GET /healthz` with `traceparent`, over a plain socket; the whole answer.
fn get_with(server: &Server, traceparent: &str) -> String {
    use std::io::{Read, Write};
    let address = server.url("").trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\ntraceparent: {traceparent}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn teamgate_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn check_config_takes_the_file_as_config_like_every_command_or_as_an_argument() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        &["check-config", "--config", "config/demo.toml"][..],
        &["--config", "config/demo.toml", "check-config"],
        &["check-config", "config/demo.toml"],
    ] {
        let out = teamgate_in(repo, args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with("config/demo.toml: OK"),
            "{args:?}: {stdout}"
        );
    }
    // An invalid file named by --config fails with its errors, like the positional form.
    let dir = tempfile::TempDir::new().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\npublic_url = \"ftp://x\"\n").unwrap();
    let out = teamgate_in(repo, &["check-config", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.public_url"));
}

#[test]
fn the_database_path_resolves_beside_the_config_file_whatever_the_working_directory() {
    // The demo, as the README runs it from the repository root: data/demo.db of the repo.
    let demo = teamgate::config::Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/demo.toml"
    )))
    .unwrap();
    assert_eq!(
        demo.server.database.sqlite_path(),
        Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("data/demo.db")
                .as_path()
        )
    );
    // A PostgreSQL URL is not a path: taken as written, wherever the config file is.
    let url = "postgres://teamgate@127.0.0.1:5432/teamgate";
    let pg = teamgate::config::Config::parse(
        &demo_config()
            .replace("{PUBLIC_URL}", "http://127.0.0.1:8080")
            .replace("{DB}", url),
        std::path::Path::new("/etc/teamgate/teamgate.toml"),
    )
    .unwrap();
    assert!(pg.server.database.is_postgres());
    assert_eq!(pg.server.database.describe(), url);

    // A server started from another directory creates the database beside its config.
    let dir = tempfile::TempDir::new().unwrap();
    let elsewhere = tempfile::TempDir::new().unwrap();
    let config_dir = dir.path().join("etc");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("teamgate.toml");
    let text = demo_config()
        .replace("{PUBLIC_URL}", "http://127.0.0.1:8080")
        .replace(
            "listen     = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1:0\"",
        )
        .replace("\"{DB}\"", "\"state/teamgate.db\"");
    assert!(text.contains("listen = \"127.0.0.1:0\""), "{text}");
    std::fs::write(&config, text).unwrap();
    let expected = config_dir.join("state/teamgate.db");
    {
        let server = Server::start(&config, &expected.display().to_string());
        assert!(expected.exists(), "no database at {}", expected.display());
        drop(server);
    }
    assert!(!elsewhere.path().join("state").exists());
    // Commands find the same database from anywhere.
    let out = teamgate_in(
        elsewhere.path(),
        &[
            "audit",
            "--config",
            config.to_str().unwrap(),
            "--limit",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_systemd_unit_passes_systemd_analyze_verify_and_its_security_check() {
    let Some(analyze) = e2e::require(e2e::SYSTEMD_ANALYZE, "check config/teamgate.service") else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/teamgate.service"
    ))
    .unwrap();
    // verify checks that ExecStart's program exists: point it at the binary under test.
    assert!(unit.contains("ExecStart=/usr/local/bin/teamgate serve"));
    let unit = unit.replace("/usr/local/bin/teamgate", env!("CARGO_BIN_EXE_teamgate"));
    for key in [
        "User=teamgate",
        "ProtectSystem=strict",
        "StateDirectory=teamgate",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(key), "the unit lacks {key:?}");
    }
    let path = dir.path().join("teamgate.service");
    std::fs::write(&path, unit).unwrap();
    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{complaints}");
    assert!(
        complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // systemd's own exposure score: 0 (locked down) to 10; at most 2 ("OK").
    let security = Command::new(&analyze)
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}

/// SCIM users `prefix-N` created one after another until `stop`; returns the userNames
/// acknowledged (201), in order.
async fn create_users_until(
    client: reqwest::Client,
    url: String,
    token: String,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut done = Vec::new();
    let mut n = 0;
    // Bounded: at most 2,000 users per writer, whatever happens.
    while !stop.load(Ordering::SeqCst) && n < 2000 {
        let name = format!("{prefix}-{n}@example.com");
        let r = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(
                json!({ "schemas": [USER], "userName": name, "externalId": format!("{prefix}-{n}") })
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        done.push(name);
        n += 1;
    }
    done
}

async fn scim_user_names(client: &reqwest::Client, base: &str, token: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut start = 1;
    loop {
        let page: Value = client
            .get(format!(
                "{base}/scim/v2/entra/Users?startIndex={start}&count=500"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            return names;
        }
        start += resources.len();
        names.extend(
            resources
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_owned()),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_the_live_database_under_scim_writes_restores_into_a_server_with_the_same_users()
 {
    // The backup procedure of the README is SQLite's (PostgreSQL has its own tools).
    let config = scim_support::config();
    let live = spawn_app_with(&config, TestDb::sqlite).await;
    let token = scim_support::token(&live, "entra").await;
    let client = reqwest::Client::new();
    let users = live.url("/scim/v2/entra/Users");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(create_users_until(
                client.clone(),
                users.clone(),
                token.clone(),
                format!("w{w}"),
                stop.clone(),
            ))
        })
        .collect();
    // Let the load build up: wait for the first acknowledged writes to be visible.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while scim_user_names(&client, &live.address, &token).await.len() < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers do not write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = scim_user_names(&client, &live.address, &token).await;

    // The backups, while the writers go on, as the README says: `VACUUM INTO` (any SQLite
    // client) and the sqlite3 shell's `.backup`.
    let database = live
        .state
        .config
        .get()
        .server
        .database
        .sqlite_path()
        .unwrap()
        .to_owned();
    let dir = tempfile::TempDir::new().unwrap();
    let vacuum_copy = dir.path().join("vacuum.db");
    {
        let (database, copy) = (database.clone(), vacuum_copy.clone());
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open_with_flags(
                &database,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
                .unwrap();
        })
        .await
        .unwrap();
    }
    let shell_copy = dir.path().join("shell.db");
    let shell = e2e::require(e2e::SQLITE3, "back up with the sqlite3 shell's .backup");
    if let Some(sqlite3) = &shell {
        let out = Command::new(sqlite3)
            .arg(&database)
            .arg(format!(".backup '{}'", shell_copy.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = BTreeSet::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() > before.len());

    let mut copies = vec![vacuum_copy];
    if shell.is_some() {
        copies.push(shell_copy);
    }
    for copy in copies {
        let integrity: String = rusqlite::Connection::open(&copy)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{}", copy.display());
        // A new server on the copy: the same config, the copy as its database.
        let restored = spawn_app_with(
            &config.replace("{DB}", copy.to_str().unwrap()),
            TestDb::sqlite,
        )
        .await;
        // The SCIM token lives in the database too: the IdP keeps working after a restore.
        let served = scim_user_names(&client, &restored.address, &token).await;
        assert!(
            before.is_subset(&served),
            "{}: users acknowledged before the backup are missing",
            copy.display()
        );
        assert!(
            served.is_subset(&acknowledged),
            "{}: the copy holds users never acknowledged",
            copy.display()
        );
        // And each restored user is the same resource, readable by filter.
        let one = before.iter().next().unwrap();
        let found: Value = client
            .get(format!(
                "{}/scim/v2/entra/Users?filter=userName%20eq%20%22{one}%22",
                restored.address
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found["totalResults"], 1, "{found}");
    }
}
