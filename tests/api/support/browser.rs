//! A real headless Chromium driven through ChromeDriver's W3C WebDriver protocol, spoken with
//! reqwest: one `Browser` is one ChromeDriver child, one browser session and a fresh profile,
//! all ended on drop. The browser can reach loopback only: every other request is answered by
//! a local black-hole proxy and recorded, so nothing leaves the machine.
//! Run browser tests with `#[tokio::test(flavor = "multi_thread")]`: the test's servers then
//! keep serving while drop closes the browser and, after a failure, saves the page's HTML and
//! a screenshot under `target/tmp/e2e-failures/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::e2e;

/// How long ChromeDriver and the browser get to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for a single WebDriver command (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on each step of drop (saving a failing page; quitting the browser).
const DROP_STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for saving a failing page when the test's servers cannot run (see `Drop`).
const STALLED_ARTIFACTS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `wait_for*` look again.
const POLL: Duration = Duration::from_millis(50);
/// The W3C key under which an element reference is returned (WebDriver §12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// What the black-hole proxy answers, and so what a page shows for a non-loopback URL.
pub const BLOCKED_BODY: &str = "blocked by the teamgate e2e harness: only loopback targets";

/// One cookie as the browser holds it (WebDriver §14, the serialized cookie).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub http_only: bool,
    /// `"Strict"`, `"Lax"` or `"None"` (ChromeDriver reports `"Lax"` when the server set none).
    #[serde(default)]
    pub same_site: Option<String>,
    /// Seconds since the epoch; `None` for a session cookie.
    #[serde(default)]
    pub expiry: Option<u64>,
}

