//! Who is on the other end of a request: the peer, and what a trusted proxy
//! (`server.trusted_proxies`) says about the client behind it. Headers from any other peer are
//! ignored: a client could send them itself (security case 56).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::ServerConfig;

/// The peer's address, when the server was started with connection info (always, but in
/// tests that call a router directly).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        ))
    }
}

/// The address of the proxy that asked, when it is one of `server.trusted_proxies`.
/// IPv4-mapped IPv6 peers compare as IPv4.
pub fn trusted_peer(peer: Option<SocketAddr>, server: &ServerConfig) -> Option<IpAddr> {
    let ip = peer?.ip().to_canonical();
    server
        .trusted_proxies
        .iter()
        .any(|p| p.to_canonical() == ip)
        .then_some(ip)
}

/// The client's address: from a trusted proxy, the last address of its `X-Forwarded-For` (the
/// one the proxy itself saw, appended by nginx's `$proxy_add_x_forwarded_for`, Caddy and
/// Traefik; earlier entries were written by the client or by proxies teamgate does not know);
/// otherwise the peer.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    server: &ServerConfig,
) -> Option<IpAddr> {
    let peer_ip = peer.map(|p| p.ip().to_canonical());
    if trusted_peer(peer, server).is_none() {
        return peer_ip;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .and_then(|v| v.parse::<IpAddr>().ok());
    forwarded.map(|ip| ip.to_canonical()).or(peer_ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn server(trusted: &[&str]) -> ServerConfig {
        ServerConfig {
            public_url: url::Url::parse("https://login.example.com").unwrap(),
            cookie_domain: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            database: "x.db".into(),
            demo: false,
            session_idle: std::time::Duration::from_secs(60),
            session_absolute: std::time::Duration::from_secs(60),
            clock_skew: std::time::Duration::from_secs(60),
            idp_connect_timeout: std::time::Duration::from_secs(2),
            idp_timeout: std::time::Duration::from_secs(10),
            metrics_listen: None,
            allowed_redirect_origins: vec![],
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy_and_only_its_last_entry() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9"),
        );
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusting = server(&["127.0.0.1"]);
        assert_eq!(
            client_ip(&headers, Some(proxy), &trusting),
            Some("203.0.113.9".parse().unwrap())
        );
        let other: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        assert_eq!(
            client_ip(&headers, Some(other), &trusting),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            client_ip(&headers, Some(proxy), &server(&[])),
            Some("127.0.0.1".parse().unwrap())
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("not an ip"));
        assert_eq!(
            client_ip(&headers, Some(proxy), &trusting),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
