//! Which backend the suite runs on, and a fresh database per test. `TEAMGATE_TEST_BACKEND=postgres`
//! runs every test on PostgreSQL (`.ci/run` runs the suite once per backend): each test gets
//! its own database `tg_<pid>_<random>` on the server at [`SERVER`], dropped when the test's
//! app is dropped (and, should a run die, by the next run, which drops the databases of
//! processes that no longer exist). Tests that need PostgreSQL whatever the backend (replicas)
//! ask [`require`], which skips with a printed reason, or fails under `TEAMGATE_REQUIRE_E2E=1`.

use std::path::Path;
use std::sync::OnceLock;

/// The test server: trust authentication on the loopback (scripts/install-e2e-deps.sh).
pub const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
/// The environment variable choosing the backend of the whole suite.
pub const BACKEND_ENV: &str = "TEAMGATE_TEST_BACKEND";

/// True when the suite runs on PostgreSQL.
pub fn suite_on_postgres() -> bool {
    std::env::var(BACKEND_ENV).is_ok_and(|v| v == "postgres")
}

/// Run `sql` (one batch of statements) on `server`, on a thread and runtime of its own
/// (callers may be inside or outside a runtime, or in a `Drop`).
pub fn batch_on(server: &str, sql: &str) -> Result<(), String> {
    let (server, sql) = (server.to_owned(), sql.to_owned());
    on_thread(async move {
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let out = client.batch_execute(&sql).await.map_err(|e| e.to_string());
        drop(client);
        let _ = driver.await;
        out
    })
}

/// The rows of `sql` on `server`, every column read as text (`sql` casts what it selects).
pub fn rows_on(server: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let (server, sql) = (server.to_owned(), sql.to_owned());
    on_thread(async move {
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let out = client
            .simple_query(&sql)
            .await
            .map_err(|e| e.to_string())
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                        }
                        _ => None,
                    })
                    .collect()
            });
        drop(client);
        let _ = driver.await;
        out
    })
}

fn on_thread<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(f)
    })
    .join()
    .map_err(|_| "the PostgreSQL admin thread panicked".to_owned())?
}

/// [`batch_on`] the test server.
pub fn batch(sql: &str) -> Result<(), String> {
    batch_on(SERVER, sql)
}

/// Whether the test server answers (asked once per run).
pub fn available() -> Result<(), String> {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    UP.get_or_init(|| {
        batch("SELECT 1")?;
        drop_orphans();
        Ok(())
    })
    .clone()
}

/// `true` when PostgreSQL answers; otherwise prints `SKIPPED <test>: ...` and returns false,
/// or panics under `TEAMGATE_REQUIRE_E2E=1`.
pub fn require(why: &str) -> bool {
    match available() {
        Ok(()) => true,
        Err(e) => {
            let line = format!(
                "SKIPPED {}: PostgreSQL not reachable at 127.0.0.1:5432 ({e}); run scripts/install-e2e-deps.sh - needed to {why}",
                super::e2e::current_test()
            );
            if std::env::var(super::e2e::REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{line} [{}=1 forbids skipping]", super::e2e::REQUIRE_ENV);
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
            false
        }
    }
}

/// Drop test databases whose process is gone (a run that was killed).
fn drop_orphans() {
    let listed = rows_on(
        SERVER,
        "SELECT datname FROM pg_database WHERE datname LIKE 'tg\\_%'",
    )
    .unwrap_or_default();
    for row in listed {
        let Some(Some(name)) = row.into_iter().next() else {
            continue;
        };
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = batch(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

/// A database of one test: a SQLite path in the test's directory, or a PostgreSQL database
/// created for it and dropped with this value.
pub struct TestDb {
    /// What `server.database` says.
    pub setting: String,
    /// The PostgreSQL database's name.
    pub pg_name: Option<String>,
}

impl TestDb {
    /// A fresh database for a test whose files live in `dir`, on the suite's backend.
    pub fn fresh(dir: &Path) -> TestDb {
        if suite_on_postgres() {
            if let Err(e) = available() {
                panic!(
                    "{BACKEND_ENV}=postgres but PostgreSQL is not reachable at 127.0.0.1:5432 ({e}); run scripts/install-e2e-deps.sh"
                );
            }
            return Self::postgres();
        }
        TestDb {
            setting: dir.join("teamgate.db").display().to_string(),
            pg_name: None,
        }
    }

    /// A SQLite file in `dir` whatever the suite's backend.
    pub fn sqlite(dir: &Path) -> TestDb {
        TestDb {
            setting: dir.join("teamgate.db").display().to_string(),
            pg_name: None,
        }
    }

    /// A fresh PostgreSQL database whatever the suite's backend (call [`require`] first).
    pub fn postgres() -> TestDb {
        let name = format!("tg_{}_{}", std::process::id(), rand_suffix());
        batch(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        TestDb {
            setting: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            pg_name: Some(name),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_name.is_some()
    }

    /// A connection string to this test's PostgreSQL database.
    pub fn pg_conninfo(&self) -> Option<String> {
        self.pg_name
            .as_ref()
            .map(|n| format!("host=127.0.0.1 port=5432 user=postgres dbname={n}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let _ = batch(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos}", N.fetch_add(1, Ordering::Relaxed))
}
