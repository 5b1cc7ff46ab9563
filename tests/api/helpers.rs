//! `spawn_app`: the real teamgate on a free loopback port with a fresh database in a temp dir,
//! plus a browser-like HTTP client (cookie jar, redirects followed by hand so each hop can be
//! inspected).

use std::sync::Arc;

use reqwest::{Response, StatusCode, Url};
use teamgate::app::Application;
use teamgate::config::Config;
use teamgate::state::AppState;
use tempfile::TempDir;
use tokio::net::TcpListener;

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub state: AppState,
    /// A browser: cookie jar on, redirects not followed automatically.
    pub browser: reqwest::Client,
    pub dir: Arc<TempDir>,
}

/// A fresh browser-like client.
pub fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `text` with the `/login` rate limit turned off, unless it sets one itself. Every test client
/// connects from 127.0.0.1, so the default limit per address would throttle tests that start
/// many logins; the tests of the limit set it explicitly.
pub fn without_login_limit(text: &str) -> String {
    if text.contains("login_rate_per_minute") {
        text.to_owned()
    } else {
        text.replacen("[server]", "[server]\nlogin_rate_per_minute = 0", 1)
    }
}

/// Start teamgate with `config_toml`, in which `{PUBLIC_URL}` and `{DB}` are replaced by the
/// app's URL and a fresh database path.
pub async fn spawn_app(config_toml: &str) -> TestApp {
    let config_toml = &without_login_limit(config_toml);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new().unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let text = config_toml.replace("{PUBLIC_URL}", &address).replace(
        "{DB}",
        &dir.path().join("teamgate.db").display().to_string(),
    );
    // On disk too, as a server's config is: a reload re-reads it.
    let path = dir.path().join("teamgate.toml");
    std::fs::write(&path, &text).unwrap();
    let config =
        Config::parse(&text, &path).unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    let app = Application::build_with_listener(config, listener)
        .await
        .unwrap();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        port,
        state,
        browser: new_browser(),
        dir: Arc::new(dir),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.browser.get(self.url(path)).send().await.unwrap()
    }
}

/// Follow redirects from `url` with `client` (at most 10 hops) and return every response's
/// URL and status plus the final response.
pub async fn follow(client: &reqwest::Client, url: &str) -> (Vec<(Url, StatusCode)>, Response) {
    let mut hops = Vec::new();
    let mut url = Url::parse(url).unwrap();
    for _ in 0..10 {
        let response = client.get(url.clone()).send().await.unwrap();
        hops.push((url.clone(), response.status()));
        if !response.status().is_redirection() {
            return (hops, response);
        }
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        url = url.join(&location).unwrap();
    }
    panic!("too many redirects: {hops:?}");
}

/// `config/demo.toml` with `{PUBLIC_URL}` and `{DB}` placeholders.
pub fn demo_config() -> String {
    std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace("http://127.0.0.1:8080", "{PUBLIC_URL}")
        .replace("../data/demo.db", "{DB}")
}

/// Hidden inputs of a page's forms, HTML entities decoded.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
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

/// Sign `email` in at the demo IdP with `client` (its own cookie jar), as a browser without
/// JavaScript would: the login redirect, the picker form, the callback.
pub async fn demo_sign_in(app: &TestApp, client: &reqwest::Client, email: &str) {
    demo_sign_in_from(app, client, email, "/login").await;
}

/// [`demo_sign_in`] starting at `login_path` (`/login?provider=demo` when there are several
/// providers, so that `/login` alone shows the chooser).
pub async fn demo_sign_in_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    login_path: &str,
) {
    let (_, picker) = follow(client, &app.url(login_path)).await;
    let html = picker.text().await.unwrap();
    let mut form = hidden_inputs(&html);
    form.push(("email".into(), email.into()));
    let response = client
        .post(app.url("/demo-idp/authorize/pick"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection(),
        "pick: {}",
        response.status()
    );
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    let (hops, _) = follow(client, &callback).await;
    assert_eq!(
        hops[0].1,
        StatusCode::SEE_OTHER,
        "callback for {email}: {hops:?}"
    );
}

/// Raw SQL on the app's SQLite file, read-only, for tests that inspect what the storage port
/// does not expose (row counts, audit columns, stored bytes). Runs off the async runtime.
pub async fn db_read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let path = state.config.get().server.database.clone();
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        f(&conn)
    })
    .await?
}

/// Raw SQL that changes the app's SQLite file behind its back (a corrupted key, an aged
/// session), then one write through the store, so the server's commit-coherent caches see
/// that something was written.
pub async fn db_write<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let path = state.config.get().server.database.clone();
    let out = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        f(&conn)
    })
    .await??;
    state
        .store
        .write(|tx| tx.set_setting("test.db_write", "bumped"))
        .await?;
    Ok(out)
}
