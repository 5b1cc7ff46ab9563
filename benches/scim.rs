//! The SCIM provisioning benchmark (issue 4, DESIGN.md "Performance goals"). Not a timed test:
//! run it with
//!
//! ```text
//! cargo bench --bench scim                  # 100,000 users, 1,000 groups, 32 connections
//! cargo bench --bench scim -- 20000 200 16  # users, groups, connections
//! cargo bench --bench scim -- 20000 200 16 --backend postgres  # SQLite then PostgreSQL
//! ```
//!
//! teamgate runs as a child process (`teamgate serve`, release build, synchronous=FULL with
//! group commit: every 2xx is durable). A one-thread client on loopback drives keep-alive
//! HTTP/1.1 connections through the phases an IdP's first sync goes through:
//!
//! 1. create the users (POST /Users, Entra-shaped bodies);
//! 2. create the groups, 10 members each (POST /Groups);
//! 3. grow one group to every user (PATCH add, 1,000 members per request);
//! 4. one-member PATCHes (remove, then add back) on that big group and on a 10-member group,
//!    both mapped to a team, so each runs the member's reconcile: the costs should match;
//! 5. `GET /Groups/{id}?excludedAttributes=members` on both groups: the same, since members
//!    are never read.
//!
//! Reported per phase: requests, requests/s, p50 and p99 latency as the client sees it; then
//! the server's peak and current resident memory (VmHWM, VmRSS from /proc/PID/status).

#![allow(
    clippy::expect_used,
    reason = "a benchmark: a failed step ends it with the reason"
)]

#[path = "support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No phase runs longer than this: loops are bounded in time as well as in count.
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// One-member PATCHes per group in phase 4 (half removes, half adds).
const SINGLE_OPS: usize = 2_000;
/// GETs per group in phase 5.
const GETS: usize = 1_000;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let users: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let groups: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let connections: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    assert!(users >= groups * 10, "each group takes 10 distinct users");
    for backend in support::backends() {
        ON_POSTGRES.store(backend == support::Backend::Postgres, Ordering::Relaxed);
        println!("\n=== {} ===", backend.name());
        run_on(backend, users, groups, connections);
    }
    TABLE.print("requests/s");
}

/// The rates of every phase, per backend, for the side-by-side table.
static TABLE: support::SideBySide = support::SideBySide::new();
/// Whether the run now printing is the PostgreSQL one.
static ON_POSTGRES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn run_on(backend: support::Backend, users: usize, groups: usize, connections: usize) {
    let dir = tempfile::TempDir::new().expect("a temp dir");
    let db = support::BenchDb::new(backend, dir.path(), "scim");
    let port = support::free_port();
    let config_path = dir.path().join("bench.toml");
    write_config(&config_path, port, &db.setting);
    let token = create_token(&config_path);

    let mut server = Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("teamgate starts");
    let pid = server.id();
    let result = std::panic::catch_unwind(|| run(port, pid, &token, users, groups, connections));
    support::stop(&mut server);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A token made through the library, as `teamgate scim-token create entra` would.
fn create_token(config_path: &Path) -> String {
    let config = teamgate::config::Config::load(config_path).expect("the bench config is valid");
    let out = teamgate::admin::scim_tokens::run_cli(
        &config,
        teamgate::admin::scim_tokens::TokenCommand::Create {
            provider: "entra".into(),
            valid_days: Some(1),
            note: Some("bench".into()),
            tenant: None,
        },
    )
    .expect("a token");
    out.lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().to_owned())
        .expect("the token line")
}

