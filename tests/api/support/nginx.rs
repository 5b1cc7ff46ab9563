//! A real nginx in front of the app, as production runs it: started in the foreground as a
//! child on a free loopback port, with everything it writes (config, logs, pid, temp files)
//! in its own temp directory; the caller supplies the `http {}` contents. Stopped on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::e2e;

/// How long nginx gets to accept connections, and then to stop.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A port picked by the kernel can be taken by another test before nginx binds it.
const ATTEMPTS: usize = 5;

/// A running nginx. See the module doc.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Nginx {
    /// Start nginx with `http_config` placed inside the generated `http {}` block, in which
    /// `{LISTEN}` is replaced by `127.0.0.1:PORT` (every `server` that should be reachable
    /// at [`Nginx::url`] listens there) and `{PORT}` by the port. Waits until the port
    /// accepts connections; panics with nginx's own error when it cannot start.
    ///
    /// ```text
    /// Nginx::start("server { listen {LISTEN}; location / { proxy_pass http://127.0.0.1:3000; } }")
    /// ```
    pub fn start(http_config: &str) -> Nginx {
        Nginx::try_start(http_config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Nginx::start`] with one `server { listen {LISTEN}; ... }` around `server_body`.
    pub fn start_server(server_body: &str) -> Nginx {
        Nginx::start(&format!(
            "server {{\n    listen {{LISTEN}};\n    server_name _;\n{server_body}\n}}"
        ))
    }

    /// [`Nginx::start`], returning nginx's complaint (stderr and error log) instead of
    /// panicking when it will not start, such as for a config it rejects.
    pub fn try_start(http_config: &str) -> Result<Nginx, String> {
        assert!(
            http_config.contains("{LISTEN}"),
            "the nginx config must `listen {{LISTEN}};` so that it listens on its loopback port"
        );
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match Nginx::attempt(http_config) {
                Ok(nginx) => return Ok(nginx),
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The port nginx listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// nginx's error log (level `info`).
    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// nginx's access log (the default `combined` format unless the config says otherwise).
    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// The directory holding the config, logs, pid and temp files; a test may put files
    /// for nginx to serve here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master process (its workers are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The generated config, for a failure message.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx.conf")).unwrap_or_default()
    }

    fn attempt(http_config: &str) -> Result<Nginx, String> {
        let dir = TempDir::new().unwrap();
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, http_config)).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(e2e::NGINX)
            .args(args(dir.path()))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", e2e::NGINX))?;
        let mut nginx = Nginx { child, port, dir };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!(
                    "nginx exited at start ({status}):\n{}\n--- config ---\n{}",
                    nginx.complaints(),
                    nginx.config()
                ));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(nginx);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nginx did not accept connections on {address} in {START_TIMEOUT:?}:\n{}",
                    nginx.complaints()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn complaints(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM through nginx's own `-s stop`: the master stops its workers before it exits,
        // where a SIGKILL to the master would leave the workers serving on.
        let _ = Command::new(e2e::NGINX)
            .args(args(self.dir.path()))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `-p`, `-c` and `-e` pointing into `dir`, so that nginx touches no path outside it (`-e`
/// also covers the error log nginx opens before it has read the config).
fn args(dir: &Path) -> Vec<String> {
    vec![
        "-p".to_string(),
        format!("{}/", dir.display()),
        "-c".to_string(),
        dir.join("nginx.conf").display().to_string(),
        "-e".to_string(),
        dir.join("error.log").display().to_string(),
    ]
}

fn config(dir: &Path, port: u16, http_config: &str) -> String {
    let d = dir.display();
    // As root, workers would otherwise run as `nobody`, and work only while every path they
    // touch is world-traversable: tempfile's 0755 dirs under /tmp are, but a TMPDIR under
    // /root or a 0700 dir of the caller's is not (checked: a buffered request body then fails
    // with 500, "Permission denied"). As anyone else nginx cannot switch users: no directive.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let body = http_config
        .replace("{LISTEN}", &format!("127.0.0.1:{port}"))
        .replace("{PORT}", &port.to_string());
    format!(
        r#"# Generated by tests/api/support/nginx.rs
{user}worker_processes 1;
pid "{d}/nginx.pid";
error_log "{d}/error.log" info;

events {{
    worker_connections 256;
}}

http {{
    access_log "{d}/access.log";
    client_body_temp_path "{d}/client_body_temp";
    proxy_temp_path "{d}/proxy_temp";
    fastcgi_temp_path "{d}/fastcgi_temp";
    uwsgi_temp_path "{d}/uwsgi_temp";
    scgi_temp_path "{d}/scgi_temp";
    default_type application/octet-stream;

{body}
}}
"#
    )
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
