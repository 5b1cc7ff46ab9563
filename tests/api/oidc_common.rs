//! Shared by the `oidc_*` test files: a teamgate wired to a [`TestIdp`], a login driven hop by
//! hop, the store checks every refusal makes (no session, no user row), and a per-test log
//! capture so a test can assert that the log names the reason.
//!
//! Log capture: each test runs on tokio's current-thread runtime (the `#[tokio::test]`
//! default) with a thread-local subscriber ([`tracing::subscriber::set_default`]), so the
//! app, the IdP and the client of that test log into that test's buffer only, whatever other
//! tests run in parallel. Refusals are logged once by the error page, with the request id the
//! response carries in `X-Request-Id`; [`Outcome::assert_logged`] looks for the line holding
//! both.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use teamgate::web::log_escape::Escaping;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{TestApp, new_browser, spawn_app};
use crate::test_idp::{TestIdp, TestIdpOptions};

/// Everything one test's log lines, as text.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

/// Capture this thread's logs at `level` and above (everything: teamgate, reqwest, hyper...),
/// formatted as `teamgate serve` formats them: no colours, control characters escaped by
/// teamgate's own writer wrapper.
pub fn capture_logs(level: tracing::Level) -> (LogBuffer, DefaultGuard) {
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(Escaping(buffer.clone()))
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, guard)
}

/// What every thread WITHOUT a subscriber of its own logs (teamgate's SQLite writer and
/// checkpoint threads, tokio's blocking pool, worker threads of multi-threaded runtimes), at
/// trace level, while at least one [`AllThreads`] capture is alive. Installed once as the
/// process's global subscriber; a test's own thread keeps logging to its [`capture_logs`]
/// buffer, so a test that must see every line reads both (see [`AllThreads::text`]).
static GLOBAL: std::sync::LazyLock<LogBuffer> = std::sync::LazyLock::new(|| {
    use tracing_subscriber::layer::SubscriberExt;
    let buffer = LogBuffer::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Escaping(buffer.clone()))
        .with_filter(tracing_subscriber::filter::filter_fn(|_| {
            GLOBAL_CAPTURES.load(std::sync::atomic::Ordering::SeqCst) > 0
        }));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other global subscriber in the test binary");
    buffer
});
static GLOBAL_CAPTURES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

use tracing_subscriber::Layer as _;

/// Every thread's logs at trace level, for as long as it lives: this thread's own (a
/// [`capture_logs`] buffer) and every other thread's (the global buffer, which also holds
/// lines of other tests running meanwhile: search it only for values unique to this test).
pub struct AllThreads {
    own: LogBuffer,
    _guard: DefaultGuard,
    /// Where the global buffer stood when this capture began.
    from: usize,
}

impl AllThreads {
    pub fn start() -> AllThreads {
        let from = GLOBAL.0.lock().unwrap().len();
        GLOBAL_CAPTURES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (own, _guard) = capture_logs(tracing::Level::TRACE);
        AllThreads { own, _guard, from }
    }

    /// This thread's lines, then every other thread's since the capture began.
    pub fn text(&self) -> String {
        let global = GLOBAL.0.lock().unwrap();
        format!(
            "{}{}",
            self.own.text(),
            String::from_utf8_lossy(&global[self.from.min(global.len())..])
        )
    }

    /// Only what threads other than the test's own logged.
    pub fn other_threads(&self) -> String {
        let global = GLOBAL.0.lock().unwrap();
        String::from_utf8_lossy(&global[self.from.min(global.len())..]).into_owned()
    }
}

impl Drop for AllThreads {
    fn drop(&mut self) {
        GLOBAL_CAPTURES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The provider id every single-provider test uses.
pub const PROVIDER: &str = "idp";
/// The group (id or name) that the `staff` team maps, for every provider kind.
pub const STAFF_GROUP: &str = "00000000-0000-4000-8000-00000000aaaa";

/// A `[[provider]]` block for `idp`, with extra `key = value` lines.
pub fn provider_block(
    id: &str,
    kind: &str,
    idp: &TestIdp,
    secret_file: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[[provider]]
id = "{id}"
kind = "{kind}"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
{extra}
"#,
        issuer = idp.issuer(),
        client_id = idp.client_id(),
    )
}

/// Write a secret to a file of its own (tests cannot set env vars: `set_var` is unsafe).
pub fn secret_file(value: &str) -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("secret");
    std::fs::write(&path, value).unwrap();
    path.display().to_string()
}