fn run(port: u16, pid: u32, token: &str, users: usize, groups: usize, connections: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        wait_ready(port).await;
        let http = Http {
            port,
            token: token.to_owned(),
        };
        println!(
            "teamgate SCIM benchmark: {users} users, {groups} groups, {connections} keep-alive connections, client on 1 thread, {} CPUs",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
        println!("{:<34} {:>9} {:>11} {:>9} {:>9}", "phase", "requests", "requests/s", "p50 ms", "p99 ms");

        // 1. Users.
        let (round, ids) = http
            .many(users, connections, |i| {
                // Entra object ids are random GUIDs and user names arrive in no particular
                // order: both land on random index pages, as they would in production.
                let (oid, name) = (guid(i), format!("{:08x}.user{i}@bench.example", mix(i as u64 ^ 0x5eed) as u32));
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"externalId":"{oid}","userName":"{name}","active":true,"displayName":"User {i}","name":{{"givenName":"User","familyName":"N{i}"}},"emails":[{{"primary":true,"type":"work","value":"{name}"}}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{{"employeeNumber":"{i}","department":"Bench"}}}}"#
                );
                ("POST", "/Users".to_owned(), body, 201)
            })
            .await;
        round.print("POST /Users (create user)");
        let ids = Arc::new(ids);

        // 2. Groups of 10 members.
        let members = |from: usize, n: usize, ids: &[String]| {
            ids[from..from + n]
                .iter()
                .map(|id| format!(r#"{{"value":"{id}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ids2 = ids.clone();
        let (round, group_ids) = http
            .many(groups, connections, move |g| {
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"{}","displayName":"Group {g}","members":[{}]}}"#,
                    if g < 2 { format!("gid-{g}") } else { guid(1_000_000 + g) },
                    members(g * 10, 10, &ids2)
                );
                ("POST", "/Groups".to_owned(), body, 201)
            })
            .await;
        round.print("POST /Groups (10 members each)");

        // 3. One group with every user.
        let (_, big) = http
            .many(1, 1, |_| {
                let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"gid-big","displayName":"Everybody","members":[]}"#;
                ("POST", "/Groups".to_owned(), body.to_owned(), 201)
            })
            .await;
        let big = big[0].clone();
        let batch = 1_000;
        let batches = users.div_ceil(batch);
        let ids3 = ids.clone();
        let big3 = big.clone();
        // One connection: PATCHes of one group queue behind its row lock whatever the client
        // does, and an IdP sends them one after another (queued ones would only measure the
        // wait, and on PostgreSQL outwait the 5 s lock_timeout into a 503).
        let (round, _) = http
            .many(batches, 1, move |b| {
                let from = b * batch;
                let n = batch.min(users - from);
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Add","path":"members","value":[{}]}}]}}"#,
                    members(from, n, &ids3)
                );
                ("PATCH", format!("/Groups/{big3}"), body, 204)
            })
            .await;
        round.print(&format!("PATCH add {batch} members (big group)"));

        // 4. One member at a time: the big group against group 0, same members (0..9 are in both).
        let small = group_ids[0].clone();
        for (label, group) in [("10-member group", &small), (format!("{users}-member group").as_str(), &big)] {
            let ids4 = ids.clone();
            let group = group.clone();
            let (round, _) = http
                .many(SINGLE_OPS, 1, move |k| {
                    // Alternate remove and add back of one of members 0..9.
                    let id = &ids4[(k / 2) % 10];
                    let op = if k % 2 == 0 {
                        format!(r#"{{"op":"remove","path":"members[value eq \"{id}\"]"}}"#)
                    } else {
                        format!(r#"{{"op":"add","path":"members","value":[{{"value":"{id}"}}]}}"#)
                    };
                    let body = format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{op}]}}"#);
                    ("PATCH", format!("/Groups/{group}"), body, 204)
                })
                .await;
            round.print(&format!("PATCH one member, {label}"));
        }

        // 5. Reading a group without its members.
        for (label, group) in [("10-member group", &small), (format!("{users}-member group").as_str(), &big)] {
            let group = group.clone();
            let (round, _) = http
                .many(GETS, 1, move |_| {
                    ("GET", format!("/Groups/{group}?excludedAttributes=members"), String::new(), 200)
                })
                .await;
            round.print(&format!("GET excl. members, {label}"));
        }
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    for key in ["VmHWM", "VmRSS"] {
        if let Some(line) = status.lines().find(|l| l.starts_with(key)) {
            println!(
                "server {}",
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }
}

struct Http {
    port: u16,
    token: String,
}

struct Round {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Round {
    fn print(&self, name: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let pct = |p: f64| support::percentile_ms(&sorted, p);
        let backend = if ON_POSTGRES.load(Ordering::Relaxed) {
            support::Backend::Postgres
        } else {
            support::Backend::Sqlite
        };
        TABLE.record(
            name,
            backend,
            sorted.len() as f64 / self.elapsed.as_secs_f64(),
        );
        println!(
            "{:<34} {:>9} {:>11.0} {:>9.3} {:>9.3}",
            name,
            sorted.len(),
            sorted.len() as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
        );
    }
}

type Make = dyn Fn(usize) -> (&'static str, String, String, u16) + Send + Sync;

impl Http {
    /// Send requests `0..total` (built by `make`: method, path, body, expected status) over
    /// `connections` keep-alive connections; returns the latencies and each answer's `id`.
    async fn many(
        &self,
        total: usize,
        connections: usize,
        make: impl Fn(usize) -> (&'static str, String, String, u16) + Send + Sync + 'static,
    ) -> (Round, Vec<String>) {
        let make: Arc<Make> = Arc::new(make);
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + PHASE_LIMIT;
        let mut tasks = Vec::new();
        for _ in 0..connections.min(total) {
            let (make, next, token, port) =
                (make.clone(), next.clone(), self.token.clone(), self.port);
            tasks.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() >= deadline {
                        break;
                    }
                    let (method, path, body, want) = make(i);
                    let request = format!(
                        "{method} /scim/v2/entra{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let sent = Instant::now();
                    stream.write_all(request.as_bytes()).await.expect("write");
                    let (status, body) = read_response(&mut stream, &mut buf).await;
                    let latency = sent.elapsed();
                    assert_eq!(status, want, "{method} {path}: {}", String::from_utf8_lossy(&body));
                    out.push((i, latency, id_of(&body)));
                }
                out
            }));
        }
        let mut results = Vec::with_capacity(total);
        for task in tasks {
            results.extend(task.await.expect("a client task"));
        }
        let elapsed = start.elapsed();
        assert_eq!(results.len(), total, "the phase hit its time limit");
        results.sort_by_key(|(i, _, _)| *i);
        let latencies = results.iter().map(|(_, l, _)| *l).collect();
        let ids = results.into_iter().map(|(_, _, id)| id).collect();
        (Round { latencies, elapsed }, ids)
    }
}

/// splitmix64: a fixed, well-spread function of `x` (no RNG state to share between tasks).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A GUID-shaped id for `i`, as Entra's object ids look.
fn guid(i: usize) -> String {
    let (a, b) = (mix(i as u64), mix(!(i as u64)));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// The `"id"` of a JSON answer (the first one: the resource's own id comes first).
fn id_of(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap_or_default();
    text.split_once("\"id\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_default()
}

/// Read one HTTP/1.1 response with a Content-Length body (what teamgate sends).
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = support::find(buf, b"\r\n\r\n") else {
            continue;
        };
        let (status, length) = support::status_and_length(&buf[..end]);
        let total = end + 4 + length;
        while buf.len() < total {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(buf.len(), total, "one response at a time");
        return (status, buf[end + 4..].to_vec());
    }
}

fn write_config(path: &Path, port: u16, db: &str) {
    let secret = path.with_file_name("client-secret");
    std::fs::write(&secret, "bench-secret").expect("the secret file");
    let text = format!(
        r#"[server]
public_url = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
database = "{db}"

[[provider]]
id = "entra"
kind = "entra"
issuer = "http://127.0.0.1:9/bench/v2.0"
client_id = "teamgate"
client_secret_file = "{secret}"
scim = {{ enabled = true }}

[[team]]
id = "all-staff"
roles = [{{ scope = "org/acme", role = "viewer" }}]
groups = [{{ provider = "entra", id = "gid-big" }}]

[[team]]
id = "team-zero"
roles = [{{ scope = "org/acme/space/zero", role = "editor" }}]
groups = [{{ provider = "entra", id = "gid-0" }}]

[[team]]
id = "team-one"
roles = [{{ scope = "org/acme/space/one", role = "editor" }}]
groups = [{{ provider = "entra", id = "gid-1" }}]

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]

[defaults]
teams_without_groups = ["everyone"]
"#,
        db = db,
        secret = secret.display(),
    );
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("the config is written");
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("teamgate did not answer /healthz within 20 s");
}
