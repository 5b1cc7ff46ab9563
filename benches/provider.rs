//! The OpenID provider benchmark (issue 15). Not a timed test: run it with
//!
//! ```text
//! cargo bench --bench provider                   # 2,000 of each, 32 concurrent clients
//! cargo bench --bench provider -- 10000 64       # count, concurrency
//! ```
//!
//! The real teamgate runs in this process on loopback with the demo config and one confidential
//! client; one browser session is signed in at the demo IdP first (untimed). Two figures:
//!
//! 1. **Token endpoint exchanges per second**: codes are issued first (untimed), then each
//!    timed request is `POST /oauth2/token` with `client_secret_basic` and PKCE: client
//!    authentication, the code redeemed in one write transaction (grant burnt, hashed access and
//!    refresh tokens stored, the user's memberships read), and the RS256 ID token signed.
//! 2. **End-to-end sign-in of a client with an existing teamgate session**: each timed unit is
//!    `GET /oauth2/authorize` (session check, `allowed_teams`, the grant and its audit row in
//!    one transaction, the 302 with the code) followed by that code's `POST /oauth2/token`:
//!    everything an application's sign-in costs teamgate when the user is already signed in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark driver, like a test: a panic is how it reports a broken setup"
)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

const SECRET: &str = "bench-client-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let count: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(count, concurrency));
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn basic() -> String {
    format!("Basic {}", STANDARD.encode(format!("bench:{SECRET}")))
}

/// `name="..." value="..."` of each hidden input of the demo IdP's pick page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |name: &str| {
                let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let end = start + rest[start..].find('"').unwrap();
                unescape(&rest[start..end])
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

async fn follow(client: &reqwest::Client, mut url: reqwest::Url) -> reqwest::Response {
    for _ in 0..10 {
        let response = client.get(url.clone()).send().await.unwrap();
        if !response.status().is_redirection() {
            return response;
        }
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        url = url.join(&location).unwrap();
    }
    panic!("too many redirects");
}

/// A code for the signed-in browser, with the verifier that redeems it.
async fn code(browser: &reqwest::Client, base: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let response = browser
        .get(format!("{base}/oauth2/authorize"))
        .query(&[
            ("client_id", "bench"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email profile"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "authorize");
    let location = response.headers()["location"].to_str().unwrap();
    let code = reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    (code, verifier)
}

async fn exchange(http: &reqwest::Client, base: &str, code: &str, verifier: &str) {
    let response = http
        .post(format!("{base}/oauth2/token"))
        .header("authorization", basic())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "token");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["id_token"].as_str().is_some());
}

fn report(what: &str, n: usize, elapsed: Duration, cpu: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{what}: {n} in {:.2}s = {:.0}/s; {:.2} ms CPU each; latency p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / n as f64,
        support::percentile_ms(&latencies, 0.5),
        support::percentile_ms(&latencies, 0.99),
    );
}

async fn run(count: usize, concurrency: usize) {
    let dir = tempfile::TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml"))
        .unwrap()
        .replace("http://127.0.0.1:8080", &base)
        .replace(
            "data/demo.db",
            &dir.path().join("bench.db").display().to_string(),
        );
    let text = format!(
        "{demo}\n[[client]]\nid = \"bench\"\nsecret_file = \"{}\"\nredirect_uris = [\"{REDIRECT}\"]\n",
        secret.display()
    );
    let path = dir.path().join("teamgate.toml");
    std::fs::write(&path, &text).unwrap();
    let config = teamgate::config::Config::parse(&text, &path).unwrap();
    let app = teamgate::app::Application::build_with_listener(config, listener)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    // One browser signed in at the demo IdP (untimed).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let picker = follow(&browser, format!("{base}/login").parse().unwrap()).await;
    let mut form = hidden_inputs(&picker.text().await.unwrap());
    form.push(("email".into(), "alice@example.com".into()));
    let picked = browser
        .post(format!("{base}/demo-idp/authorize/pick"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let callback = picked.headers()["location"].to_str().unwrap().to_owned();
    follow(&browser, callback.parse().unwrap()).await;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    // Warm up: the first token loads the keys.
    let (c, v) = code(&browser, &base).await;
    exchange(&http, &base, &c, &v).await;

    // 1. Token endpoint exchanges.
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        codes.push(code(&browser, &base).await);
    }
    let codes = Arc::new(std::sync::Mutex::new(codes));
    let cpu = support::cpu_time("self");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (codes, http, base) = (codes.clone(), http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = codes.lock().unwrap().pop();
                let Some((code, verifier)) = next else { break };
                let t = Instant::now();
                exchange(&http, &base, &code, &verifier).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    report(
        "token endpoint (code -> tokens, RS256 signature)",
        count,
        start.elapsed(),
        support::cpu_time("self") - cpu,
        latencies,
    );

    // 2. End-to-end client sign-ins with an existing session.
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(count));
    let cpu = support::cpu_time("self");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (left, http, browser, base) =
            (left.clone(), http.clone(), browser.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let t = Instant::now();
                let (code, verifier) = code(&browser, &base).await;
                exchange(&http, &base, &code, &verifier).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    report(
        "client sign-in with a teamgate session (authorize + token)",
        count,
        start.elapsed(),
        support::cpu_time("self") - cpu,
        latencies,
    );
}