/// A whole config: server, the given provider blocks, and two teams: `staff` (mapped to
/// [`STAFF_GROUP`] of every listed provider, by id or by name) and `everyone` (the default).
pub fn config(providers: &[(&str, &str)], blocks: &str, teams_extra: &str) -> String {
    let staff: Vec<String> = providers
        .iter()
        .map(|(id, key)| format!(r#"{{ provider = "{id}", {key} = "{STAFF_GROUP}" }}"#))
        .collect();
    format!(
        r#"
[server]
public_url = "{{PUBLIC_URL}}"
database = "{{DB}}"
{blocks}

[[team]]
id = "staff"
roles = [{{ scope = "org/acme", role = "editor" }}]
groups = [{}]

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]
{teams_extra}

[defaults]
teams_without_groups = ["everyone"]
"#,
        staff.join(", ")
    )
}

/// A teamgate with one provider `idp` of `kind` pointing at a fresh test IdP.
pub struct Rig {
    pub idp: TestIdp,
    pub app: TestApp,
}

impl Rig {
    pub async fn start(kind: &str, options: TestIdpOptions, extra: &str) -> Rig {
        Self::start_with_teams(kind, options, extra, "").await
    }

    pub async fn start_with_teams(
        kind: &str,
        options: TestIdpOptions,
        extra: &str,
        teams_extra: &str,
    ) -> Rig {
        let idp = TestIdp::start_with(options).await;
        Self::start_on(kind, idp, extra, teams_extra).await
    }

    /// A rig around an IdP already started (when the config needs something of it).
    pub async fn start_on(kind: &str, idp: TestIdp, extra: &str, teams_extra: &str) -> Rig {
        Self::start_with_server(kind, idp, "", extra, teams_extra).await
    }

    /// As [`Rig::start_on`], with `server_extra` lines added to `[server]`.
    pub async fn start_with_server(
        kind: &str,
        idp: TestIdp,
        server_extra: &str,
        extra: &str,
        teams_extra: &str,
    ) -> Rig {
        // A multi-tenant provider's mappings name the tenant (security case J1): the `staff`
        // group is mapped in the first allowed tenant.
        let first_tenant = extra
            .split_once("allowed_tenants = [\"")
            .and_then(|(_, rest)| rest.split('"').next());
        let key = match (kind, first_tenant) {
            ("okta", _) => "name".to_owned(),
            (_, Some(tenant)) => format!("tenant = \"{tenant}\", id"),
            _ => "id".to_owned(),
        };
        let extra = if kind == "entra" && !extra.contains("graph_url") {
            format!("graph_url = \"{}\"\n{extra}", idp.graph_url())
        } else {
            extra.to_owned()
        };
        let block = format!(
            "{server_extra}\n{}",
            provider_block(
                PROVIDER,
                kind,
                &idp,
                &secret_file(&idp.client_secret()),
                &extra,
            )
        );
        let app = spawn_app(&config(&[(PROVIDER, &key)], &block, teams_extra)).await;
        idp.register_redirect_uri(&app.url(&format!("/callback/{PROVIDER}")));
        Rig { idp, app }
    }

    /// A plain OIDC provider with the issuer at the IdP's root.
    pub async fn oidc() -> Rig {
        Self::start("oidc", TestIdpOptions::default(), "").await
    }

    /// Sign in with the app's own browser.
    pub async fn login(&self) -> Outcome {
        login(&self.app, &self.app.browser, &self.idp, PROVIDER).await
    }

    /// `/login` up to the IdP's redirect back: the callback URL with code and state.
    pub async fn callback_url(&self, browser: &reqwest::Client) -> String {
        callback_url(&self.app, browser, &self.idp, PROVIDER).await
    }

    pub async fn hit(&self, url: &str) -> Outcome {
        hit(&self.app.browser, url).await
    }

    /// The refusal leaves no trace: not signed in, no user row, no signed-in session row.
    pub async fn assert_nobody_signed_in(&self) {
        assert_nobody_signed_in(&self.app).await;
    }
}

/// What a request to teamgate answered.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub location: Option<String>,
    pub request_id: String,
    pub title: String,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Outcome {
    /// A refusal: `status` and the error page titled `title`.
    pub fn assert_refused(&self, status: u16, title: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; page: {}",
            self.body
        );
        assert_eq!(self.title, title, "unexpected page; body: {}", self.body);
    }

    /// The log has this request's refusal line, naming `reason`.
    pub fn assert_logged(&self, logs: &LogBuffer, reason: &str) {
        let text = logs.text();
        let found = text
            .lines()
            .any(|l| l.contains(&self.request_id) && l.contains("reason=") && l.contains(reason));
        assert!(
            found,
            "no log line with request id {} naming {reason:?}; log:\n{text}",
            self.request_id
        );
    }

    /// A successful login: 303 to the return URL.
    pub fn assert_signed_in(&self) {
        assert!(
            self.status == StatusCode::SEE_OTHER || self.status == StatusCode::FOUND,
            "login did not succeed: {} {}",
            self.status,
            self.body
        );
    }
}

pub async fn hit(browser: &reqwest::Client, url: &str) -> Outcome {
    let response = browser.get(url).send().await.unwrap();
    outcome(response).await
}

pub async fn outcome(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let headers = response.headers().clone();
    let location = headers
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let request_id = headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap_or_default();
    let title = body
        .split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"))
        .map(|(t, _)| t.trim().to_owned())
        .unwrap_or_default();
    Outcome {
        status,
        location,
        request_id,
        title,
        body,
        headers,
    }
}

