//! Several replicas on one PostgreSQL database (issue 13): real `teamgate serve` processes
//! behind a real nginx `upstream` (the shipped `config/nginx-path.conf`: teamgate under
//! `/teamgate/` of the app's site, its upstream holding every replica), the test IdP signing
//! users in, a small echo app protected by `auth_request`. Skipped with a printed reason when PostgreSQL or nginx is missing (and
//! Chromium for the browser test), unless `TEAMGATE_REQUIRE_E2E=1`.
//!
//! - a Chromium login lands on one replica; every later request, whichever replica serves it,
//!   is signed in;
//! - a SCIM deprovisioning on one replica refuses `/auth` on the others (the delay measured);
//! - a SCIM rename on one replica reaches the others' identity headers at once;
//! - a reload on one replica changes every replica;
//! - `kill -9` of one replica under login, SCIM and `/auth` load loses nothing acknowledged
//!   and the others keep answering;
//! - a PostgreSQL restart makes replicas unready, then ready again, without a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::admin_support::Server;
use crate::forward_auth_support::{Agent, PROVIDER, config_with, user};
use crate::helpers::{TestDb, follow};
use crate::scim_support::{PATCH_OP, USER};
use crate::support::browser::Browser;
use crate::support::nginx::Nginx;
use crate::support::{e2e, postgres, serve};
use crate::test_idp::{LoginSpec, TestIdp};

/// The secret key every replica shares (refresh tokens are sealed with it).
const SECRET_KEY: &str = "replica-test-secret-key-0123456789-abcdefghij";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where teamgate lives on the site (the path of public_url in config/nginx-path.conf).
const BASE: &str = "/teamgate";

/// The shipped config/nginx-path.conf in front of `ports` (round robin: its `upstream
/// teamgate` lists every replica, as README "Several replicas" says), teamgate's routes under
/// [`BASE`] proxied to any replica and the echo app at `/` behind `auth_request`. Changed
/// only in its ports and host name, and plain http (no certificates in a test).
fn nginx_config(ports: &[u16], app: SocketAddr) -> String {
    let file = "config/nginx-path.conf";
    let example =
        std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut config: String = example
        .lines()
        .filter(|l| !l.trim_start().starts_with("ssl_certificate"))
        .map(|l| format!("{l}\n"))
        .collect();
    let servers: String = ports
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n    "))
        .collect();
    for (from, to) in [
        ("listen 443 ssl;", "listen {LISTEN};".to_owned()),
        ("server 127.0.0.1:8080;", servers),
        ("server 127.0.0.1:3000;", format!("server {app};")),
        (
            "server_name app.example.com;",
            "server_name 127.0.0.1;".to_owned(),
        ),
    ] {
        assert!(config.contains(from), "{file} has no `{from}`");
        config = config.replacen(from, &to, 1);
    }
    config
}

struct Cluster {
    idp: TestIdp,
    nginx: Option<Nginx>,
    dir: TempDir,
    /// Dropped last: the database outlives the replicas using it.
    _db: TestDb,
    ports: Vec<u16>,
    configs: Vec<PathBuf>,
    replicas: Vec<Option<Server>>,
    /// A SCIM bearer token of the provider.
    token: String,
}

impl Cluster {
    /// `n` replicas on a fresh database of the test server.
    async fn start(n: usize) -> Cluster {
        Self::start_on(n, TestDb::postgres()).await
    }

