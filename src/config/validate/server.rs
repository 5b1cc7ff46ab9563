//! `[server]`: the public URL, listeners, database, lifetimes, timeouts, redirect origins and
//! trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{SecretKeys, Validator, is_loopback_host, parse_origin};
use crate::config::raw;
use crate::config::{Database, PgDatabase, ServerConfig, SslMode};
use crate::domain::secret::Secret;

impl Validator<'_> {
    pub(super) fn server(&mut self, s: &raw::RawServer) -> Option<ServerConfig> {
        let public_url = self.parse_with(&s.public_url, "server.public_url", |u| {
            let url = Url::parse(u).map_err(|e| {
                format!("\"{u}\" is not a URL ({e}); write e.g. https://login.example.com")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!("\"{u}\" must be an http(s) URL with a host"));
            }
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return Err(format!(
                    "\"{u}\" must not carry a query, fragment or user info"
                ));
            }
            if url.scheme() == "http" && !is_loopback_host(&url) {
                return Err(format!(
                    "\"{u}\" uses plain http on a non-loopback host; use https"
                ));
            }
            check_base_path(url.path()).map_err(|why| format!("\"{u}\": {why}"))?;
            Ok(url)
        });
        let cookie_domain = s.cookie_domain.as_ref().and_then(|d| {
            self.parse_with(d, "server.cookie_domain", |d| {
                cookie_domain(d, public_url.as_ref())
            })
        });
        let listen = self.parse_with(&s.listen, "server.listen", |l| {
            l.parse::<SocketAddr>()
                .map_err(|_| format!("\"{l}\" is not an address:port; write e.g. 127.0.0.1:8080"))
        });
        let metrics_listen = s.metrics_listen.as_ref().map(|m| {
            self.parse_with(m, "server.metrics_listen", |l| {
                l.parse::<SocketAddr>().map_err(|_| {
                    format!("\"{l}\" is not an address:port; write e.g. 127.0.0.1:9100")
                })
            })
        });
        if let (Some(Some(metrics)), Some(listen), Some(m)) =
            (metrics_listen, listen, s.metrics_listen.as_ref())
            && metrics == listen
            && listen.port() != 0
        {
            self.err(
                m,
                "server.metrics_listen is the same address as server.listen; give /metrics its own port, or remove metrics_listen to serve it on listen".into(),
            );
        }
        let metrics_token = self.metrics_token(s);
        if let (Some(Some(addr)), Some(m)) = (metrics_listen, s.metrics_listen.as_ref())
            && !addr.ip().is_loopback()
            && metrics_token.is_none()
            && s.metrics_token_env.is_none()
            && s.metrics_token_file.is_none()
        {
            self.err(
                m,
                format!("server.metrics_listen = \"{addr}\" is not a loopback address, and /metrics would be open to anyone who reaches it; set metrics_token_env or metrics_token_file under [server] (scrapers then send Authorization: Bearer <token>), or listen on 127.0.0.1"),
            );
        }
        if s.metrics_listen.is_none()
            && let Some(key) = s
                .metrics_token_env
                .as_ref()
                .or(s.metrics_token_file.as_ref())
        {
            self.err(
                key,
                "server.metrics_token_env / metrics_token_file protect /metrics, which is served only on server.metrics_listen; set metrics_listen too, or remove the token".into(),
            );
        }
        let login_rate = self.seconds_in(
            &s.login_rate_per_minute,
            "server.login_rate_per_minute",
            0..=100_000,
        );
        let login_burst =
            self.seconds_in(&s.login_rate_burst, "server.login_rate_burst", 1..=100_000);
        let idle = self.positive(&s.session_idle_minutes, "server.session_idle_minutes");
        let absolute = self.positive(&s.session_absolute_hours, "server.session_absolute_hours");
        let skew = self.seconds_in(&s.clock_skew_seconds, "server.clock_skew_seconds", 0..=600);
        let idp_timeout = self.seconds_in(
            &s.idp_timeout_seconds,
            "server.idp_timeout_seconds",
            1..=120,
        );
        let idp_connect_timeout = self.seconds_in(
            &s.idp_connect_timeout_seconds,
            "server.idp_connect_timeout_seconds",
            1..=60,
        );
        if let (Some(connect), Some(total)) = (idp_connect_timeout, idp_timeout)
            && connect > total
        {
            self.err(
                &s.idp_connect_timeout_seconds,
                format!("server.idp_connect_timeout_seconds ({connect}) is longer than server.idp_timeout_seconds ({total}); the connection is part of the whole call"),
            );
        }
        let mut origins = Vec::new();
        for o in &s.allowed_redirect_origins {
            if let Some(origin) =
                self.parse_with(o, "server.allowed_redirect_origins", parse_origin)
            {
                origins.push(origin);
            }
        }
        let mut proxies = Vec::new();
        for p in &s.trusted_proxies {
            if let Some(ip) = self.parse_with(p, "server.trusted_proxies", |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("\"{s}\" is not an IP address"))
            }) {
                proxies.push(ip);
            }
        }
        let demo = s.demo.as_ref().is_some_and(|d| *d.get_ref());
        // The demo IdP signs in anyone who clicks: only on a loopback address (the machine's
        // own user is the only one who can reach it).
        if let (Some(d), Some(url)) = (s.demo.as_ref(), public_url.as_ref())
            && demo
            && !is_loopback_host(url)
        {
            self.err(
                d,
                format!(
                    "server.demo = true needs a loopback server.public_url (http://127.0.0.1:PORT or http://localhost:PORT), not \"{url}\": the demo identity provider signs in anyone who clicks. Remove demo = true (and the demo provider) on a public address"
                ),
            );
        }
        let password = self.secret_from(SecretKeys {
            env: s.database_password_env.as_ref(),
            file: s.database_password_file.as_ref(),
            env_key: "database_password_env",
            file_key: "database_password_file",
            owner: "server.".into(),
            what: "the PostgreSQL password",
        });
        let secret_key = self.secret_from(SecretKeys {
            env: s.secret_key_env.as_ref(),
            file: s.secret_key_file.as_ref(),
            env_key: "secret_key_env",
            file_key: "secret_key_file",
            owner: "server.".into(),
            what: "the key that encrypts stored refresh tokens",
        });
        if let Some(key) = &secret_key
            && key.expose().len() < 32
        {
            let at = s.secret_key_env.as_ref().or(s.secret_key_file.as_ref());
            if let Some(at) = at {
                self.err(at, format!("server.secret_key is {} characters long; give at least 32 random characters (e.g. `openssl rand -base64 48`)", key.expose().len()));
            }
        }
        let database = self.database(s, password);
        Some(ServerConfig {
            public_url: public_url?,
            cookie_domain,
            listen: listen?,
            database: database?,
            secret_key,
            demo,
            session_idle: Duration::from_secs(idle? * 60),
            session_absolute: Duration::from_secs(absolute? * 3600),
            clock_skew: Duration::from_secs(skew?),
            idp_connect_timeout: Duration::from_secs(idp_connect_timeout?),
            idp_timeout: Duration::from_secs(idp_timeout?),
            metrics_listen: match metrics_listen {
                Some(parsed) => Some(parsed?),
                None => None,
            },
            metrics_token,
            login_rate_per_minute: u32::try_from(login_rate?).unwrap_or(u32::MAX),
            login_rate_burst: u32::try_from(login_burst?).unwrap_or(u32::MAX),
            allowed_redirect_origins: origins,
            trusted_proxies: proxies,
        })
    }

    /// `server.database`: a `postgres://` URL or a file path.
    fn database(&mut self, s: &raw::RawServer, password: Option<Secret>) -> Option<Database> {
        let text = s.database.get_ref().trim();
        if text.is_empty() {
            self.err(
                &s.database,
                "server.database is empty; give a file path such as data/teamgate.db or a postgres:// URL".into(),
            );
            return None;
        }
        let is_url = text.starts_with("postgres://") || text.starts_with("postgresql://");
        if !is_url {
            if text.contains("://") {
                self.err(&s.database, format!("server.database \"{text}\" is a URL of a kind teamgate does not speak; give a file path (SQLite) or a postgres:// URL"));
                return None;
            }
            for (key, set) in [
                ("database_password_env", s.database_password_env.as_ref()),
                ("database_password_file", s.database_password_file.as_ref()),
            ] {
                if let Some(at) = set {
                    self.err(at, format!("server.{key} is set but server.database is a SQLite file, which has no password; remove it"));
                }
            }
            // Relative paths resolve beside the config file, like secret files, so that a
            // command finds the same database whatever its working directory. A postgres://
            // URL is not a path and is taken as written.
            return Some(Database::Sqlite(self.beside_file(text)));
        }
        let pg = self.parse_with(&s.database, "server.database", |u| {
            parse_postgres_url(u, password.clone())
        })?;
        if let Some(root) = &pg.root_cert {
            let root = self.beside_file(&root.to_string_lossy());
            if !root.is_file() {
                self.err(&s.database, format!("server.database: sslrootcert {} is not a readable file; give the PEM file of the CA that signed the server's certificate", root.display()));
                return None;
            }
            return Some(Database::Postgres(PgDatabase {
                root_cert: Some(root),
                ..pg
            }));
        }
        Some(Database::Postgres(pg))
    }

    /// `metrics_token_env` or `metrics_token_file` (beside the config file when relative).
    fn metrics_token(&mut self, s: &raw::RawServer) -> Option<Secret> {
        self.secret_from(SecretKeys {
            env: s.metrics_token_env.as_ref(),
            file: s.metrics_token_file.as_ref(),
            env_key: "metrics_token_env",
            file_key: "metrics_token_file",
            owner: "server.".into(),
            what: "the /metrics bearer token",
        })
    }
}