/// GET `/login?provider=…` and return the IdP authorization URL it redirects to.
pub async fn start_login(app: &TestApp, browser: &reqwest::Client, provider: &str) -> String {
    let response = browser
        .get(app.url(&format!("/login?provider={provider}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "login start: {:?}",
        response.text().await
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// `/login` and the IdP's authorization endpoint: the callback URL it sends the browser to.
pub async fn callback_url(
    app: &TestApp,
    browser: &reqwest::Client,
    idp: &TestIdp,
    provider: &str,
) -> String {
    let authorize = start_login(app, browser, provider).await;
    idp.authorize_redirect(&authorize).await
}

/// A whole login with `browser`: start, IdP, callback. Returns the callback's answer.
pub async fn login(
    app: &TestApp,
    browser: &reqwest::Client,
    idp: &TestIdp,
    provider: &str,
) -> Outcome {
    let callback = callback_url(app, browser, idp, provider).await;
    hit(browser, &callback).await
}

/// `GET /api/v1/me` with `browser`: 200 when signed in, 401 when not.
pub async fn me(app: &TestApp, browser: &reqwest::Client) -> (StatusCode, serde_json::Value) {
    let response = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

pub async fn count(app: &TestApp, sql: &'static str) -> i64 {
    crate::helpers::sql_one(&app.state, sql, &[])
        .await
        .unwrap()
        .parse()
        .unwrap()
}

pub async fn user_rows(app: &TestApp) -> i64 {
    count(app, "SELECT COUNT(*) FROM users").await
}

pub async fn signed_in_sessions(app: &TestApp) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL",
    )
    .await
}

pub async fn assert_nobody_signed_in(app: &TestApp) {
    assert_eq!(
        me(app, &app.browser).await.0,
        StatusCode::UNAUTHORIZED,
        "/api/v1/me answers as signed in"
    );
    assert_eq!(user_rows(app).await, 0, "a users row was written");
    assert_eq!(
        signed_in_sessions(app).await,
        0,
        "a signed-in session row was written"
    );
}

/// The stored subjects of every user of `provider`.
pub async fn subjects(app: &TestApp) -> Vec<String> {
    crate::helpers::sql_column(&app.state, "SELECT subject FROM users ORDER BY id", &[]).await
}

/// The teams (sorted, deduplicated) of the user with `subject`.
pub async fn teams_of(app: &TestApp, subject: &str) -> Vec<String> {
    crate::helpers::sql_column(
        &app.state,
        "SELECT DISTINCT m.team_id FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE u.subject = ?1 ORDER BY m.team_id",
        &[subject.into()],
    )
    .await
}

/// The stored `claims_groups` JSON of the user with `subject`.
pub async fn claims_groups_of(app: &TestApp, subject: &str) -> Option<Vec<String>> {
    let raw = crate::helpers::sql_one(
        &app.state,
        "SELECT claims_groups FROM users WHERE subject = ?1",
        &[subject.into()],
    )
    .await;
    raw.map(|r| serde_json::from_str(&r).unwrap())
}

/// A fresh browser (own cookie jar).
pub fn browser() -> reqwest::Client {
    new_browser()
}

/// The whole refusal check of one misbehaviour: `status` and page `title`, the log line of
/// this request naming `reason`, and no session or user left behind.
pub async fn assert_login_refused(
    rig: &Rig,
    logs: &LogBuffer,
    status: u16,
    title: &str,
    reason: &str,
) -> Outcome {
    let out = rig.login().await;
    out.assert_refused(status, title);
    out.assert_logged(logs, reason);
    rig.assert_nobody_signed_in().await;
    out
}

pub const UNVERIFIED: &str = "Sign-in could not be verified";
pub const EXPIRED: &str = "Sign-in expired";
pub const RESPONSE_REFUSED: &str = "Sign-in response refused";
pub const UNREACHABLE: &str = "Identity provider unreachable";
pub const GROUPS_UNAVAILABLE: &str = "Group membership unavailable";
pub const GROUPS_UNREADABLE: &str = "Group membership unreadable";

/// Poll `check` every 50 ms until it holds or `limit` passes; returns whether it held. For
/// work teamgate does in the background (refresh re-evaluation), where no signal exists.
pub async fn eventually<F, Fut>(limit: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A single-tenant Entra rig for tenant `tid` (Graph mocked by the same IdP).
pub async fn entra(tid: &str, extra: &str) -> Rig {
    Rig::start("entra", crate::test_idp::TestIdpOptions::entra(tid), extra).await
}

pub const TENANT_A: &str = "11111111-1111-4111-8111-111111111111";
pub const TENANT_B: &str = "22222222-2222-4222-8222-222222222222";
pub const TENANT_FOREIGN: &str = "33333333-3333-4333-8333-333333333333";