/// An error answered by ChromeDriver (WebDriver §6.6), or a transport failure.
#[derive(Debug)]
pub struct WebDriverError {
    /// The W3C error code, such as `no such element`; `transport` when ChromeDriver was not
    /// reached.
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A headless Chromium session. See the module doc; every method panics with the WebDriver
/// error and the page's URL when the browser refuses, which is what a test wants.
pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT/session/ID`
    session_url: String,
    http: reqwest::Client,
    blackhole: Blackhole,
    /// Set once a failure's screenshot and HTML are saved, so drop does not save them again.
    saved_artifacts: AtomicBool,
    /// Chromium's `--user-data-dir`, and ChromeDriver's log; removed after the browser quits.
    dir: TempDir,
}

impl Browser {
    /// Start ChromeDriver on a free loopback port and open a headless Chromium session with a
    /// fresh profile. Call `e2e::require_browser` first so that a machine without Chromium
    /// skips the test instead of failing here.
    pub async fn start() -> Browser {
        let dir = TempDir::new().unwrap();
        let blackhole = Blackhole::start();
        let log = dir.path().join("chromedriver.log");
        let mut driver = spawn_driver(&log);
        let stdout = driver.stdout.take().unwrap();
        // Owned from here on, so that drop ends the driver if anything below panics.
        let mut browser = Browser {
            driver,
            session_url: String::new(),
            http: reqwest::Client::builder()
                .timeout(COMMAND_TIMEOUT)
                .no_proxy()
                .build()
                .unwrap(),
            blackhole,
            saved_artifacts: AtomicBool::new(false),
            dir,
        };
        // ChromeDriver picks the port for `--port=0` itself and now and then loses it to another
        // process before it binds ("bind() failed: Address already in use", seen in CI): such a
        // start is tried again, three times in all.
        let mut stdout = Some(stdout);
        let mut attempt = 1;
        let port = loop {
            let out = stdout.take().unwrap();
            match announced_port(out, &log).await {
                Some(port) => break port,
                None if attempt < 3 => {
                    eprintln!(
                        "browser: ChromeDriver exited without a port (attempt {attempt}), starting it again\n{}",
                        tail(&log)
                    );
                    browser.kill_driver_group();
                    browser.driver = spawn_driver(&log);
                    stdout = browser.driver.stdout.take();
                    attempt += 1;
                }
                None => panic!("ChromeDriver did not announce its port\n{}", tail(&log)),
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&browser.http, &base, &log).await;

        let profile = browser.dir.path().join("profile");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,900".to_string(),
            "--lang=en-US".to_string(),
            // Only 127.0.0.1, localhost and names under localhost (which Chromium itself
            // resolves to the loopback address, RFC 6761 §6.3; the proxy tests give teamgate and
            // the app hosts of their own that way) are reached directly; everything else goes
            // to the black hole. `<-loopback>` drops Chromium's implicit bypass rules, which
            // also cover link-local addresses (cloud metadata endpoints among them). And no
            // other name resolves, so nothing can leave the machine even past the proxy.
            format!("--proxy-server=http://127.0.0.1:{}", browser.blackhole.port),
            "--proxy-bypass-list=<-loopback>;127.0.0.1;localhost;*.localhost;[::1]".to_string(),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE *.localhost , \
             EXCLUDE 127.0.0.1"
                .to_string(),
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp".to_string(),
            // Quiet the browser's own traffic (updates, sign-in, autofill, search preconnects):
            // the fence would stop it anyway, but it costs CPU and clutters the blocked list.
            "--no-default-browser-check".to_string(),
            "--disable-default-apps".to_string(),
            "--disable-extensions".to_string(),
            "--disable-component-extensions-with-background-pages".to_string(),
            "--disable-client-side-phishing-detection".to_string(),
            "--disable-domain-reliability".to_string(),
            "--disable-breakpad".to_string(),
            "--disable-crash-reporter".to_string(),
            "--metrics-recording-only".to_string(),
            "--password-store=basic".to_string(),
            "--use-mock-keychain".to_string(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,\
             AutofillServerCommunication,CertificateTransparencyComponentUpdater,\
             PreconnectToSearch,SearchPrefetchServicePrefetching,NetworkTimeServiceQuerying,\
             SafeBrowsingEnhancedProtection,InterestFeedContentSuggestions"
                .to_string(),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 10_000 },
                    "goog:chromeOptions": { "binary": e2e::CHROMIUM, "args": args },
                }
            }
        });
        let created = command(
            &browser.http,
            Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "ChromeDriver could not start Chromium: {e}\n{}",
                tail(&browser.dir.path().join("chromedriver.log"))
            )
        });
        let id = created["sessionId"].as_str().unwrap();
        browser.session_url = format!("{base}/session/{id}");
        browser
    }

    /// Load `url` and wait for it to finish loading. Only loopback URLs are allowed.
    pub async fn goto(&self, url: &str) {
        assert!(
            is_loopback_url(url),
            "goto({url:?}): the e2e browser visits http(s) on loopback only"
        );
        self.run(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The URL of the page now shown (after any redirects).
    pub async fn current_url(&self) -> String {
        as_string(self.run(Method::GET, "/url", None).await)
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> String {
        as_string(self.run(Method::GET, "/title", None).await)
    }

    /// The page's DOM serialized as HTML (as it is now, scripts' changes included).
    pub async fn page_source(&self) -> String {
        as_string(self.run(Method::GET, "/source", None).await)
    }

    /// Click the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.run(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Replace the content of the input matching `css` with `text`, as typed keys.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.run(
            Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.run(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.element(css).await;
        as_string(
            self.run(Method::GET, &format!("/element/{element}/text"), None)
                .await,
        )
    }

    /// The DOM property `name` of the first element matching `css`, such as an input's
    /// current `value` (what was typed) or a link's absolute `href`.
    pub async fn property(&self, css: &str, name: &str) -> Option<String> {
        self.element_value(css, "property", name).await
    }

    /// The HTML attribute `name` of the first element matching `css`, as written in the page.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.element_value(css, "attribute", name).await
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.find(css).await.is_some()
    }

    /// Poll until an element matching `css` is present and displayed; panics with the URL and
    /// the start of the page after `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                let shown = self
                    .try_run(Method::GET, &format!("/element/{element}/displayed"), None)
                    .await;
                if matches!(shown, Ok(Value::Bool(true))) {
                    return;
                }
            }
            if Instant::now() >= deadline {
                self.give_up(&format!("no displayed element matches {css:?}"), timeout)
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Poll until the current URL satisfies `done` (such as the end of a redirect chain), and
    /// return it.
    pub async fn wait_for_url(&self, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if done(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                self.give_up("the URL never matched", timeout).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every cookie visible to the current page, HttpOnly ones included, with attributes.
    pub async fn cookies(&self) -> Vec<Cookie> {
        serde_json::from_value(self.run(Method::GET, "/cookie", None).await).unwrap()
    }

    /// The cookie called `name` visible to the current page, if any.
    pub async fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Delete every cookie of the current page's domain.
    pub async fn delete_cookies(&self) {
        self.run(Method::DELETE, "/cookie", None).await;
    }

    /// Save a PNG of the viewport at `path` (parent directories are created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let png = self.screenshot_png().await;
        if let Some(parent) = path.as_ref().parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path.as_ref(), png).unwrap();
    }

    /// A PNG of the viewport.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        let encoded = as_string(self.run(Method::GET, "/screenshot", None).await);
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap()
    }

    /// Run `script` (a function body; `arguments[0]`... are `args`) in the page and return
    /// what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.run(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The request lines (`GET http://host/path HTTP/1.1`, `CONNECT host:443 HTTP/1.1`) of
    /// every request the browser tried to send off the machine, in order.
    pub fn blocked_requests(&self) -> Vec<String> {
        self.blackhole.seen.lock().unwrap().clone()
    }

    /// The process group of ChromeDriver and every browser process it started.
    pub fn process_group(&self) -> u32 {
        self.driver.id()
    }

    /// ChromeDriver's log (the browser's console messages and crashes land here too).
    pub fn driver_log(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    /// Delete the session, which closes Chromium cleanly (WebDriver §8.2), then end
    /// ChromeDriver. Dropping a `Browser` does the same, except on a current-thread runtime,
    /// where drop kills the browser instead: its quit can wait on the test's own servers,
    /// which cannot run while drop blocks their thread.
    pub async fn quit(mut self) {
        let session = std::mem::take(&mut self.session_url);
        let _ = command(&self.http, Method::DELETE, &session, None).await;
    }

    async fn element_value(&self, css: &str, kind: &str, name: &str) -> Option<String> {
        let element = self.element(css).await;
        let path = format!("/element/{element}/{kind}/{name}");
        match self.run(Method::GET, &path, None).await {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .try_run(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        match found {
            Ok(value) => Some(value[ELEMENT_KEY].as_str().unwrap().to_string()),
            Err(e) if e.error == "no such element" => None,
            Err(e) => self.fail(&format!("find {css:?}"), e).await,
        }
    }

    async fn element(&self, css: &str) -> String {
        match self.find(css).await {
            Some(element) => element,
            None => {
                self.give_up(&format!("no element matches {css:?}"), Duration::ZERO)
                    .await
            }
        }
    }

    async fn run(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        match self.try_run(method, path, body).await {
            Ok(value) => value,
            Err(e) => self.fail(&what, e).await,
        }
    }

    async fn try_run(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        command(
            &self.http,
            method,
            &format!("{}{path}", self.session_url),
            body,
        )
        .await
    }

    /// SIGKILL to ChromeDriver's process group: the driver and every browser process it
    /// started (Chromium's crash handlers, in sessions of their own, exit with the browser).
    fn kill_driver_group(&mut self) {
        // The shell's own `kill` takes a negative process group id (dash's takes no `--`).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 -{} 2>/dev/null", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    async fn fail(&self, what: &str, e: WebDriverError) -> ! {
        self.save_artifacts().await;
        let url = self
            .try_run(Method::GET, "/url", None)
            .await
            .map(as_string)
            .unwrap_or_default();
        panic!("browser: {what} failed at {url}: {e}");
    }

    async fn give_up(&self, what: &str, timeout: Duration) -> ! {
        self.save_artifacts().await;
        let url = self
            .try_run(Method::GET, "/url", None)
            .await
            .map(as_string)
            .unwrap_or_default();
        let source = self
            .try_run(Method::GET, "/source", None)
            .await
            .map(as_string)
            .unwrap_or_default();
        let start: String = source.chars().take(2_000).collect();
        panic!("browser: {what} after {timeout:?} at {url}; the page begins:\n{start}");
    }

    /// Save the failing page while the test's servers can still answer it (in drop they may
    /// share the blocked thread).
    async fn save_artifacts(&self) {
        if !self.saved_artifacts.swap(true, Ordering::SeqCst) {
            save_failure_artifacts(&self.http, &self.session_url, &failure_artifacts_base()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let session = std::mem::take(&mut self.session_url);
        let artifacts = (std::thread::panicking() && !self.saved_artifacts.load(Ordering::SeqCst))
            .then(failure_artifacts_base);
        // On a current-thread runtime this very thread also runs the test's servers, and
        // Chromium's quit waits on the pages they serve: a clean WebDriver quit would stall
        // until its timeout, so there the browser is killed instead (`quit` is the clean way).
        let servers_stalled = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !session.is_empty() && (artifacts.is_some() || !servers_stalled) {
            // Drop cannot await and may run inside a runtime: the HTTP gets a thread of its own.
            let http = self.http.clone();
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    // Bounded: ChromeDriver can wait on the page's servers before answering.
                    if let Some(base) = artifacts {
                        let limit = if servers_stalled {
                            STALLED_ARTIFACTS_TIMEOUT
                        } else {
                            DROP_STEP_TIMEOUT
                        };
                        let save = save_failure_artifacts(&http, &session, &base);
                        if tokio::time::timeout(limit, save).await.is_err() && servers_stalled {
                            eprintln!(
                                "browser: the failing page could not be saved: its servers \
                                 share this blocked thread; run browser tests with \
                                 #[tokio::test(flavor = \"multi_thread\")]"
                            );
                        }
                    }
                    if !servers_stalled {
                        let quit = command(&http, Method::DELETE, &session, None);
                        let _ = tokio::time::timeout(DROP_STEP_TIMEOUT, quit).await;
                    }
                });
            });
            let _ = cleanup.join();
        }
        self.kill_driver_group();
    }
}

