//! `spawn_app`: the real teamgate on a free loopback port with a fresh database in a temp dir,
//! plus a browser-like HTTP client (cookie jar, redirects followed by hand so each hop can be
//! inspected).

use std::sync::Arc;

use reqwest::{Response, StatusCode, Url};
use teamgate::app::Application;
use teamgate::config::{Config, Database};
use teamgate::state::AppState;
use tempfile::TempDir;
use tokio::net::TcpListener;

pub use crate::support::postgres::TestDb;

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub state: AppState,
    /// A browser: cookie jar on, redirects not followed automatically.
    pub browser: reqwest::Client,
    pub dir: Arc<TempDir>,
    /// The app's database (a PostgreSQL one is dropped with the last clone of this).
    pub db: Arc<TestDb>,
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
/// app's URL and a fresh database (a file path, or a PostgreSQL URL when the suite runs on
/// PostgreSQL: see `support::postgres`).
pub async fn spawn_app(config_toml: &str) -> TestApp {
    spawn_app_with(config_toml, TestDb::fresh).await
}

/// [`spawn_app`] on the database `make_db` gives for the app's directory (e.g. SQLite
/// whatever the suite's backend).
pub async fn spawn_app_with(
    config_toml: &str,
    make_db: impl FnOnce(&std::path::Path) -> TestDb,
) -> TestApp {
    let config_toml = &without_login_limit(config_toml);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new().unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let db = make_db(dir.path());
    let text = with_pg_secret_key(
        &config_toml
            .replace("{PUBLIC_URL}", &address)
            .replace("{DB}", &db.setting),
        &db,
        dir.path(),
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
        db: Arc::new(db),
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

/// On PostgreSQL, refresh tokens are kept sealed in the database, so a provider with
/// `refresh_interval_seconds` needs `server.secret_key_*`: a test config without one gets a
/// key file in `dir`.
pub fn with_pg_secret_key(text: &str, db: &TestDb, dir: &std::path::Path) -> String {
    if !db.is_postgres() || text.contains("secret_key_") || !text.contains("[server]\n") {
        return text.to_owned();
    }
    let key = dir.join("test-secret-key");
    std::fs::write(&key, "test-secret-key-0123456789-0123456789-abcdef").unwrap();
    text.replacen(
        "[server]\n",
        &format!("[server]\nsecret_key_file = \"{}\"\n", key.display()),
        1,
    )
}

/// Follow redirects from `url` like [`follow`], but give up quietly (`None`) when a hop fails
/// (a server killed under load); the final status otherwise.
pub async fn follow_lenient(client: &reqwest::Client, url: &str) -> Option<u16> {
    let mut url = Url::parse(url).ok()?;
    for _ in 0..10 {
        let response = client.get(url.clone()).send().await.ok()?;
        if !response.status().is_redirection() {
            return Some(response.status().as_u16());
        }
        let location = response
            .headers()
            .get("location")?
            .to_str()
            .ok()?
            .to_owned();
        url = url.join(&location).ok()?;
    }
    None
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

/// A value bound to a raw SQL statement of a test (`?1`, `?2`... in the text).
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

/// Rows of a raw query, every value as text: numbers in decimal, booleans `1`/`0` (as SQLite
/// stores them), bytes in lower-case hex, NULL as `None`.
pub type Rows = Vec<Vec<Option<String>>>;

/// Raw SQL on the app's database, whichever backend it is, for tests that inspect what the
/// storage port does not expose (row counts, audit columns, stored bytes). Write the SQL in
/// the dialect both engines share, with `?1`, `?2`... placeholders.
pub async fn sql_rows(state: &AppState, sql: &str, args: &[Arg]) -> Rows {
    let database = state.config.get().server.database.clone();
    let (sql, args) = (sql.to_owned(), args.to_vec());
    tokio::task::spawn_blocking(move || raw(&database, &sql, &args, false).0)
        .await
        .unwrap()
}

/// The first column of the first row of `sql`, if any.
pub async fn sql_one(state: &AppState, sql: &str, args: &[Arg]) -> Option<String> {
    sql_rows(state, sql, args)
        .await
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

/// The number `sql` counts (`SELECT COUNT(*) ...`).
pub async fn sql_count(state: &AppState, sql: &str, args: &[Arg]) -> i64 {
    sql_one(state, sql, args)
        .await
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count from {sql}"))
}

/// The first column of every row of `sql`.
pub async fn sql_column(state: &AppState, sql: &str, args: &[Arg]) -> Vec<String> {
    sql_rows(state, sql, args)
        .await
        .into_iter()
        .map(|r| r.into_iter().next().flatten().unwrap_or_default())
        .collect()
}

/// Raw SQL that changes the app's database behind its back (a corrupted key, an aged session),
/// then one write through the store, so the server's commit-coherent caches see that something
/// was written. Returns the number of rows changed.
pub async fn sql_exec(state: &AppState, sql: &str, args: &[Arg]) -> u64 {
    let database = state.config.get().server.database.clone();
    let (sql, args) = (sql.to_owned(), args.to_vec());
    let changed = tokio::task::spawn_blocking(move || raw(&database, &sql, &args, true).1)
        .await
        .unwrap();
    state
        .store
        .write(|tx| tx.set_setting("test.db_write", "bumped"))
        .await
        .unwrap();
    changed
}

fn raw(database: &Database, sql: &str, args: &[Arg], write: bool) -> (Rows, u64) {
    match database {
        Database::Sqlite(path) => {
            let conn = if write {
                rusqlite::Connection::open(path).unwrap()
            } else {
                rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap()
            };
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let params: Vec<rusqlite::types::Value> = args
                .iter()
                .map(|a| match a {
                    Arg::Int(i) => rusqlite::types::Value::Integer(*i),
                    Arg::Text(t) => rusqlite::types::Value::Text(t.clone()),
                    Arg::Bytes(b) => rusqlite::types::Value::Blob(b.clone()),
                })
                .collect();
            let mut stmt = conn.prepare(sql).unwrap();
            if write {
                let n = stmt.execute(rusqlite::params_from_iter(params)).unwrap();
                return (Vec::new(), n as u64);
            }
            let columns = stmt.column_count();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    (0..columns)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => None,
                                rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                                rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Some(String::from_utf8_lossy(t).into_owned())
                                }
                                rusqlite::types::ValueRef::Blob(b) => Some(hex(b)),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .unwrap()
                .collect::<rusqlite::Result<Rows>>()
                .unwrap();
            (rows, 0)
        }
        Database::Postgres(pg) => {
            let conninfo = format!(
                "host={} port={} user={} dbname={}",
                pg.host, pg.port, pg.user, pg.dbname
            );
            let sql = numbered(sql);
            let args = args.to_vec();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    let driver = tokio::spawn(conn);
                    let params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = args
                        .iter()
                        .map(|a| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                            match a {
                                Arg::Int(i) => Box::new(*i),
                                Arg::Text(t) => Box::new(t.clone()),
                                Arg::Bytes(b) => Box::new(b.clone()),
                            }
                        })
                        .collect();
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                        .collect();
                    let out = if write {
                        (Vec::new(), client.execute(&sql, &refs).await.unwrap())
                    } else {
                        let rows = client.query(&sql, &refs).await.unwrap();
                        (rows.iter().map(pg_row).collect(), 0)
                    };
                    drop(client);
                    let _ = driver.await;
                    out
                })
        }
    }
}

