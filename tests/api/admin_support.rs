//! Helpers for the admin tests: the demo config with its placeholders, a demo-IdP sign-in
//! driven like a browser without JavaScript, the real `teamgate` binary run as a command or
//! as a server, and a dump of the database to prove that read-only commands change nothing.

// Shared by several test files; not every helper is used by each.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestApp;
pub use crate::helpers::{demo_config, demo_sign_in, hidden_inputs};

/// `text` with the placeholders filled in for `app`, as `spawn_app` did (the `/login` limit
/// too, so that a reload sees no change there).
pub fn fill(app: &TestApp, text: &str) -> String {
    crate::helpers::without_login_limit(text)
        .replace("{PUBLIC_URL}", &app.address)
        .replace("{DB}", &app.db.setting)
}

/// What `server.database` of `app` says (a file path or a PostgreSQL URL).
pub fn database(app: &TestApp) -> String {
    app.db.setting.clone()
}

/// The file the running app believes it was loaded from (reload re-reads it).
pub fn config_path(app: &TestApp) -> PathBuf {
    app.dir.path().join("teamgate.toml")
}

/// Write `text` (placeholders filled) to `name` in the app's directory; returns the path.
pub fn write_config(app: &TestApp, name: &str, text: &str) -> PathBuf {
    let path = app.dir.path().join(name);
    std::fs::write(&path, fill(app, text)).unwrap();
    path
}

/// Replace `from` by `to` in `text`, insisting that `from` occurs (so that a change to
/// config/demo.toml cannot silently turn a test into a no-op).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the config has no {from:?}");
    text.replacen(from, to, 1)
}

/// Sign in every demo user once, each with a fresh client.
pub async fn sign_in_all(app: &TestApp, emails: &[&str]) {
    for email in emails {
        demo_sign_in(app, &crate::helpers::new_browser(), email).await;
    }
}

/// Run the real `teamgate` binary with `args`.
pub fn teamgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything in the database that a command could change, as comparable text. The audit log,
/// memberships, users, teams, bindings, mappings and settings, in a fixed order.
pub async fn dump(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT id || '|' || at || '|' || action || '|' || COALESCE(team_id, '') FROM audit ORDER BY id",
        "SELECT user_id || '|' || team_id || '|' || source || '|' || via || '|' || since || '|' || confirmed_at FROM memberships ORDER BY 1",
        "SELECT id || '|' || email || '|' || updated_at || '|' || session_generation FROM users ORDER BY id",
        "SELECT id || '|' || name FROM teams ORDER BY id",
        "SELECT team_id || '|' || scope || '|' || role FROM role_bindings ORDER BY 1",
        "SELECT provider || '|' || group_key || '|' || team_id FROM mappings ORDER BY 1",
        "SELECT key || '=' || value FROM settings WHERE key NOT LIKE 'demo_idp%' ORDER BY key",
    ] {
        out.extend(crate::helpers::sql_column(&app.state, sql, &[]).await);
    }
    out
}

/// A `teamgate serve` child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub database: String,
    /// The server's log lines (JSON), in order.
    log: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Server {
    /// Start `teamgate serve --config config` (its `listen` should use port 0) and wait until
    /// it logs its port and, after writing the pid file `teamgate reload` needs, that it
    /// listens for SIGHUP.
    pub fn start(config: &Path, database: &str) -> Server {
        Self::start_full(config, database, &[], "info")
    }

    /// [`Server::start`] with more arguments to `serve` (e.g. `--listen`).
    pub fn start_with(config: &Path, database: &str, args: &[&str]) -> Server {
        Self::start_full(config, database, args, "info")
    }

    /// [`Server::start`] with `RUST_LOG=filter`.
    pub fn start_logging(config: &Path, database: &str, filter: &str) -> Server {
        Self::start_full(config, database, &[], filter)
    }

    fn start_full(config: &Path, database: &str, args: &[&str], filter: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_teamgate"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        // Drains the log for the server's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            database: database.to_owned(),
            log,
        };
        let listening = server.wait_for_log("listening");
        server.port = u16::try_from(listening["fields"]["port"].as_u64().unwrap()).unwrap();
        server.wait_for_log("`teamgate reload` or SIGHUP re-reads the config");
        server
    }

    /// The next log line whose message starts with `message` (earlier lines are skipped).
    pub fn wait_for_log(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the server never logged {message:?}"));
            if line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
            {
                return line;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Send `signal` to the server.
    pub fn signal(&self, signal: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_raw(self.pid()).unwrap(), signal)
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `done` every 20 ms until it holds; panics after `timeout`. Used only where the
/// awaited event has no signal but a visible effect (a file appears, a row is written by
/// another process).
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
