//! What the OpenID provider tests share: teamgate (against the test IdP, with the forward-auth
//! tests' teams) with `[[client]]`s registered, and an independent relying party: panva's
//! `openid-client` (OpenID Certified) in a small Node web app, `tests/api/provider_rp/rp.mjs`,
//! run as a child process. Node and the library are installed by
//! `scripts/install-e2e-deps.sh`; without them a test prints why and passes without running,
//! unless `TEAMGATE_REQUIRE_E2E=1`.

#![allow(
    dead_code,
    reason = "shared by several test files; each uses part of it"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::net::TcpListener;

use crate::forward_auth_support::{Agent, Gate, spawn_on};
use crate::helpers::follow;
use crate::support::e2e;

/// The confidential test client's secret (RFC 6749 §2.3.1 reserved characters included).
pub const SECRET: &str = "provider-test-secret:with+reserved/chars=&%";

/// The relying party's directory.
pub fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/provider_rp")
}

/// Whether Node and openid-client are installed; prints why not (or fails under
/// `TEAMGATE_REQUIRE_E2E=1`) like the other end-to-end prerequisites.
pub fn require_rp(why: &str) -> bool {
    if e2e::require("node", why).is_none() {
        return false;
    }
    let installed = rp_dir()
        .join("node_modules/openid-client/package.json")
        .exists();
    let found = installed.then(|| rp_dir().join("node_modules/openid-client"));
    match e2e::decide(
        "openid-client (tests/api/provider_rp/node_modules)",
        why,
        found,
        std::thread::current().name().unwrap_or("test"),
        std::env::var(e2e::REQUIRE_ENV).is_ok_and(|v| v == "1"),
    ) {
        e2e::Decision::Run(_) => true,
        e2e::Decision::Skip(line) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
            false
        }
        e2e::Decision::Fail(line) => panic!("{line} [{}=1 forbids skipping]", e2e::REQUIRE_ENV),
    }
}

/// How the RP authenticates at the token endpoint.
#[derive(Clone, Copy, Debug)]
pub enum RpAuth {
    Basic,
    Post,
    /// A public client: PKCE only.
    None,
}

/// The running relying party (killed on drop).
pub struct Rp {
    child: Child,
    pub url: String,
}

impl Rp {
    /// Start the RP for `client_id` at teamgate's `issuer`; discovery happens on its first
    /// request, so it may start before teamgate does.
    pub fn start(issuer: &str, client_id: &str, auth: RpAuth, alg: &str) -> Rp {
        let args = json!({
            "issuer": issuer,
            "client_id": client_id,
            "client_secret": match auth { RpAuth::None => Value::Null, _ => json!(SECRET) },
            "auth": match auth { RpAuth::Basic => "basic", RpAuth::Post => "post", RpAuth::None => "none" },
            "id_token_alg": alg,
        });
        let mut child = Command::new("node")
            .arg(rp_dir().join("rp.mjs"))
            .arg(args.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let announced: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the RP did not announce its port ({e}): {line:?}"));
        let port = announced["listening"].as_u64().unwrap();
        Rp {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn callback(&self) -> String {
        self.url("/callback")
    }
}

impl Drop for Rp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// teamgate with a client registered, and the RP for it.
pub struct Rig {
    pub gate: Gate,
    pub rp: Rp,
    pub secrets: TempDir,
}

/// A `[[client]]` block: `id`, confidential (secret file `secret`) unless `secret` is None,
/// redirect URI `redirect`, post-logout `logged_out`, and `extra` lines.
pub fn client_block(
    id: &str,
    secret: Option<&Path>,
    redirect: &str,
    logged_out: &str,
    extra: &str,
) -> String {
    let credentials = match secret {
        Some(path) => format!("secret_file = \"{}\"", path.display()),
        None => "public = true".to_owned(),
    };
    format!(
        "[[client]]\nid = \"{id}\"\nname = \"App {id}\"\n{credentials}\nredirect_uris = [\"{redirect}\"]\npost_logout_redirect_uris = [\"{logged_out}\"]\n{extra}\n"
    )
}

/// The secret file of [`SECRET`] in `dir`.
pub fn secret_file(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("client-secret");
    std::fs::write(&path, SECRET).unwrap();
    path
}

/// teamgate (public_url = itself) with client `app` served by a fresh RP using `auth` and
/// ID tokens in `alg`; `extra` goes into the client block (e.g. `allowed_teams = [...]`).
pub async fn rig(auth: RpAuth, alg: &str, extra: &str) -> Rig {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = format!("http://{}", listener.local_addr().unwrap());
    let rp = Rp::start(&direct, "app", auth, alg);
    let secrets = TempDir::new().unwrap();
    let secret = match auth {
        RpAuth::None => None,
        _ => Some(secret_file(&secrets)),
    };
    let block = client_block(
        "app",
        secret.as_deref(),
        &rp.callback(),
        &rp.url("/logged-out"),
        &format!("id_token_alg = \"{alg}\"\n{extra}"),
    );
    let gate = spawn_on(listener, &direct, "", &block).await;
    Rig { gate, rp, secrets }
}

/// Drive a browser-like `agent` from the RP's `/login` through teamgate (and, without a
/// session, the test IdP's login as `spec`) back to the RP; returns the RP's result JSON
/// (`{claims, userinfo, ...}` or `{error, description}`) and the hops.
pub async fn sign_in_through_rp(
    rig: &Rig,
    agent: &Agent,
    query: &str,
) -> (Value, Vec<(reqwest::Url, reqwest::StatusCode)>) {
    let (hops, _) = follow(&agent.client, &rig.rp.url(&format!("/login{query}"))).await;
    let result: Value = agent
        .get(&rig.rp.url("/result"))
        .await
        .json()
        .await
        .unwrap();
    (result, hops)
}

/// PKCE pair (RFC 7636 §4.1, §4.2).
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// RFC 6749 §2.3.1: form-url-encode, then Basic.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The query of a `Location`.
pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}
