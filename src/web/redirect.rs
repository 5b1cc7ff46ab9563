//! Return URLs (`rd`, post-logout): only a same-origin relative path or a URL on an
//! allow-listed origin passes; everything else falls back to `/` (no open redirect,
//! security case 42, RFC 9700 §4.11.1).

use url::Url;

use crate::config::ServerConfig;

/// `Some(url)` when `rd` is a safe place to send the browser after login.
pub fn safe_return_to(rd: &str, server: &ServerConfig) -> Option<String> {
    if rd.is_empty() || rd.len() > 2048 || rd.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    if rd.starts_with('/') {
        return safe_path(rd).then(|| rd.to_owned());
    }
    let url = Url::parse(rd).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let origin = url.origin();
    let allowed =
        origin == server.public_url.origin() || server.allowed_redirect_origins.contains(&origin);
    allowed.then(|| url.to_string())
}

/// A relative path is safe when no decoding of it can make it protocol-relative (`//host`,
/// `/\host`, `/%2F/host`) or smuggle control characters.
fn safe_path(path: &str) -> bool {
    let decoded: String = percent_decode_repeatedly(path);
    let starts_like_authority = |p: &str| {
        let mut chars = p.chars();
        chars.next() == Some('/') && matches!(chars.next(), Some('/') | Some('\\'))
    };
    !starts_like_authority(path)
        && !starts_like_authority(&decoded)
        && !decoded.chars().any(|c| c.is_control() || c == '\\')
}

/// Decode `%XX` until nothing changes (bounded), so double encoding cannot hide `//`.
fn percent_decode_repeatedly(s: &str) -> String {
    let mut current = s.to_owned();
    for _ in 0..4 {
        let next: String =
            url::form_urlencoded::parse(format!("x={}", current.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server() -> ServerConfig {
        ServerConfig {
            public_url: Url::parse("https://login.example.com").unwrap(),
            cookie_domain: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            database: crate::config::Database::Sqlite("x.db".into()),
            secret_key: None,
            demo: false,
            session_idle: Duration::from_secs(60),
            session_absolute: Duration::from_secs(60),
            clock_skew: Duration::from_secs(60),
            idp_connect_timeout: Duration::from_secs(2),
            idp_timeout: Duration::from_secs(10),
            metrics_listen: None,
            metrics_token: None,
            login_rate_per_minute: 60,
            login_rate_burst: 30,
            allowed_redirect_origins: vec![Url::parse("https://app.example.com").unwrap().origin()],
            trusted_proxies: vec![],
        }
    }

    #[test]
    fn case_42_relative_paths_and_allowed_origins_pass() {
        let s = server();
        for ok in [
            "/",
            "/app?x=1",
            "/a/b#frag",
            "https://app.example.com/x",
            "https://login.example.com/y",
        ] {
            assert!(safe_return_to(ok, &s).is_some(), "{ok} should pass");
        }
    }

    #[test]
    fn case_42_hostile_return_urls_are_rejected() {
        let s = server();
        let hostile = [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%252F%252Fevil.com",
            "/%5Cevil.com",
            "https://evil.com",
            "http://app.example.com",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.com/",
            "https://evil.com#@app.example.com",
            "https://user@app.example.com/",
            "https://app.example.com@evil.com/",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "/\u{0}evil",
            "/a\nb",
            "/a\rb",
            "\t//evil.com",
            "evil.com",
            "https:evil.com",
            "//app.example.com",
            "",
            "/%0d%0aSet-Cookie:x",
            "https://login.example.com.evil.com",
            "ftp://app.example.com/",
        ];
        for bad in hostile {
            assert!(
                safe_return_to(bad, &s).is_none(),
                "{bad:?} should be rejected"
            );
        }
    }
}
