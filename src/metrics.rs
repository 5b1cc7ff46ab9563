//! Prometheus metrics: a small process-wide registry of counters and one latency histogram,
//! rendered in the text exposition format at `/metrics`. Other modules bump counters through
//! the free functions below ([`inc_login`], [`add_reconcile_changes`], [`inc_graph_call`]);
//! HTTP latency and SCIM request statuses are recorded by [`middleware`] for every request.
//!
//! The registry is a process-wide static on purpose, the one exception to "no globals":
//! counters describe the process (as Prometheus client libraries do everywhere), and a free
//! function lets any module count without threading a handle through every call. In tests,
//! several apps share one process, so tests compare values before and after.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as PromFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;
use serde::Serialize;

/// The content type of [`render`]'s output: the OpenMetrics text format, which Prometheus
/// (2.5 and later) and every scraper that speaks its text format read.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Most distinct label sets one counter family keeps; later ones are counted under
/// `other`, so a stream of odd values (provider ids in SCIM URLs) cannot grow memory.
const MAX_SERIES: usize = 256;
/// Most providers whose SCIM activity is remembered for the admin page.
const MAX_SCIM_PROVIDERS: usize = 64;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route classes latency is recorded under: the first path segment, from a fixed list,
/// so that the label set is bounded whatever paths clients send.
const ROUTES: [&str; 14] = [
    "home",
    "login",
    "callback",
    "logout",
    "auth",
    "api",
    "scim",
    "admin",
    "demo-idp",
    "well-known",
    "healthz",
    "readyz",
    "metrics",
    "other",
];

/// Status classes, by the first digit of the status.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn route_index(path: &str) -> usize {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let name = match first {
        "" => "home",
        ".well-known" => "well-known",
        other => other,
    };
    ROUTES
        .iter()
        .position(|r| *r == name)
        .unwrap_or(ROUTES.len() - 1)
}

/// Labels of the latency histogram: static strings, so the hot path allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// Labels given by name at run time (provider ids, results).
type Labels = Vec<(&'static str, String)>;

/// A counter family with labels and a bound on its series (see [`MAX_SERIES`]).
struct Family {
    labels: &'static [&'static str],
    counters: PromFamily<Labels, Counter>,
    /// The label values seen so far, to enforce the bound.
    seen: Mutex<BTreeSet<Vec<String>>>,
}

impl Family {
    /// A family registered as `name` (without its `_total` suffix, which the exposition
    /// adds to every counter sample).
    fn new(
        registry: &mut PromRegistry,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        let counters = PromFamily::<Labels, Counter>::default();
        registry.register(name, help, counters.clone());
        Self {
            labels,
            counters,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    fn key(&self, values: &[&str]) -> Labels {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut seen = lock(&self.seen);
        let values = if seen.contains(&values) || seen.len() < MAX_SERIES {
            seen.insert(values.clone());
            values
        } else {
            vec!["other".to_owned(); self.labels.len()]
        };
        self.labels.iter().copied().zip(values).collect()
    }

    fn add(&self, values: &[&str], n: u64) {
        self.counters.get_or_create(&self.key(values)).inc_by(n);
    }

    fn get(&self, values: &[&str]) -> u64 {
        let key: Labels = self
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(|v| (*v).to_owned()))
            .collect();
        self.counters.get(&key).map_or(0, |c| c.get())
    }
}

/// What the admin page shows about one provider's SCIM traffic since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScimActivity {
    pub requests: u64,
    pub errors: u64,
    pub last_request_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error_at: Option<String>,
    pub last_error_status: Option<u16>,
    pub by_status: BTreeMap<u16, u64>,
}