/// Whether `url` is http(s) on 127.0.0.1, localhost, a name under localhost, or [::1]: what
/// `goto` accepts.
pub fn is_loopback_url(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && (matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
                || matches!(u.host(), Some(url::Host::Domain(d)) if d.ends_with(".localhost")))
    })
}

/// `target/tmp/e2e-failures/<test name>` (the extension is added per file).
fn failure_artifacts_base() -> PathBuf {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e-failures")
        .join(test)
}

/// A failing test leaves the page's HTML and a screenshot behind, and says where.
async fn save_failure_artifacts(http: &reqwest::Client, session: &str, base: &Path) {
    let _ = std::fs::create_dir_all(base.parent().unwrap());
    // The HTML first: unlike a screenshot it never waits for a frame to be drawn.
    let url = format!("{session}/source");
    if let Ok(Value::String(html)) = command(http, Method::GET, &url, None).await {
        let path = base.with_extension("html");
        if std::fs::write(&path, html).is_ok() {
            eprintln!("browser: HTML of the failing page: {}", path.display());
        }
    }
    let url = format!("{session}/screenshot");
    if let Ok(Value::String(encoded)) = command(http, Method::GET, &url, None).await
        && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(encoded)
    {
        let path = base.with_extension("png");
        if std::fs::write(&path, png).is_ok() {
            eprintln!(
                "browser: screenshot of the failing page: {}",
                path.display()
            );
        }
    }
}

