//! Whether the real programs an end-to-end test drives (Chromium, ChromeDriver, nginx, Caddy) are
//! installed: a test asks first, and is skipped with a printed reason when one is missing,
//! unless `TEAMGATE_REQUIRE_E2E=1` (set by CI), where a missing program fails the test.

use std::path::{Path, PathBuf};

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver (package `chromium-driver`), the same version as [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's nginx (package `nginx`).
pub const NGINX: &str = "/usr/sbin/nginx";
/// Debian's Caddy (package `caddy`).
pub const CADDY: &str = "/usr/bin/caddy";
/// SQLite's shell (package `sqlite3`), as the README's backup uses it.
pub const SQLITE3: &str = "/usr/bin/sqlite3";
/// systemd's unit checker (package `systemd`).
pub const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// The environment variable that turns a skip into a failure, so that CI cannot pass green
/// with the end-to-end tests silently skipped.
pub const REQUIRE_ENV: &str = "TEAMGATE_REQUIRE_E2E";

/// The path of `binary` (an absolute path such as [`NGINX`], or a bare name looked up in
/// `PATH`, `/usr/sbin` and `/usr/bin`) if it is installed.
///
/// When it is not: prints `SKIPPED <test>: <binary> not installed (run
/// scripts/install-e2e-deps.sh) - needed to <why>` and returns `None`, so the test returns
/// early; with `TEAMGATE_REQUIRE_E2E=1` it panics with that reason instead.
pub fn require(binary: &str, why: &str) -> Option<PathBuf> {
    let strict = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    match decide(binary, why, find(binary), &current_test(), strict) {
        Decision::Run(path) => Some(path),
        Decision::Skip(line) => {
            // Straight to the process's stderr: libtest captures `println!`/`eprintln!` of
            // passing tests, and a skip must be seen in the run's output.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
            None
        }
        Decision::Fail(line) => panic!("{line} [{REQUIRE_ENV}=1 forbids skipping]"),
    }
}

/// `true` when both Chromium and ChromeDriver are installed (see [`require`]).
pub fn require_browser(why: &str) -> bool {
    // Ask for both even when the first is missing, so the message names everything to install.
    let chromium = require(CHROMIUM, why).is_some();
    let driver = require(CHROMEDRIVER, why).is_some();
    chromium && driver
}

/// `true` when `python3` can import every module of `modules` (see [`require`]): the
/// independent SCIM checker (scim2-tester) that scripts/install-e2e-deps.sh installs.
pub fn require_python_modules(modules: &str, why: &str) -> bool {
    let strict = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("python3"));
    let what = format!("python3 with {modules}");
    match decide(&what, why, found, &current_test(), strict) {
        Decision::Run(_) => true,
        Decision::Skip(line) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
            false
        }
        Decision::Fail(line) => panic!("{line} [{REQUIRE_ENV}=1 forbids skipping]"),
    }
}

/// `true` when nginx is installed (see [`require`]).
pub fn require_nginx(why: &str) -> bool {
    require(NGINX, why).is_some()
}

/// `true` when Caddy is installed (see [`require`]).
pub fn require_caddy(why: &str) -> bool {
    require(CADDY, why).is_some()
}

/// What [`require`] does, as a value, so that it can be tested without touching the
/// environment.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Run(PathBuf),
    Skip(String),
    Fail(String),
}

/// The pure part of [`require`].
pub fn decide(
    binary: &str,
    why: &str,
    found: Option<PathBuf>,
    test: &str,
    strict: bool,
) -> Decision {
    match found {
        Some(path) => Decision::Run(path),
        None => {
            let line = format!(
                "SKIPPED {test}: {binary} not installed (run scripts/install-e2e-deps.sh) \
                 - needed to {why}"
            );
            if strict {
                Decision::Fail(line)
            } else {
                Decision::Skip(line)
            }
        }
    }
}

/// Where `binary` is installed, if anywhere.
pub fn find(binary: &str) -> Option<PathBuf> {
    let path = Path::new(binary);
    if path.is_absolute() {
        return is_executable(path).then(|| path.to_path_buf());
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// libtest names each test's thread after the test.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}
