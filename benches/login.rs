//! The login callback benchmark (DESIGN.md "Performance goals": 2,000 logins/s on 2 cores,
//! IdP time excluded). Not a timed test: run it with
//!
//! ```text
//! cargo bench --bench login                      # 4,000 logins, 64 concurrent clients
//! cargo bench --bench login -- 20000 128         # logins, concurrency
//! cargo bench --bench login -- --backend postgres # SQLite, then PostgreSQL, side by side
//! ```
//!
//! What one measured login is: `GET /callback/bench?code&state&iss` from a browser with its
//! pre-login session cookie, on loopback, through the real teamgate: pending-login lookup and
//! single-use removal (a session write), the code exchange (an HTTP POST to an in-process IdP
//! with client authentication), the RS256 signature check and every claim check, the ONE
//! login write transaction (user upsert, reconcile, audit rows), and the new session.
//!
//! What is excluded, as the target says: the IdP's own work. Every `/login` is done first
//! (untimed) and the IdP's ID tokens, which must carry each login's nonce, are signed before
//! the clock starts; the token endpoint then only looks the code up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark driver, like a test: a panic is how it reports a broken setup"
)]

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const KID: &str = "bench-key-1";
const CLIENT_ID: &str = "teamgate-bench";
const CLIENT_SECRET: &str = "bench-secret";
/// Distinct users the logins cycle through (a mix of first and returning logins).
const USERS: usize = 1000;

#[derive(Clone, Default)]
struct Idp {
    issuer: Arc<Mutex<String>>,
    jwks: Arc<Mutex<Value>>,
    /// code -> the token response to give for it.
    codes: Arc<Mutex<HashMap<String, Value>>>,
}

async fn discovery(State(idp): State<Idp>) -> Json<Value> {
    let issuer = idp.issuer.lock().unwrap().clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(idp): State<Idp>) -> Json<Value> {
    Json(idp.jwks.lock().unwrap().clone())
}

async fn token(State(idp): State<Idp>, Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    let code = form.get("code").cloned().unwrap_or_default();
    let answer = idp.codes.lock().unwrap().remove(&code);
    Json(answer.unwrap_or_else(|| json!({ "error": "invalid_grant" })))
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat` (Linux; 100
/// ticks a second). On a shared machine wall-clock rates depend on the neighbours; CPU time
/// per login does not, so both are reported.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from 1 with the pid and name as 1 and 2.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let logins: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = support::SideBySide::new();
    for backend in support::backends() {
        println!("\n=== {} ===", backend.name());
        let rate = runtime.block_on(run(logins, concurrency, backend));
        table.record("login callbacks", backend, rate);
    }
    table.print("logins/s");
}

async fn run(logins: usize, concurrency: usize, backend: support::Backend) -> f64 {
    // ---- the in-process IdP ----
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let encoding = EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
    let idp = Idp::default();
    *idp.jwks.lock().unwrap() = json!({ "keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    }]});
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", idp_listener.local_addr().unwrap());
    *idp.issuer.lock().unwrap() = issuer.clone();
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(idp_listener, router).await.unwrap() });

    // ---- teamgate ----
    let dir = tempfile::tempdir().unwrap();
    let db = support::BenchDb::new(backend, dir.path(), "login");
    std::fs::write(dir.path().join("secret"), CLIENT_SECRET).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", listener.local_addr().unwrap());
    let config = format!(
        r#"
[server]
public_url = "{app_url}"
database = "{db}"
# Every login comes from 127.0.0.1: the per-address /login limit would refuse all but the
# first few; the benchmark measures the callbacks.
login_rate_per_minute = 0

[[provider]]
id = "bench"
kind = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "secret"

[[team]]
id = "staff"
roles = [{{ scope = "org/acme", role = "editor" }}]
groups = [{{ provider = "bench", id = "g-staff" }}]

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]

[defaults]
teams_without_groups = ["everyone"]
"#,
        db = db.setting
    );
    let config =
        teamgate::config::Config::parse(&config, &dir.path().join("teamgate.toml")).unwrap();
    let app = teamgate::app::Application::build_with_listener(config, listener)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    // ---- untimed: every /login, and the IdP's tokens signed in advance ----
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    eprintln!("preparing {logins} logins (each /login, and an ID token signed with its nonce)...");
    let mut callbacks = Vec::with_capacity(logins);
    for i in 0..logins {
        let response = client
            .get(format!("{app_url}/login?provider=bench"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "login start failed");
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let authorize = response.headers()["location"].to_str().unwrap().to_owned();
        let (state, nonce) = (
            query_param(&authorize, "state"),
            query_param(&authorize, "nonce"),
        );
        let user = i % USERS;
        let claims = json!({
            "iss": issuer, "sub": format!("user-{user}"), "aud": CLIENT_ID, "nonce": nonce,
            "iat": now(), "exp": now() + 3600,
            "email": format!("user{user}@example.com"), "email_verified": true,
            "name": format!("User {user}"),
            "groups": if user.is_multiple_of(2) { json!(["g-staff", "g-other"]) } else { json!(["g-other"]) },
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.into());
        let id_token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let code = format!("code-{i}");
        idp.codes.lock().unwrap().insert(
            code.clone(),
            json!({ "access_token": format!("at-{i}"), "token_type": "Bearer", "expires_in": 3600, "id_token": id_token }),
        );
        callbacks.push((
            cookie,
            format!("{app_url}/callback/bench?code={code}&state={state}"),
        ));
    }

    // ---- timed: the callbacks, `concurrency` at a time ----
    eprintln!("running {logins} callbacks with {concurrency} concurrent clients...");
    let queue = Arc::new(Mutex::new(callbacks));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let client = client.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let Some((cookie, url)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let response = client
                    .get(&url)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                if response.status() != 303 {
                    failures += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, failures)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(logins);
    let mut failures = 0;
    while let Some(done) = workers.join_next().await {
        let (l, f) = done.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "login callback: {logins} logins in {:.2} s = {:.0} logins/s ({concurrency} concurrent clients, {} cores); p50 {:?}, p99 {:?}; failures {failures}",
        elapsed.as_secs_f64(),
        logins as f64 / elapsed.as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        pct(0.50),
        pct(0.99),
    );
    if let Some(cpu) = cpu {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let per_login_ms = cpu * 1000.0 / logins as f64;
        println!(
            "CPU: {cpu:.2} s for the timed phase = {per_login_ms:.3} ms per login (server, IdP token endpoint and client together); \
             at that cost {cores} idle cores would do {:.0} logins/s",
            cores * 1000.0 / per_login_ms
        );
    }
    assert_eq!(failures, 0, "some logins failed");
    logins as f64 / elapsed.as_secs_f64()
}