    async fn start_on(n: usize, db: TestDb) -> Cluster {
        let idp = TestIdp::start().await;
        let dir = TempDir::new().unwrap();
        let app = serve(Router::new().fallback(|| async { "echo" })).await;
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let config = nginx_config(&ports, app);
        let nginx = tokio::task::spawn_blocking(move || Nginx::start(&config))
            .await
            .unwrap();
        let secret = dir.path().join("client-secret");
        std::fs::write(&secret, idp.client_secret()).unwrap();
        std::fs::write(dir.path().join("secret-key"), SECRET_KEY).unwrap();
        // One file for every replica, as on several hosts; each listens on its own port. The
        // `/login` limit is off, as in every test (all clients are 127.0.0.1 here).
        let public = format!("{}{BASE}", nginx.url());
        let text = crate::helpers::without_login_limit(
            &config_with(
                &idp,
                &secret.display().to_string(),
                "secret_key_file = \"secret-key\"\ntrusted_proxies = [\"127.0.0.1\"]",
                "scim = { enabled = true }",
                "",
            )
            .replace("{PUBLIC_URL}", &public)
            .replace("{DB}", &db.setting),
        );
        // Registered at the IdP, as an administrator would.
        idp.register_redirect_uri(&format!("{public}/callback/{PROVIDER}"));
        let mut configs = Vec::new();
        for i in 0..ports.len() {
            let path = dir.path().join(format!("replica-{i}.toml"));
            std::fs::write(&path, &text).unwrap();
            configs.push(path);
        }
        // What `teamgate scim-token create` does (it also creates the schema).
        let config = teamgate::config::Config::load(&configs[0]).unwrap();
        let out = tokio::task::spawn_blocking(move || {
            teamgate::admin::scim_tokens::run_cli(
                &config,
                teamgate::admin::scim_tokens::TokenCommand::Create {
                    provider: PROVIDER.into(),
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
        // Started together: migrations and the config sync run once, under their locks.
        let starts: Vec<_> = configs
            .iter()
            .zip(&ports)
            .map(|(c, port)| {
                let (c, db) = (c.clone(), db.setting.clone());
                let listen = format!("127.0.0.1:{port}");
                std::thread::spawn(move || Server::start_with(&c, &db, &["--listen", &listen]))
            })
            .collect();
        let replicas = starts
            .into_iter()
            .map(|s| Some(s.join().unwrap()))
            .collect();
        Cluster {
            idp,
            nginx: Some(nginx),
            dir,
            _db: db,
            ports,
            configs,
            replicas,
            token,
        }
    }

    fn nginx(&self) -> &Nginx {
        self.nginx.as_ref().unwrap()
    }

    /// `http://127.0.0.1:PORT/teamgate` of replica `i` itself (every route of teamgate is
    /// under the path of public_url).
    fn direct(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}{BASE}", self.ports[i])
    }

    /// teamgate's public URL, through nginx (any replica).
    fn public(&self) -> String {
        self.nginx().url_for(BASE)
    }

    /// Sign `agent` in through nginx (so whichever replica nginx picks) as `spec`.
    async fn sign_in(&self, agent: &Agent, spec: LoginSpec) {
        self.idp.set_next_login(spec);
        let (hops, last) = follow(
            &agent.client,
            &format!("{}/login?provider={PROVIDER}", self.public()),
        )
        .await;
        assert!(last.status().is_success(), "login failed: {hops:?}");
    }

    /// `/auth` answered by replica `i` for `agent`'s session.
    async fn auth_at(&self, agent: &Agent, i: usize) -> u16 {
        agent
            .client
            .get(format!("{}/auth", self.direct(i)))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    async fn scim(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = reqwest::Client::new()
            .request(method, format!("{base}/scim/v2/{PROVIDER}{path}"))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10));
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        match rb.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    async fn readyz(&self, i: usize) -> (u16, Value) {
        match reqwest::Client::new()
            .get(format!("{}/readyz", self.direct(i)))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Replicas first (they hold connections to the database dropped with `db`).
        self.replicas.clear();
        drop(self.nginx.take());
    }
}

/// Whether this test can run here (PostgreSQL and nginx, and Chromium when `browser`).
fn can_run(why: &str, browser: bool) -> bool {
    let pg = postgres::require(why);
    let nginx = e2e::require_nginx(why);
    let chromium = !browser || e2e::require_browser(why);
    pg && nginx && chromium
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_login_through_one_replica_is_signed_in_on_every_replica() {
    if !can_run(
        "sign in through one replica and be signed in on the others",
        true,
    ) {
        return;
    }
    let cluster = Cluster::start(3).await;
    cluster
        .idp
        .set_next_login(user("u-ada", "ada@example.com", &["g-eng"]));
    let browser = Browser::start().await;
    // The protected app: nginx asks some replica, which sends the browser to sign in.
    browser.goto(&cluster.nginx().url_for("/whoami")).await;
    browser
        .wait_for_url(|u| u.ends_with("/whoami"), Duration::from_secs(20))
        .await;
    assert!(
        browser.page_source().await.contains("echo"),
        "{}",
        browser.page_source().await
    );
    let cookie = browser.cookie("teamgate").await.expect("a session cookie");
    let client = reqwest::Client::new();
    // Every replica, asked directly, knows the session: it lives in the database.
    for i in 0..cluster.ports.len() {
        let me = client
            .get(format!("{}/api/v1/me", cluster.direct(i)))
            .header("cookie", format!("teamgate={}", cookie.value))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "replica {i} does not know the session");
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["email"], "ada@example.com");
    }
    // And through nginx, round robin over the replicas, twelve pages in a row.
    for n in 0..12 {
        browser
            .goto(&cluster.nginx().url_for(&format!("/page-{n}")))
            .await;
        assert!(
            browser.page_source().await.contains("echo"),
            "request {n} was not signed in"
        );
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_deprovisioning_on_one_replica_refuses_auth_on_the_others_and_the_delay_is_measured()
{
    if !can_run(
        "measure how fast a deprovisioning reaches the other replicas",
        false,
    ) {
        return;
    }
    let cluster = Cluster::start(3).await;
    let mut delays = Vec::new();
    let mut refused_on_next_request = 0;
    for k in 0..10 {
        let agent = Agent::new();
        let sub = format!("u-dep-{k}");
        cluster
            .sign_in(
                &agent,
                user(&sub, &format!("dep{k}@example.com"), &["g-eng"]),
            )
            .await;
        let (status, body) = cluster
            .scim(
                &cluster.direct(0),
                reqwest::Method::POST,
                "/Users",
                Some(json!({"schemas": [USER], "userName": format!("dep{k}@example.com"), "externalId": sub})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        // Replicas 1 and 2 have the session and user cached.
        for i in [1, 2] {
            for _ in 0..3 {
                assert_eq!(cluster.auth_at(&agent, i).await, 200);
            }
        }
        let (status, body) = cluster
            .scim(
                &cluster.direct(0),
                reqwest::Method::PATCH,
                &format!("/Users/{id}"),
                Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let acked = Instant::now();
        let mut first = true;
        for i in [1, 2] {
            loop {
                let s = cluster.auth_at(&agent, i).await;
                if s == 401 {
                    if first {
                        refused_on_next_request += 1;
                    }
                    delays.push(acked.elapsed());
                    break;
                }
                assert_eq!(s, 200);
                first = false;
                assert!(
                    acked.elapsed() < Duration::from_secs(3),
                    "replica {i} still lets the deprovisioned user in"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            first = true;
        }
    }
    delays.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = ms(&delays[delays.len() / 2]);
    let max = ms(delays.last().unwrap());
    eprintln!(
        "deprovisioning propagation to other replicas (after the 2xx): median {median:.1} ms, max {max:.1} ms, refused on the very next request {refused_on_next_request}/{} ({} samples)",
        delays.len(),
        delays.len()
    );
    assert!(max < 1000.0, "max {max} ms");
}

/// Security case J5 across replicas: `/auth` answers from a per-replica cache keyed by the
/// user's profile, and the user row is cached per replica too; a SCIM rename through one
/// replica must reach the others' identity headers at once, not after the assertion's
/// half-life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_profile_change_on_one_replica_reaches_auth_on_the_others_at_once() {
    if !can_run(
        "rename a user through one replica and read the name on the others",
        false,
    ) {
        return;
    }
    let cluster = Cluster::start(3).await;
    let agent = Agent::new();
    cluster
        .sign_in(&agent, user("u-prof", "prof@example.com", &["g-eng"]))
        .await;
    let (status, body) = cluster
        .scim(
            &cluster.direct(0),
            reqwest::Method::POST,
            "/Users",
            Some(
                json!({"schemas": [USER], "userName": "prof@example.com", "externalId": "u-prof"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let name_at = |i: usize| {
        let url = format!("{}/auth", cluster.direct(i));
        let client = agent.client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()
                .get("x-teamgate-name")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        }
    };
    // Replicas 1 and 2 have the answer cached.
    let before = name_at(1).await;
    for i in [1, 2] {
        for _ in 0..3 {
            assert_eq!(name_at(i).await, before);
        }
    }
    let (status, body) = cluster
        .scim(
            &cluster.direct(0),
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Prof Renamed"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let acked = Instant::now();
    let mut next_request = 0;
    for i in [1, 2] {
        let mut first = true;
        loop {
            let name = name_at(i).await;
            if name == "Prof Renamed" {
                next_request += usize::from(first);
                break;
            }
            assert_eq!(name, before);
            first = false;
            // The caches were filled just before the rename: without the notification they
            // would answer with the old name for up to their two-second lifetime.
            assert!(
                acked.elapsed() < Duration::from_millis(200),
                "replica {i} still answers with the old name"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    eprintln!(
        "a SCIM rename reached /auth on both other replicas {:?} after the 2xx ({next_request}/2 on the very next request)",
        acked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_one_replica_changes_every_replica_and_the_others_say_their_file_differs() {
    if !can_run("reload the config of several replicas at once", false) {
        return;
    }
    let cluster = Cluster::start(3).await;
    for i in 0..3 {
        let (status, ready) = cluster.readyz(i).await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["config"]["version"], 1, "{ready}");
        assert_eq!(ready["config"]["file"], "matches", "{ready}");
    }
    // A new team in replica 0's file, applied by SIGHUP to that replica only.
    let path = &cluster.configs[0];
    let text = std::fs::read_to_string(path).unwrap()
        + "\n[[team]]\nid = \"auditors\"\nname = \"Auditors\"\nroles = [{ scope = \"org/acme\", role = \"viewer\" }]\ngroups = [{ provider = \"idp\", id = \"g-audit\" }]\n";
    std::fs::write(path, text).unwrap();
    let sent = Instant::now();
    cluster.replicas[0]
        .as_ref()
        .unwrap()
        .signal(rustix::process::Signal::HUP);
    for i in 0..3 {
        loop {
            let (_, ready) = cluster.readyz(i).await;
            if ready["config"]["version"] == 2 {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "replica {i} did not switch: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let switched = sent.elapsed();
    eprintln!("every replica on the reloaded config {switched:?} after the SIGHUP");
    assert!(switched < Duration::from_secs(3));
    // Replicas 1 and 2 serve the applied version, and say that their own file differs.
    for i in [1, 2] {
        let (_, ready) = cluster.readyz(i).await;
        assert_eq!(ready["config"]["file"], "differs", "{ready}");
    }
    let (_, ready) = cluster.readyz(0).await;
    assert_eq!(ready["config"]["file"], "matches", "{ready}");
    // The new team is in force everywhere: a login through any replica gets it.
    for i in 0..3 {
        let agent = Agent::new();
        cluster.idp.set_next_login(user(
            &format!("u-aud-{i}"),
            &format!("aud{i}@example.com"),
            &["g-audit"],
        ));
        let (hops, last) = follow(
            &agent.client,
            &format!("{}/login?provider={PROVIDER}", cluster.direct(i)),
        )
        .await;
        assert!(last.status().is_success(), "{hops:?}");
        let me: Value = agent
            .client
            .get(format!("{}/api/v1/me", cluster.direct(i)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let teams: Vec<&str> = me["teams"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert!(teams.contains(&"auditors"), "replica {i}: {me}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_under_load_loses_nothing_acknowledged_and_the_others_keep_answering()
{
    if !can_run("kill a replica under load", false) {
        return;
    }
    let mut cluster = Cluster::start(3).await;
    // `site`: the protected app; `base`: teamgate through nginx.
    let (site, base, token, ports) = (
        cluster.nginx().url(),
        cluster.public(),
        cluster.token.clone(),
        cluster.ports.clone(),
    );
    // A signed-in agent for the /auth load.
    let agent = Agent::new();
    cluster
        .sign_in(&agent, user("u-load", "load@example.com", &["g-eng"]))
        .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let auth_results: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..4 {
        let (base, token, acked, stop) = (base.clone(), token.clone(), acked.clone(), stop.clone());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("load-{t}-{n}@x");
                n += 1;
                let r = http
                    .post(format!("{base}/scim/v2/{PROVIDER}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(json!({"schemas": [USER], "userName": name}).to_string())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status().as_u16() == 201
                {
                    acked.lock().unwrap().push(name);
                }
            }
        });
    }
    for _ in 0..3 {
        let (site, agent, results, stop) = (
            site.clone(),
            agent.clone(),
            auth_results.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = agent
                    .client
                    .get(format!("{site}/anything"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                results.lock().unwrap().push((Instant::now(), s));
            }
        });
    }
    // Logins, one after another (the test IdP answers one login at a time).
    let logins: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (base, logins, stop) = (base.clone(), logins.clone(), stop.clone());
        let idp = cluster.idp.clone();
        tasks.spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sub = format!("u-login-{n}");
                n += 1;
                idp.set_next_login(user(&sub, &format!("{sub}@example.com"), &["g-eng"]));
                let agent = Agent::new();
                let done = crate::helpers::follow_lenient(
                    &agent.client,
                    &format!("{base}/login?provider={PROVIDER}"),
                )
                .await;
                if done == Some(200) {
                    logins.lock().unwrap().push(sub);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    // SIGKILL: no shutdown, no drain.
    let mut victim = cluster.replicas[0].take().unwrap();
    let _ = victim.child.kill();
    let _ = victim.child.wait();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // The survivors answer, directly.
    for port in &ports[1..] {
        let r = reqwest::get(format!("http://127.0.0.1:{port}{BASE}/healthz"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // /auth through nginx kept answering: after the kill, failures only for the killed
    // replica's in-flight requests, then nginx takes it out of the upstream.
    let results = auth_results.lock().unwrap().clone();
    let after: Vec<u16> = results
        .iter()
        .filter(|(at, _)| *at > killed_at + Duration::from_millis(500))
        .map(|(_, s)| *s)
        .collect();
    assert!(after.len() > 50, "too few /auth requests after the kill");
    assert!(
        after.iter().all(|s| *s == 200),
        "/auth failed after the kill: {:?}",
        after.iter().filter(|s| **s != 200).count()
    );
    let total = results.len();
    let failed = results.iter().filter(|(_, s)| *s != 200).count();
    eprintln!(
        "/auth through nginx: {total} requests, {failed} not 200 (the killed replica's in-flight ones)"
    );
    // Every acknowledged SCIM creation is there, read through a survivor.
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "too little SCIM load: {}", acked.len());
    let c = &cluster;
    for name in &acked {
        let filter =
            url::form_urlencoded::byte_serialize(format!("userName eq \"{name}\"").as_bytes())
                .collect::<String>();
        let (status, body) = c
            .scim(
                &c.direct(1),
                reqwest::Method::GET,
                &format!("/Users?filter={filter}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["totalResults"], 1, "acknowledged {name} is missing");
    }
    eprintln!(
        "{} acknowledged SCIM creations, all present after the kill",
        acked.len()
    );
    // Every login that ended signed in left its user.
    let logins = logins.lock().unwrap().clone();
    assert!(!logins.is_empty(), "no login went through");
    let conninfo = c._db.pg_conninfo().unwrap();
    let subjects: std::collections::BTreeSet<String> =
        postgres::rows_on(&conninfo, "SELECT subject FROM users")
            .unwrap()
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
    for sub in &logins {
        assert!(
            subjects.contains(sub),
            "the signed-in {sub} has no user row"
        );
    }
    eprintln!("{} completed logins, every user stored", logins.len());
    // The killed replica's session was in the database: still signed in through nginx.
    let r = agent.get(&format!("{site}/after-kill")).await;
    assert_eq!(r.status(), 200);
}

/// A private PostgreSQL instance in a temp dir (initdb, pg_ctl), so a test can restart it.
struct PrivatePg {
    dir: TempDir,
    port: u16,
    bin: PathBuf,
}

/// The newest PostgreSQL's programs (Debian installs them per version).
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl PrivatePg {
    fn run(&self, args: &[&str]) -> std::process::Output {
        // PostgreSQL refuses to run as root; CI runs as root.
        let mut cmd = if rustix::process::geteuid().is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            std::process::Command::new("env")
        };
        cmd.arg(self.bin.join(args[0]));
        cmd.args(&args[1..]);
        cmd.output().unwrap()
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start() -> Option<PrivatePg> {
        let bin = pg_bin()?;
        let dir = TempDir::new().unwrap();
        if rustix::process::geteuid().is_root() {
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status();
        }
        let pg = PrivatePg {
            dir,
            port: free_port(),
            bin,
        };
        let out = pg.run(&[
            "initdb",
            "-D",
            &pg.data(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.ctl_start();
        Some(pg)
    }

    fn ctl_start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &opts,
            "-l",
            &log,
            "-w",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_stop(&self) {
        let out = self.run(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_makes_replicas_unready_then_ready_again_without_a_restart() {
    if !can_run("restart PostgreSQL under running replicas", false) {
        return;
    }
    let Some(pg) = tokio::task::spawn_blocking(PrivatePg::start).await.unwrap() else {
        assert!(
            !std::env::var(e2e::REQUIRE_ENV).is_ok_and(|v| v == "1"),
            "initdb not found under /usr/lib/postgresql"
        );
        eprintln!("SKIPPED: no /usr/lib/postgresql/*/bin/initdb to run a private PostgreSQL");
        return;
    };
    postgres::batch_on(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            pg.port
        ),
        "CREATE DATABASE teamgate",
    )
    .unwrap();
    let db = TestDb {
        setting: format!("postgres://postgres@127.0.0.1:{}/teamgate", pg.port),
        pg_name: None,
    };
    let cluster = Cluster::start_on(2, db).await;
    let agent = Agent::new();
    cluster
        .sign_in(&agent, user("u-pg", "pg@example.com", &["g-eng"]))
        .await;
    for i in 0..2 {
        assert_eq!(cluster.readyz(i).await.0, 200);
    }
    let pg = Arc::new(pg);
    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.ctl_stop())
        .await
        .unwrap();
    for i in 0..2 {
        let (status, ready) = cluster.readyz(i).await;
        assert_eq!(status, 503, "{ready}");
        assert_ne!(ready["database"], "ok", "{ready}");
    }
    // A SCIM write meanwhile is a 503 the IdP retries, not a 500.
    let (status, body) = cluster
        .scim(
            &cluster.direct(0),
            reqwest::Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "during-outage@x"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let starting = pg.clone();
    tokio::task::spawn_blocking(move || starting.ctl_start())
        .await
        .unwrap();
    let back = Instant::now();
    for i in 0..2 {
        loop {
            let (status, ready) = cluster.readyz(i).await;
            if status == 200 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "replica {i} stays unready: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "replicas ready again {:?} after PostgreSQL came back",
        back.elapsed()
    );
    // The session survived (it is in the database), on both replicas.
    for i in 0..2 {
        assert_eq!(cluster.auth_at(&agent, i).await, 200);
    }
    // And writes work again.
    let (status, body) = cluster
        .scim(
            &cluster.direct(1),
            reqwest::Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "after-outage@x"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let _ = cluster.dir.path();
    drop(cluster);
}