struct Registry {
    started: Instant,
    /// Everything `/metrics` shows, in registration order.
    prometheus: PromRegistry,
    uptime: Gauge<f64, AtomicU64>,
    latency: PromFamily<RouteLabels, Histogram, fn() -> Histogram>,
    requests: PromFamily<HttpLabels, Counter>,
    logins: Family,
    reconcile: Family,
    scim: Family,
    graph: Family,
    reloads: Family,
    scim_activity: Mutex<BTreeMap<String, ScimActivity>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut prometheus = PromRegistry::default();
    let build = PromFamily::<VersionLabels, Gauge>::default();
    build
        .get_or_create(&VersionLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    prometheus.register("teamgate_build_info", "The running teamgate version", build);
    let uptime = Gauge::<f64, AtomicU64>::default();
    prometheus.register(
        "teamgate_uptime_seconds",
        "Seconds since the process started counting",
        uptime.clone(),
    );
    let logins = Family::new(
        &mut prometheus,
        "teamgate_logins",
        "Completed login attempts by provider and result (ok, or why refused)",
        &["provider", "result"],
    );
    let reconcile = Family::new(
        &mut prometheus,
        "teamgate_reconcile_changes",
        "Memberships added or removed by reconcile, by trigger (login, scim, config) and change; counted when applied, so a refused login rolled back afterwards still counts",
        &["trigger", "change"],
    );
    let scim = Family::new(
        &mut prometheus,
        "teamgate_scim_requests",
        "SCIM requests by provider (the one whose token authenticated them; `unauthenticated` when none did) and HTTP status",
        &["provider", "status"],
    );
    let graph = Family::new(
        &mut prometheus,
        "teamgate_graph_calls",
        "Microsoft Graph (and Okta API) group look-ups by provider and result",
        &["provider", "result"],
    );
    let reloads = Family::new(
        &mut prometheus,
        "teamgate_config_reloads",
        "Config reloads by result (applied, refused, failed)",
        &["result"],
    );
    let requests = PromFamily::<HttpLabels, Counter>::default();
    prometheus.register(
        "teamgate_http_requests",
        "HTTP responses by route class and status class",
        requests.clone(),
    );
    let latency = PromFamily::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
        latency_histogram,
    );
    prometheus.register(
        "teamgate_http_request_duration_seconds",
        "Time to produce a response, by route class",
        latency.clone(),
    );
    Registry {
        started: Instant::now(),
        prometheus,
        uptime,
        latency,
        requests,
        logins,
        reconcile,
        scim,
        graph,
        reloads,
        scim_activity: Mutex::new(BTreeMap::new()),
    }
});

/// A poisoned metrics lock still holds valid counts; keep counting.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Count one login attempt that reached a verdict: `result` is `ok` or a short reason
/// (`no_teams`, `disabled`, `domain`, `idp_error`, ...; keep the set small).
pub fn inc_login(provider: &str, result: &str) {
    REGISTRY.logins.add(&[provider, result], 1);
}

/// Count the memberships one reconcile added and removed; `trigger` is the audit trigger
/// kind (`login`, `scim`, `config`, `admin`, `cli`).
pub fn add_reconcile_changes(trigger: &str, added: usize, removed: usize) {
    if added > 0 {
        REGISTRY.reconcile.add(&[trigger, "add"], added as u64);
    }
    if removed > 0 {
        REGISTRY.reconcile.add(&[trigger, "remove"], removed as u64);
    }
}

/// Count one Microsoft Graph / Okta API call: `result` is `ok`, `error`, `throttled`, ...
pub fn inc_graph_call(provider: &str, result: &str) {
    REGISTRY.graph.add(&[provider, result], 1);
}

/// Count one config reload: `applied`, `refused` (invalid file) or `failed` (store error).
pub fn inc_config_reload(result: &str) {
    REGISTRY.reloads.add(&[result], 1);
}

/// The current value of `teamgate_logins_total{provider, result}` (tests and the admin page).
pub fn logins(provider: &str, result: &str) -> u64 {
    REGISTRY.logins.get(&[provider, result])
}

/// The current value of `teamgate_config_reloads_total{result}`.
pub fn config_reloads(result: &str) -> u64 {
    REGISTRY.reloads.get(&[result])
}

/// Record one SCIM response for `provider` (called by [`middleware`]).
fn record_scim(provider: &str, status: u16) {
    REGISTRY.scim.add(&[provider, &status.to_string()], 1);
    let now = crate::domain::clock::timestamp(time::OffsetDateTime::now_utc());
    let mut activity = lock(&REGISTRY.scim_activity);
    if !activity.contains_key(provider) && activity.len() >= MAX_SCIM_PROVIDERS {
        return;
    }
    let a = activity.entry(provider.to_owned()).or_default();
    a.requests += 1;
    a.last_request_at = Some(now.clone());
    a.last_status = Some(status);
    *a.by_status.entry(status).or_insert(0) += 1;
    if status >= 400 {
        a.errors += 1;
        a.last_error_at = Some(now);
        a.last_error_status = Some(status);
    }
}

/// SCIM traffic per provider since the process started.
pub fn scim_activity() -> BTreeMap<String, ScimActivity> {
    lock(&REGISTRY.scim_activity).clone()
}

/// Times every request (by route class) and records SCIM statuses per provider.
/// The provider a SCIM request authenticated as, set by the SCIM authentication once the
/// bearer token is checked. SCIM metrics take their provider label from here, never from the
/// URL: a configured provider id, and only for a caller holding its token, so junk paths
/// cannot create series or push real providers into `other`.
#[derive(Debug, Clone, Default)]
pub struct ScimLabel(Arc<OnceLock<String>>);

