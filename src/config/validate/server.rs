//! `[server]`: the public URL, listeners, database, lifetimes, timeouts, redirect origins and
//! trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{Validator, is_loopback_host, parse_origin};
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
            Ok(url)
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
        let password = self.server_secret(
            &s.database_password_env,
            &s.database_password_file,
            "database_password",
        );
        let secret_key = self.server_secret(&s.secret_key_env, &s.secret_key_file, "secret_key");
        if let Some(Some(key)) = &secret_key
            && key.expose().len() < 32
        {
            let at = s.secret_key_env.as_ref().or(s.secret_key_file.as_ref());
            if let Some(at) = at {
                self.err(at, format!("server.secret_key is {} characters long; give at least 32 random characters (e.g. `openssl rand -base64 48`)", key.expose().len()));
            }
        }
        let database = self.database(s, password.flatten());
        Some(ServerConfig {
            public_url: public_url?,
            listen: listen?,
            database: database?,
            secret_key: secret_key?,
            demo: s.demo,
            session_idle: Duration::from_secs(idle? * 60),
            session_absolute: Duration::from_secs(absolute? * 3600),
            clock_skew: Duration::from_secs(skew?),
            idp_connect_timeout: Duration::from_secs(idp_connect_timeout?),
            idp_timeout: Duration::from_secs(idp_timeout?),
            metrics_listen: match metrics_listen {
                Some(parsed) => Some(parsed?),
                None => None,
            },
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
            return Some(Database::Sqlite(PathBuf::from(text)));
        }
        let pg = self.parse_with(&s.database, "server.database", |u| {
            parse_postgres_url(u, password.clone())
        })?;
        if let Some(root) = &pg.root_cert {
            let root = self.file.parent().unwrap_or(Path::new(".")).join(root);
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

    /// A secret of `[server]` from `{key}_env` or `{key}_file`: `Some(None)` when neither is
    /// set, `None` after an error.
    fn server_secret(
        &mut self,
        env: &Option<raw::S<String>>,
        file: &Option<raw::S<String>>,
        key: &str,
    ) -> Option<Option<Secret>> {
        match (env, file) {
            (None, None) => Some(None),
            (Some(_), Some(f)) => {
                self.err(
                    f,
                    format!("set server.{key}_env or server.{key}_file, not both"),
                );
                None
            }
            (Some(env), None) => match std::env::var(env.get_ref()) {
                Ok(v) if !v.is_empty() => Some(Some(Secret::new(v))),
                _ => {
                    self.err(env, format!("server.{key}_env: the environment variable {} is not set or empty; export the secret in it", env.get_ref()));
                    None
                }
            },
            (None, Some(f)) => {
                let path = self
                    .file
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(f.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(v) if !v.trim().is_empty() => Some(Some(Secret::new(v.trim().to_owned()))),
                    Ok(_) => {
                        self.err(f, format!("server.{key}_file: {} is empty", path.display()));
                        None
                    }
                    Err(e) => {
                        self.err(
                            f,
                            format!("server.{key}_file: cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
        }
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
