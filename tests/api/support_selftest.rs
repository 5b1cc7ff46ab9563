//! Proof that the end-to-end harness works, against tiny axum servers rather than teamgate:
//! Chromium fills and submits a form, sees cookies with their attributes and cannot leave
//! loopback; nginx proxies to an upstream with the header it adds.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Form;
use axum::http::{HeaderMap, header};
use axum::response::{AppendHeaders, Html, IntoResponse};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::support::browser::{BLOCKED_BODY, Browser, is_loopback_url};
use crate::support::e2e::{self, Decision};
use crate::support::nginx::Nginx;
use crate::support::{eventually, live_processes, serve};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Greeting {
    name: String,
}

/// A form page whose button posts to `/greet`, which answers with a greeting.
fn form_site() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                Html(
                    r#"<!doctype html><html><head><title>Harness form</title></head><body>
<form method="post" action="/greet">
  <label>Name <input id="name" name="name" value="placeholder"></label>
  <button id="send" type="submit">Send</button>
</form></body></html>"#,
                )
            }),
        )
        .route(
            "/greet",
            post(|Form(form): Form<Greeting>| async move {
                // The test types plain letters; real pages escape through templates.
                Html(format!(
                    "<!doctype html><html><head><title>Greeted</title></head><body>\
                     <p id=\"greeting\">Hello, {}!</p></body></html>",
                    form.name
                ))
            }),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_fills_a_form_clicks_a_button_and_reads_the_result() {
    if !e2e::require_browser("drive a form in a real browser") {
        return;
    }
    let started = Instant::now();
    let site = serve(form_site()).await;
    let browser = Browser::start().await;

    browser.goto(&format!("http://{site}/")).await;
    assert_eq!(browser.title().await, "Harness form");
    browser.wait_for("#send", WAIT).await;
    browser.fill("#name", "Ada").await;
    assert_eq!(
        browser.property("#name", "value").await.as_deref(),
        Some("Ada")
    );
    assert_eq!(
        browser.attribute("#name", "value").await.as_deref(),
        Some("placeholder"),
        "the attribute keeps what the page wrote"
    );
    assert_eq!(browser.attribute("#name", "title").await, None);
    browser.click("#send").await;
    browser.wait_for("#greeting", WAIT).await;

    assert_eq!(browser.text("#greeting").await, "Hello, Ada!");
    assert_eq!(browser.current_url().await, format!("http://{site}/greet"));
    assert_eq!(browser.title().await, "Greeted");
    assert!(browser.page_source().await.contains("Hello, Ada!"));
    assert!(!browser.exists("#send").await);
    assert_eq!(
        browser
            .execute("return 40 + arguments[0];", vec![2.into()])
            .await,
        42
    );

    let shot = tempfile::TempDir::new().unwrap();
    let path = shot.path().join("page.png");
    browser.screenshot(&path).await;
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 1_000, "a suspiciously small screenshot");

    // The page's own requests are loopback and never meet the fence.
    let site_host = site.to_string();
    assert!(
        !browser
            .blocked_requests()
            .iter()
            .any(|r| r.contains(&site_host)),
        "{:?}",
        browser.blocked_requests()
    );
    browser.quit().await;
    eprintln!("browser form round trip: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_set_by_the_page_is_visible_with_its_attributes() {
    if !e2e::require_browser("read cookies in a real browser") {
        return;
    }
    let site = serve(Router::new().route(
        "/",
        get(|| async {
            // Hand-built cookies: the point is to see exactly these attributes come back.
            (
                AppendHeaders([
                    (
                        header::SET_COOKIE,
                        "tg_session=s3cret; Path=/; HttpOnly; SameSite=Lax",
                    ),
                    (header::SET_COOKIE, "tg_pref=dark; Path=/; SameSite=Strict"),
                ]),
                Html("<!doctype html><title>Cookies</title><p id=\"done\">set</p>"),
            )
        }),
    ))
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{site}/")).await;
    browser.wait_for("#done", WAIT).await;

    let session = browser.cookie("tg_session").await.expect("tg_session set");
    assert_eq!(session.value, "s3cret");
    assert!(session.http_only);
    assert!(!session.secure);
    assert_eq!(session.same_site.as_deref(), Some("Lax"));
    assert_eq!(session.path.as_deref(), Some("/"));
    assert_eq!(session.expiry, None, "a session cookie has no expiry");

    let pref = browser.cookie("tg_pref").await.expect("tg_pref set");
    assert!(!pref.http_only);
    assert_eq!(pref.same_site.as_deref(), Some("Strict"));
    // Only the script-visible cookie reaches document.cookie.
    assert_eq!(
        browser.execute("return document.cookie;", vec![]).await,
        "tg_pref=dark"
    );

    browser.delete_cookies().await;
    assert_eq!(browser.cookies().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_browser_cannot_reach_anything_beyond_loopback() {
    if !e2e::require_browser("check the browser's network fence") {
        return;
    }
    // Targets chosen so that even a broken fence would send nothing off the machine:
    // `.invalid` never resolves (RFC 6761 §6.4), and 127.0.0.2 is loopback, yet outside the
    // browser's direct list, so it stands in for any IP literal.
    let site = serve(Router::new().route(
        "/",
        get(|| async {
            Html(
                "<!doctype html><title>Out</title>\
                 <img src=\"https://teamgate-e2e.invalid/tls.png\">\
                 <img src=\"http://127.0.0.2/literal.png\">\
                 <a id=\"out\" href=\"http://teamgate-e2e.invalid/leak?x=1\">out</a>",
            )
        }),
    ))
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{site}/")).await;
    browser.click("#out").await;
    browser
        .wait_for_url(|url| url.contains("teamgate-e2e.invalid"), WAIT)
        .await;
    assert!(browser.page_source().await.contains(BLOCKED_BODY));

    for expected in [
        "CONNECT teamgate-e2e.invalid:443 HTTP/1.1",
        "GET http://127.0.0.2/literal.png HTTP/1.1",
        "GET http://teamgate-e2e.invalid/leak?x=1 HTTP/1.1",
    ] {
        assert!(
            eventually(WAIT, || browser
                .blocked_requests()
                .iter()
                .any(|r| r == expected)),
            "{expected:?} not among the blocked requests {:?}",
            browser.blocked_requests()
        );
    }
}

#[test]
fn goto_accepts_loopback_urls_only() {
    for url in [
        "http://127.0.0.1:8080/",
        "http://localhost:1/x",
        "http://[::1]:9/",
        "http://app.teamgate.localhost:9/",
    ] {
        assert!(is_loopback_url(url), "{url}");
    }
    for url in [
        "http://teamgate-e2e.invalid/",
        "https://login.microsoftonline.com/",
        "http://127.0.0.1.nip.io/",
        "http://localhost.example.com/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
        "not a url",
    ] {
        assert!(!is_loopback_url(url), "{url}");
    }
}

/// Echoes the header nginx adds, and the client address nginx forwards.
async fn echo_headers(headers: HeaderMap) -> impl IntoResponse {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("<absent>")
            .to_string()
    };
    format!(
        "added={} forwarded_for={} host={}",
        get("x-added-by-nginx"),
        get("x-forwarded-for"),
        get("host")
    )
}

#[tokio::test]
async fn nginx_proxies_to_an_upstream_and_the_header_it_adds_arrives() {
    if !e2e::require_nginx("proxy through a real nginx") {
        return;
    }
    let started = Instant::now();
    let upstream = serve(Router::new().route("/echo", get(echo_headers))).await;
    let nginx = Nginx::start_server(&format!(
        "    location / {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host:$server_port;
        proxy_set_header X-Added-By-Nginx \"yes, port $server_port\";
        proxy_set_header X-Forwarded-For $remote_addr;
    }}"
    ));

    let response = reqwest::get(nginx.url_for("/echo")).await.unwrap();
    assert_eq!(response.status(), 200);
    let server = response.headers()["server"].to_str().unwrap().to_string();
    assert!(server.starts_with("nginx"), "answered by {server}");
    let body = response.text().await.unwrap();
    let port = nginx.port();
    assert_eq!(
        body,
        format!("added=yes, port {port} forwarded_for=127.0.0.1 host=127.0.0.1:{port}")
    );

    assert!(nginx.url().ends_with(&format!(":{port}")));
    // nginx logs a request once it is done with it, which may be after the client has read it.
    let logged = || {
        std::fs::read_to_string(nginx.access_log())
            .unwrap_or_default()
            .contains("\"GET /echo HTTP/1.1\" 200")
    };
    assert!(
        eventually(Duration::from_secs(5), logged),
        "not in the access log"
    );
    assert!(nginx.error_log().exists());
    eprintln!("nginx start and proxied request: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_loads_a_page_through_nginx() {
    if !e2e::require_browser("browse through nginx") || !e2e::require_nginx("browse through nginx")
    {
        return;
    }
    let upstream = serve(form_site()).await;
    let nginx = Nginx::start_server(&format!(
        "    location / {{ proxy_pass http://{upstream}; }}"
    ));
    let browser = Browser::start().await;
    browser.goto(&nginx.url_for("/")).await;
    browser.fill("#name", "Grace").await;
    browser.click("#send").await;
    browser.wait_for("#greeting", WAIT).await;
    assert_eq!(browser.text("#greeting").await, "Hello, Grace!");
}

#[test]
fn nginx_reports_a_config_it_rejects_with_its_own_message() {
    if !e2e::require_nginx("check nginx's start-up errors") {
        return;
    }
    let error = Nginx::try_start("server { listen {LISTEN}; no_such_directive on; }")
        .err()
        .expect("nginx refused the config");
    assert!(
        error.contains("unknown directive \"no_such_directive\""),
        "{error}"
    );
}

#[test]
fn an_installed_binary_is_found_and_a_missing_one_is_skipped_or_fails_when_required() {
    assert!(e2e::find("sh").is_some(), "sh is on every machine");
    assert_eq!(e2e::find("/nonexistent/teamgate-e2e-tool"), None);

    let found = Some("/usr/bin/chromium".into());
    assert_eq!(
        e2e::decide("/usr/bin/chromium", "browse", found, "t", true),
        Decision::Run("/usr/bin/chromium".into())
    );
    let skipped = "SKIPPED some_test: /usr/sbin/nginx not installed \
                   (run scripts/install-e2e-deps.sh) - needed to proxy";
    assert_eq!(
        e2e::decide("/usr/sbin/nginx", "proxy", None, "some_test", false),
        Decision::Skip(skipped.to_string())
    );
    assert_eq!(
        e2e::decide("/usr/sbin/nginx", "proxy", None, "some_test", true),
        Decision::Fail(skipped.to_string())
    );
}

/// Start a browser, show a page, drop it, and expect its whole process group gone.
async fn browser_leaves_nothing_running() {
    let site = serve(Router::new().route("/", get(|| async { Html("<p id=\"x\">x</p>") }))).await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{site}/")).await;
    let group = browser.process_group();
    let in_group = move || live_processes(|_, _, g| g == group);
    assert!(
        in_group().len() > 1,
        "ChromeDriver and Chromium are running"
    );
    drop(browser);
    assert!(
        eventually(Duration::from_secs(5), || in_group().is_empty()),
        "still running: {:?}",
        in_group()
    );
}

#[tokio::test]
async fn dropping_a_browser_on_a_current_thread_runtime_kills_driver_and_browser() {
    if !e2e::require_browser("check the browser's clean-up") {
        return;
    }
    browser_leaves_nothing_running().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_browser_on_a_multi_thread_runtime_quits_it_and_ends_the_driver() {
    if !e2e::require_browser("check the browser's clean-up") {
        return;
    }
    browser_leaves_nothing_running().await;
}

#[tokio::test]
async fn dropping_nginx_stops_its_master_and_its_workers() {
    if !e2e::require_nginx("check nginx's clean-up") {
        return;
    }
    let nginx = Nginx::start_server("    location / { return 204; }");
    let master = nginx.pid();
    let response = reqwest::get(nginx.url_for("/")).await.unwrap();
    assert_eq!(response.status(), 204, "a worker answered");
    let workers = live_processes(|_, parent, _| parent == master);
    assert!(!workers.is_empty(), "nginx runs worker processes");

    drop(nginx);
    let alive = || live_processes(|pid, _, _| pid == master || workers.contains(&pid));
    assert!(
        eventually(Duration::from_secs(5), || alive().is_empty()),
        "still running: {:?}",
        alive()
    );
}

#[tokio::test]
async fn nginx_buffers_a_large_request_body_in_its_own_temp_dir() {
    if !e2e::require_nginx("proxy a large body through a real nginx") {
        return;
    }
    // A body past `client_body_buffer_size` goes to client_body_temp, which the worker must
    // be able to write.
    let upstream = serve(Router::new().route(
        "/upload",
        post(|body: axum::body::Bytes| async move { body.len().to_string() }),
    ))
    .await;
    let nginx = Nginx::start_server(&format!(
        "    client_body_buffer_size 1k;
    client_max_body_size 1m;
    location / {{ proxy_pass http://{upstream}; }}"
    ));
    let response = reqwest::Client::new()
        .post(nginx.url_for("/upload"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{}",
        std::fs::read_to_string(nginx.error_log()).unwrap()
    );
    assert_eq!(response.text().await.unwrap(), "100000");
}

#[tokio::test]
async fn caddy_serves_a_caddyfile_on_its_port_and_dropping_it_stops_it() {
    if !e2e::require_caddy("check the Caddy harness") {
        return;
    }
    let caddy = tokio::task::spawn_blocking(|| {
        crate::support::caddy::Caddy::start(
            "http://127.0.0.1:{PORT} {\n\trespond \"caddy here\" 200\n}\n",
        )
    })
    .await
    .unwrap();
    let pid = caddy.pid();
    let answer = reqwest::get(format!("http://127.0.0.1:{}/", caddy.port()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "caddy here");
    // Its admin endpoint is off: nothing listens on Caddy's default :2019 for this instance,
    // and its data stays in the harness's directory.
    assert!(caddy.config().contains("admin off"));
    assert!(caddy.data_dir().starts_with(caddy.dir()));
    drop(caddy);
    assert!(
        eventually(Duration::from_secs(5), || {
            live_processes(|p, _, _| p == pid).is_empty()
        }),
        "caddy is still running"
    );
}
