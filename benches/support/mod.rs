//! What the benchmark drivers share: a free loopback port, stopping a child server, reading a
//! process's CPU time from /proc, percentiles, and reading hand-parsed HTTP responses.
//! Included by each bench with `#[path = "support/mod.rs"] mod support;`.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status code and `Content-Length` (0 when absent) of an HTTP/1.1 response head.
pub fn status_and_length(head: &[u8]) -> (u16, usize) {
    let head = std::str::from_utf8(head).expect("ASCII headers");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (status, length)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// SIGTERM to the child we started (graceful shutdown), then wait; SIGKILL if it lingers.
pub fn stop(server: &mut Child) {
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// User + system CPU time of process `pid` ("self" for this one), from proc(5) fields 14-15.
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (the state), so field N is at index N - 3.
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 10)
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted
        .get(i)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

/// Which database a benchmark run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The backends to run: SQLite, and PostgreSQL too with `--backend postgres` (side by side in
/// the same run, on the same machine state).
pub fn backends() -> Vec<Backend> {
    let args: Vec<String> = std::env::args().collect();
    let postgres = args
        .windows(2)
        .any(|w| w[0] == "--backend" && w[1] == "postgres")
        || args.iter().any(|a| a == "--backend=postgres");
    if postgres {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        vec![Backend::Sqlite]
    }
}

/// The PostgreSQL server benchmarks use: the local one (trust authentication on the loopback,
/// as scripts/install-e2e-deps.sh sets it up).
pub const PG_SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A database for one benchmark run; a PostgreSQL one is dropped with it.
pub struct BenchDb {
    /// `server.database`.
    pub setting: String,
    pg_name: Option<String>,
}

impl BenchDb {
    pub fn new(backend: Backend, dir: &std::path::Path, name: &str) -> BenchDb {
        match backend {
            Backend::Sqlite => BenchDb {
                setting: dir.join(format!("{name}.db")).display().to_string(),
                pg_name: None,
            },
            Backend::Postgres => {
                let db = format!("tgbench_{}_{name}", std::process::id());
                pg_batch(&format!(
                    "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE); CREATE DATABASE \"{db}\""
                ));
                BenchDb {
                    setting: format!("postgres://postgres@127.0.0.1:5432/{db}"),
                    pg_name: Some(db),
                }
            }
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some(db) = self.pg_name.take() {
            pg_batch(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
    }
}

/// Run `sql` on the PostgreSQL server (separate statements: CREATE DATABASE cannot share a
/// transaction).
pub fn pg_batch(sql: &str) {
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(PG_SERVER, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL answers on 127.0.0.1:5432 (scripts/install-e2e-deps.sh)");
            let driver = tokio::spawn(conn);
            for statement in sql.split("; ") {
                client
                    .batch_execute(statement)
                    .await
                    .expect("the statement runs");
            }
            drop(client);
            let _ = driver.await;
        });
    })
    .join()
    .expect("the PostgreSQL thread");
}

/// Lines of a side-by-side table, collected while the runs print.
pub struct SideBySide {
    rows: std::sync::Mutex<Vec<(String, Backend, f64)>>,
}

impl SideBySide {
    pub const fn new() -> Self {
        SideBySide {
            rows: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, what: &str, backend: Backend, rate: f64) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.push((what.to_owned(), backend, rate));
        }
    }

    /// `what`: SQLite rate, PostgreSQL rate, and their ratio.
    pub fn print(&self, unit: &str) {
        let Ok(rows) = self.rows.lock() else { return };
        if !rows.iter().any(|(_, b, _)| *b == Backend::Postgres) {
            return;
        }
        println!();
        println!(
            "{:<40} {:>12} {:>12} {:>8}",
            format!("side by side ({unit})"),
            "SQLite",
            "PostgreSQL",
            "PG/SQLite"
        );
        let mut seen: Vec<&str> = Vec::new();
        for (what, _, _) in rows.iter() {
            if seen.contains(&what.as_str()) {
                continue;
            }
            seen.push(what);
            let of = |b: Backend| {
                rows.iter()
                    .find(|(w, bb, _)| w == what && *bb == b)
                    .map(|(_, _, r)| *r)
            };
            let (s, p) = (of(Backend::Sqlite), of(Backend::Postgres));
            let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
            let ratio = match (s, p) {
                (Some(s), Some(p)) if s > 0.0 => format!("{:.2}", p / s),
                _ => "-".to_owned(),
            };
            println!("{what:<40} {:>12} {:>12} {ratio:>8}", cell(s), cell(p));
        }
    }
}
