//! Durability under a crash (issue 4; security case 86 and 87): a child `teamgate serve` under
//! SCIM write load is killed with SIGKILL. After a restart every request that had received a
//! 2xx is present, every multi-operation PATCH is wholly applied or wholly absent, replaying an
//! acknowledged creation is a 409, and the database passes `PRAGMA integrity_check`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::scim_support::{GROUP, USER};

/// How long the load runs before the kill.
const LOAD: Duration = Duration::from_millis(1500);
const GROUPS: usize = 6;
/// Members swapped in and out of each group by one PATCH of several operations.
const SET: usize = 4;

struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, port: u16, db: &str) -> PathBuf {
    let secret = dir.join("client-secret");
    std::fs::write(&secret, "crash-test-secret").unwrap();
    let text = format!(
        r#"[server]
public_url = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
database = "{db}"

[[provider]]
id = "entra"
kind = "entra"
issuer = "http://127.0.0.1:9/crash/v2.0"
client_id = "teamgate"
client_secret_file = "{secret}"
scim = {{ enabled = true }}

[[team]]
id = "crash-team"
roles = [{{ scope = "org/acme", role = "viewer" }}]
groups = [{{ provider = "entra", id = "gid-0" }}]
"#,
        db = db,
        secret = secret.display(),
    );
    let path = dir.join("teamgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(config: &Path, port: u16) -> Server {
    let mut server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_teamgate"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await
            && r.status() == 200
        {
            return server;
        }
        if Instant::now() >= deadline {
            server.kill();
            panic!("teamgate did not start");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Server {
    /// SIGKILL, then reap the child.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut rb = self
            .http
            .request(method, format!("{}/scim/v2/entra{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10));
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

fn swap_ops(from: &[String], to: &[String]) -> Value {
    let values = |ids: &[String]| {
        ids.iter()
            .map(|id| json!({"value": id}))
            .collect::<Vec<_>>()
    };
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Remove", "path": "members", "value": values(from)},
            {"op": "Add", "path": "members", "value": values(to)},
            {"op": "replace", "path": "displayName", "value": format!("set-{}", to[0])}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_87_sigkill_under_scim_write_load_loses_no_acknowledged_change_and_applies_no_request_by_half()
 {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The suite's backend: the SQLite file, or a database on PostgreSQL.
    let db = crate::support::postgres::TestDb::fresh(dir.path());
    let db_setting = match db.is_postgres() {
        true => db.setting.clone(),
        false => dir.path().join("crash.db").display().to_string(),
    };
    let config_path = write_config(dir.path(), port, &db_setting);
    let config = teamgate::config::Config::load(&config_path).unwrap();
    // What `teamgate scim-token create entra` does, through the same library function.
    let cli_config = config.clone();
    let out = tokio::task::spawn_blocking(move || {
        teamgate::admin::scim_tokens::run_cli(
            &cli_config,
            teamgate::admin::scim_tokens::TokenCommand::Create {
                provider: "entra".into(),
                valid_days: Some(1),
                note: None,
                tenant: None,
            },
        )
    })
    .await
    .unwrap()
    .unwrap();
    let token = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .unwrap()
        .trim()
        .to_owned();

    let mut server = start(&config_path, port).await;
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token,
    };
    // Groups whose member set is swapped between A and B by one three-operation PATCH.
    let mut sets: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for g in 0..GROUPS {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for k in 0..2 * SET {
            let (status, body) = client
                .send(
                    reqwest::Method::POST,
                    "/Users",
                    Some(json!({"schemas": [USER], "userName": format!("m{g}-{k}@x")})),
                )
                .await
                .unwrap();
            assert_eq!(status, 201);
            let id = body["id"].as_str().unwrap().to_owned();
            if k < SET { a.push(id) } else { b.push(id) }
        }
        let members: Vec<Value> = a.iter().map(|id| json!({"value": id})).collect();
        let (status, body) = client
            .send(
                reqwest::Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP], "displayName": format!("set-{}", a[0]), "externalId": format!("gid-{g}"), "members": members})),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        sets.push((body["id"].as_str().unwrap().to_owned(), a, b));
    }

    // The load: creators and swappers until the kill; every 2xx is written down.
    let acked_users: Arc<Mutex<Vec<String>>> = Arc::default();
    let acked_sets: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let (client, acked) = (client.clone(), acked_users.clone());
        tasks.spawn(async move {
            for n in 0.. {
                let name = format!("crash-{t}-{n}@x");
                match client
                    .send(
                        reqwest::Method::POST,
                        "/Users",
                        Some(json!({"schemas": [USER], "userName": name})),
                    )
                    .await
                {
                    Ok((201, _)) => acked.lock().unwrap().push(name),
                    Ok((status, body)) => panic!("a creation answered {status}: {body}"),
                    Err(_) => return,
                }
            }
        });
    }
    for (gid, a, b) in sets.clone() {
        let (client, acked) = (client.clone(), acked_sets.clone());
        tasks.spawn(async move {
            for n in 0usize.. {
                let (from, to) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
                match client
                    .send(
                        reqwest::Method::PATCH,
                        &format!("/Groups/{gid}"),
                        Some(swap_ops(from, to)),
                    )
                    .await
                {
                    Ok((204, _)) => {
                        acked.lock().unwrap().insert(gid.clone(), n + 1);
                    }
                    Ok((status, body)) => panic!("a swap answered {status}: {body}"),
                    Err(_) => return,
                }
            }
        });
    }
    tokio::time::sleep(LOAD).await;
    server.kill();
    while tasks.join_next().await.is_some() {}
    let acked_users = acked_users.lock().unwrap().clone();
    let acked_sets = acked_sets.lock().unwrap().clone();
    assert!(
        acked_users.len() > 50,
        "the load was too light to mean anything: {}",
        acked_users.len()
    );
    eprintln!(
        "killed after {} acknowledged creations and {} acknowledged swaps",
        acked_users.len(),
        acked_sets.values().sum::<usize>()
    );

    // Restart on the same database.
    let mut server = start(&config_path, port).await;
    let client = Client {
        base: server.base.clone(),
        ..client
    };
    for name in &acked_users {
        let (status, body) = client
            .send(
                reqwest::Method::GET,
                &format!(
                    "/Users?filter={}",
                    urlencode(&format!("userName eq \"{name}\""))
                ),
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            body["totalResults"], 1,
            "an acknowledged user is missing after the crash: {name}"
        );
    }
    for (gid, a, b) in &sets {
        let (status, body) = client
            .send(reqwest::Method::GET, &format!("/Groups/{gid}"), None)
            .await
            .unwrap();
        assert_eq!(status, 200);
        let members: BTreeSet<String> = body["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|v| v["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let (a_set, b_set): (BTreeSet<String>, BTreeSet<String>) =
            (a.iter().cloned().collect(), b.iter().cloned().collect());
        assert!(
            members == a_set || members == b_set,
            "group {gid} holds a mix after the crash: {members:?}"
        );
        // The displayName changed in the same PATCH: it names the set that is in.
        let first = if members == a_set { &a[0] } else { &b[0] };
        assert_eq!(
            body["displayName"],
            json!(format!("set-{first}")),
            "a PATCH was applied by half"
        );
        // At least every acknowledged swap is there (one more may have committed unanswered).
        let done = acked_sets.get(gid).copied().unwrap_or(0);
        let expected_if_exact = if done % 2 == 0 { &a_set } else { &b_set };
        let one_more = if done % 2 == 0 { &b_set } else { &a_set };
        assert!(members == *expected_if_exact || members == *one_more);
    }
    // Replaying an acknowledged creation is refused, not duplicated (security case 86).
    let (status, body) = client
        .send(
            reqwest::Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": acked_users[0]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 409, "{body}");
    server.kill();

    // The file itself (SQLite): intact, no dangling references; PostgreSQL enforces its
    // foreign keys at every commit. Then on both: memberships exactly what the stored inputs
    // say (the reconcile committed with each change, not after).
    if let Some(file) = config.server.database.sqlite_path() {
        let conn = rusqlite::Connection::open(file).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let dangling: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(dangling, 0);
    }
    let store = teamgate::store::Store::open_database(&config.server.database)
        .await
        .unwrap();
    let config = Arc::new(config);
    let plans = store
        .write(move |tx| {
            let trigger = teamgate::store::audit::Trigger::new(
                teamgate::store::audit::TriggerKind::Cli,
                None,
                None,
            );
            let mut changed = 0;
            for id in tx.user_ids()? {
                if !teamgate::membership::reconcile::reconcile_user(tx, id, &config, &trigger, "t")?
                    .is_empty()
                {
                    changed += 1;
                }
            }
            Ok::<_, teamgate::store::StoreError>(changed)
        })
        .await
        .unwrap();
    assert_eq!(plans, 0, "memberships disagree with the stored SCIM state");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