impl ScimLabel {
    /// Record the authenticated provider (the first call wins).
    pub fn set(&self, provider: &str) {
        let _ = self.0.set(provider.to_owned());
    }
}

/// The label of SCIM requests that did not authenticate.
pub const SCIM_UNAUTHENTICATED: &str = "unauthenticated";

pub async fn middleware(mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_index(request.uri().path());
    // Only SCIM requests carry a label slot; other requests, the hot /auth path among them,
    // allocate nothing here.
    let scim = (ROUTES[route] == "scim").then(|| {
        let label = ScimLabel::default();
        request.extensions_mut().insert(label.clone());
        label
    });
    let response = next.run(request).await;
    let status = response.status().as_u16();
    observe(route, start.elapsed().as_secs_f64(), status);
    if let Some(label) = scim {
        match label.0.get() {
            Some(provider) => record_scim(provider, status),
            None => REGISTRY
                .scim
                .add(&[SCIM_UNAUTHENTICATED, &status.to_string()], 1),
        }
    }
    response
}

/// The current value of `teamgate_scim_requests_total{provider, status}`.
pub fn scim_requests(provider: &str, status: u16) -> u64 {
    REGISTRY.scim.get(&[provider, &status.to_string()])
}

/// How many label sets `teamgate_scim_requests_total` holds.
pub fn scim_series() -> usize {
    lock(&REGISTRY.scim.seen).len()
}

/// Record one response of route class `route` (an index into [`ROUTES`]).
fn observe(route: usize, seconds: f64, status: u16) {
    let route = ROUTES[route];
    REGISTRY
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(seconds);
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    REGISTRY
        .requests
        .get_or_create(&HttpLabels {
            route,
            status: STATUS_CLASSES[class],
        })
        .inc();
}

/// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]), encoded by the
/// `prometheus-client` crate (which ends each HELP text with a full stop, and puts a
/// histogram's `le` label first).
pub fn render() -> String {
    let r = &*REGISTRY;
    r.uptime.set(r.started.elapsed().as_secs_f64());
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would still leave what was written.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r.prometheus) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_their_first_segment_only() {
        assert_eq!(ROUTES[route_index("/")], "home");
        assert_eq!(ROUTES[route_index("/scim/v2/entra/Users")], "scim");
        assert_eq!(ROUTES[route_index("/.well-known/jwks.json")], "well-known");
        assert_eq!(ROUTES[route_index("/wp-admin/evil")], "other");
    }

    #[test]
    fn a_family_stops_growing_at_its_series_limit() {
        let mut registry = PromRegistry::default();
        let f = Family::new(&mut registry, "t", "test", &["k"]);
        for i in 0..(MAX_SERIES + 10) {
            f.add(&[&i.to_string()], 1);
        }
        assert_eq!(f.get(&["other"]), 10);
        assert_eq!(lock(&f.seen).len(), MAX_SERIES);
    }

    #[test]
    fn the_exposition_keeps_every_metric_name_and_label() {
        observe(route_index("/readyz"), 0.0001, 200);
        observe(route_index("/readyz"), 20.0, 503);
        inc_login("unit-test-provider", "ok");
        add_reconcile_changes("unit-test", 1, 0);
        inc_graph_call("unit-test-provider", "ok");
        inc_config_reload("unit-test");
        record_scim("unit-test-provider", 201);
        let text = render();
        for expected in [
            "teamgate_build_info{version=\"",
            "# TYPE teamgate_uptime_seconds gauge",
            "teamgate_logins_total{provider=\"unit-test-provider\",result=\"ok\"} ",
            "teamgate_reconcile_changes_total{trigger=\"unit-test\",change=\"add\"} ",
            "teamgate_graph_calls_total{provider=\"unit-test-provider\",result=\"ok\"} ",
            "teamgate_config_reloads_total{result=\"unit-test\"} ",
            "teamgate_scim_requests_total{provider=\"unit-test-provider\",status=\"201\"} ",
            "teamgate_http_requests_total{route=\"readyz\",status=\"2xx\"} ",
            "teamgate_http_requests_total{route=\"readyz\",status=\"5xx\"} ",
            "# TYPE teamgate_http_request_duration_seconds histogram",
            "teamgate_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"readyz\"} ",
            "teamgate_http_request_duration_seconds_count{route=\"readyz\"} ",
            "# HELP teamgate_logins Completed login attempts by provider and result (ok, or why refused).\n",
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        inc_login("unit\"test", "a\\b");
        assert!(render().contains(r#"provider="unit\"test",result="a\\b""#));
    }
}