/// `postgres://USER@HOST[:PORT]/DBNAME[?sslmode=...&sslrootcert=...]`.
pub(crate) fn parse_postgres_url(
    text: &str,
    password: Option<Secret>,
) -> Result<PgDatabase, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("\"{text}\" is not a URL ({e}); write e.g. postgres://teamgate@db.example.com:5432/teamgate?sslmode=verify-full")
    })?;
    if url.password().is_some() {
        return Err("the URL carries a password; remove it and set server.database_password_env or server.database_password_file (secrets never go in this file)".into());
    }
    let user = url.username();
    if user.is_empty() {
        return Err(format!(
            "\"{text}\" names no user; write postgres://USER@HOST/DBNAME"
        ));
    }
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        _ => {
            return Err(format!(
                "\"{text}\" names no host; write postgres://USER@HOST/DBNAME"
            ));
        }
    };
    let dbname = url.path().trim_start_matches('/');
    if dbname.is_empty() || dbname.contains('/') {
        return Err(format!(
            "\"{text}\" names no database; write postgres://USER@HOST/DBNAME"
        ));
    }
    let mut sslmode = None;
    let mut root_cert = None;
    for (key, value) in url.query_pairs() {
        match &*key {
            "sslmode" => {
                sslmode = Some(match &*value {
                    "disable" => SslMode::Disable,
                    "require" => SslMode::Require,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not supported; use disable, require or verify-full (verify-full checks the certificate and the host name)"
                        ));
                    }
                })
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
            other => {
                return Err(format!(
                    "the URL parameter {other} is not supported; only sslmode and sslrootcert are"
                ));
            }
        }
    }
    let sslmode = match sslmode {
        Some(m) => m,
        // libpq's default ("prefer") may fall back to plain text silently; teamgate asks for
        // a choice, and picks the plain one only for the loopback.
        None if matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1")
            || host.starts_with('/') =>
        {
            SslMode::Disable
        }
        None => {
            return Err(format!(
                "\"{text}\" reaches a remote host without sslmode; add ?sslmode=verify-full (or require, or disable on a trusted network)"
            ));
        }
    };
    if root_cert.is_some() && sslmode != SslMode::VerifyFull {
        return Err("sslrootcert is used only with sslmode=verify-full".into());
    }
    Ok(PgDatabase {
        host,
        port: url.port().unwrap_or(5432),
        dbname: percent_decode(dbname),
        user: percent_decode(user),
        password,
        sslmode,
        root_cert,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// The path of `public_url`, when teamgate is served under a path of a site (`/teamgate`):
/// plain segments only, so that routes, links and cookies can be built from it by
/// concatenation.
fn check_base_path(path: &str) -> Result<(), String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    if trimmed.split('/').skip(1).all(plain) {
        Ok(())
    } else {
        Err(format!(
            "the path \"{path}\" must be plain segments of letters, digits, - _ . ~ (e.g. https://app.example.com/teamgate)"
        ))
    }
}

/// `server.cookie_domain`: a parent domain of public_url's host that the session cookie is
/// shared with (teamgate on its own host, apps on sibling hosts).
fn cookie_domain(d: &str, public_url: Option<&url::Url>) -> Result<String, String> {
    let domain = d.trim_start_matches('.').to_ascii_lowercase();
    let valid = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(format!(
            "\"{d}\" is not a domain with at least two labels; write e.g. example.com"
        ));
    }
    if let Some(url) = public_url {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if host != domain && !host.ends_with(&format!(".{domain}")) {
            return Err(format!(
                "\"{d}\" is not server.public_url's host ({host}) or a parent of it; the browser would refuse the cookie"
            ));
        }
    }
    Ok(domain)
}
