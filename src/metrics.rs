//! Prometheus metrics: a small process-wide registry of counters and one latency histogram,
//! rendered in the text exposition format at `/metrics`. Other modules bump counters through
//! the free functions below ([`inc_login`], [`add_reconcile_changes`], [`inc_graph_call`]);
//! HTTP latency and SCIM request statuses are recorded by [`middleware`] for every request.
//!
//! The registry is a process-wide static on purpose, the one exception to "no globals":
//! counters describe the process (as Prometheus client libraries do everywhere), and a free
//! function lets any module count without threading a handle through every call. In tests,
//! several apps share one process, so tests compare values before and after.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

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

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds: integer atomics, no float CAS loop on the hot path.
    sum_micros: AtomicU64,
    /// Responses by status class 1xx..5xx (index 0..4).
    by_class: [AtomicU64; 5],
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            by_class: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn observe(&self, seconds: f64, status: u16) {
        // Buckets are stored non-cumulatively and summed when rendered.
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = (seconds * 1e6).round();
        self.sum_micros.fetch_add(
            if micros.is_finite() && micros > 0.0 {
                micros as u64
            } else {
                0
            },
            Ordering::Relaxed,
        );
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// A counter with labels.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Family {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn add(&self, values: &[&str], n: u64) {
        let mut series = lock(&self.series);
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let key = if series.contains_key(&key) || series.len() < MAX_SERIES {
            key
        } else {
            vec!["other".to_owned(); self.labels.len()]
        };
        *series.entry(key).or_insert(0) += n;
    }

    fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.series).get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        for (values, n) in lock(&self.series).iter() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {n}", self.name, labels.join(","));
        }
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
    latency: [Histogram; ROUTES.len()],
    logins: Family,
    reconcile: Family,
    scim: Family,
    graph: Family,
    reloads: Family,
    scim_activity: Mutex<BTreeMap<String, ScimActivity>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    started: Instant::now(),
    latency: std::array::from_fn(|_| Histogram::new()),
    logins: Family::new(
        "teamgate_logins_total",
        "Completed login attempts by provider and result (ok, or why refused).",
        &["provider", "result"],
    ),
    reconcile: Family::new(
        "teamgate_reconcile_changes_total",
        "Memberships added or removed by reconcile, by trigger (login, scim, config) and change; counted when applied, so a refused login rolled back afterwards still counts.",
        &["trigger", "change"],
    ),
    scim: Family::new(
        "teamgate_scim_requests_total",
        "SCIM requests by provider (the one whose token authenticated them; `unauthenticated` when none did) and HTTP status.",
        &["provider", "status"],
    ),
    graph: Family::new(
        "teamgate_graph_calls_total",
        "Microsoft Graph (and Okta API) group look-ups by provider and result.",
        &["provider", "result"],
    ),
    reloads: Family::new(
        "teamgate_config_reloads_total",
        "Config reloads by result (applied, refused, failed).",
        &["result"],
    ),
    scim_activity: Mutex::new(BTreeMap::new()),
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

/// Times every request (by route class) and records SCIM statuses per provider.
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
    REGISTRY.latency[route].observe(start.elapsed().as_secs_f64(), status);
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
    lock(&REGISTRY.scim.series).len()
}

/// Escape a label value (exposition format: backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything, in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let r = &*REGISTRY;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP teamgate_build_info The running teamgate version."
    );
    let _ = writeln!(out, "# TYPE teamgate_build_info gauge");
    let _ = writeln!(
        out,
        "teamgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "# HELP teamgate_uptime_seconds Seconds since the process started counting."
    );
    let _ = writeln!(out, "# TYPE teamgate_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "teamgate_uptime_seconds {:.3}",
        r.started.elapsed().as_secs_f64()
    );
    for family in [&r.logins, &r.reconcile, &r.scim, &r.graph, &r.reloads] {
        family.render(&mut out);
    }
    let _ = writeln!(
        out,
        "# HELP teamgate_http_requests_total HTTP responses by route class and status class."
    );
    let _ = writeln!(out, "# TYPE teamgate_http_requests_total counter");
    for (route, h) in ROUTES.iter().zip(&r.latency) {
        for (i, n) in h.by_class.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "teamgate_http_requests_total{{route=\"{route}\",status=\"{}xx\"}} {n}",
                    i + 1
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP teamgate_http_request_duration_seconds Time to produce a response, by route class."
    );
    let _ = writeln!(
        out,
        "# TYPE teamgate_http_request_duration_seconds histogram"
    );
    for (route, h) in ROUTES.iter().zip(&r.latency) {
        let count = h.count.load(Ordering::Relaxed);
        if count == 0 {
            continue;
        }
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&h.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "teamgate_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "teamgate_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "teamgate_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum:.6}"
        );
        let _ = writeln!(
            out,
            "teamgate_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
        );
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
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_family_stops_growing_at_its_series_limit() {
        let f = Family::new("t_total", "test", &["k"]);
        for i in 0..(MAX_SERIES + 10) {
            f.add(&[&i.to_string()], 1);
        }
        assert_eq!(f.get(&["other"]), 10);
        assert_eq!(lock(&f.series).len(), MAX_SERIES + 1);
    }

    #[test]
    fn histogram_buckets_render_cumulatively() {
        let h = Histogram::new();
        h.observe(0.0001, 200);
        h.observe(0.003, 200);
        h.observe(20.0, 503);
        assert_eq!(h.count.load(Ordering::Relaxed), 3);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.by_class[4].load(Ordering::Relaxed), 1);
        inc_login("unit-test-provider", "ok");
        let text = render();
        assert!(
            text.contains("teamgate_logins_total{provider=\"unit-test-provider\",result=\"ok\"}")
        );
        assert!(text.contains("# TYPE teamgate_http_request_duration_seconds histogram"));
    }
}