/// `?1` placeholders as PostgreSQL's `$1`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_row(row: &tokio_postgres::Row) -> Vec<Option<String>> {
    use tokio_postgres::types::Type;
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_().clone();
            if ty == Type::BOOL {
                row.get::<_, Option<bool>>(i)
                    .map(|b| if b { "1" } else { "0" }.to_owned())
            } else if ty == Type::INT8 {
                row.get::<_, Option<i64>>(i).map(|v| v.to_string())
            } else if ty == Type::INT4 {
                row.get::<_, Option<i32>>(i).map(|v| v.to_string())
            } else if ty == Type::BYTEA {
                row.get::<_, Option<Vec<u8>>>(i).map(|b| hex(&b))
            } else if ty == Type::JSONB || ty == Type::JSON {
                row.get::<_, Option<serde_json::Value>>(i)
                    .map(|v| v.to_string())
            } else {
                row.get::<_, Option<String>>(i)
            }
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when the app's database is SQLite; otherwise prints why the (SQLite-specific) test
/// `what` does not run here and returns false.
pub fn sqlite_only(state: &AppState, why: &str) -> bool {
    if state.config.get().server.database.sqlite_path().is_some() {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {} on PostgreSQL: SQLite only - {why}",
        crate::support::e2e::current_test()
    );
    false
}

/// Another process holding the database's write lock, until [`WriteHold::release`]: SQLite, a
/// connection in `BEGIN IMMEDIATE`; PostgreSQL, a session holding the advisory lock every
/// write job takes shared (`store::postgres::WRITE_LOCK`). Every write of the app waits behind
/// it (and gives up after the busy timeout, 5 s on both); reads go on.
pub struct WriteHold {
    sqlite: Option<rusqlite::Connection>,
    pg: Option<tokio_postgres::Client>,
}

pub async fn hold_writes(state: &AppState) -> WriteHold {
    match state.config.get().server.database.clone() {
        Database::Sqlite(path) => {
            let hog = rusqlite::Connection::open(path).unwrap();
            hog.execute_batch("BEGIN IMMEDIATE").unwrap();
            WriteHold {
                sqlite: Some(hog),
                pg: None,
            }
        }
        Database::Postgres(pg) => {
            let conninfo = format!(
                "host={} port={} user={} dbname={}",
                pg.host, pg.port, pg.user, pg.dbname
            );
            let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_lock({})",
                    teamgate::store::postgres::WRITE_LOCK
                ))
                .await
                .unwrap();
            WriteHold {
                sqlite: None,
                pg: Some(client),
            }
        }
    }
}

impl WriteHold {
    /// Let the writes through (in the order they queued, on SQLite).
    pub async fn release(self) {
        if let Some(hog) = self.sqlite {
            hog.execute_batch("ROLLBACK").unwrap();
        }
        if let Some(client) = self.pg {
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_unlock({})",
                    teamgate::store::postgres::WRITE_LOCK
                ))
                .await
                .unwrap();
        }
    }
}