/// Send one WebDriver command and unwrap its `value` (WebDriver §6.3, §6.6).
async fn command(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let transport = |e: reqwest::Error| WebDriverError {
        error: "transport".to_string(),
        message: e.to_string(),
    };
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(transport)?;
    let ok = response.status().is_success();
    let mut reply: Value = response.json().await.map_err(transport)?;
    let value = reply["value"].take();
    if ok {
        Ok(value)
    } else {
        Err(WebDriverError {
            error: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        })
    }
}

fn as_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("browser: expected a string from WebDriver, got {other}"),
    }
}

/// ChromeDriver on a port of its choosing, in its own process group, so that drop can end the
/// driver and every browser process it started in one signal, even if the session could not be
/// deleted.
fn spawn_driver(log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new(e2e::CHROMEDRIVER)
        .arg("--port=0")
        .arg(format!("--log-path={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", e2e::CHROMEDRIVER))
}

/// The port ChromeDriver chose for `--port=0`, read from its announcement on stdout; `None`
/// when it closed its output without one (it could not bind).
async fn announced_port(stdout: std::process::ChildStdout, log: &Path) -> Option<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
                break;
            }
        }
        // Keep draining so that the driver never blocks on a full pipe.
        for _ in lines {}
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match rx.try_recv() {
            Ok(Some(port)) => return Some(port),
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if Instant::now() >= deadline {
            panic!(
                "ChromeDriver did not start in {START_TIMEOUT:?}\n{}",
                tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// WebDriver §8.3: `GET /status` says when new sessions can be made.
async fn wait_until_ready(http: &reqwest::Client, base: &str, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(status) = command(http, Method::GET, &format!("{base}/status"), None).await
            && status["ready"] == json!(true)
        {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "ChromeDriver was not ready in {START_TIMEOUT:?}\n{}",
                tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last lines of a log, for a panic message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    format!(
        "last lines of {}:\n{}",
        path.display(),
        lines[start..].join("\n")
    )
}

/// The browser's only proxy: it records each request line and answers 403, so a request for
/// anything but loopback fails visibly, on this machine, at once.
struct Blackhole {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A thread each: a preconnect that never speaks must not hold others.
                        let seen = seen.clone();
                        std::thread::spawn(move || refuse(stream, &seen));
                    }
                }
            })
        };
        Blackhole {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

fn refuse(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 8_192 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&head).trim_end().to_string();
    if !line.is_empty() {
        seen.lock().unwrap().push(line);
    }
    let reply = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{BLOCKED_BODY}",
        BLOCKED_BODY.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
