//! Who is asking: the peer of the connection, or, when that peer is one of
//! `server.trusted_proxies`, what the proxy says. Headers such as `X-Forwarded-For` count only
//! from a trusted peer (security case 56): any client can send them itself.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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
    is_trusted(ip, server).then_some(ip)
}

fn is_trusted(ip: IpAddr, server: &ServerConfig) -> bool {
    server
        .trusted_proxies
        .iter()
        .any(|p| p.to_canonical() == ip.to_canonical())
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address of
/// `X-Forwarded-For` that is not itself a trusted proxy (the rightmost entries were appended
/// by proxies teamgate trusts; anything left of the first untrusted one is the client's own
/// say and is ignored). `None` without a peer (in-process requests).
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    server: &ServerConfig,
) -> Option<IpAddr> {
    let peer = peer?.ip().to_canonical();
    if !is_trusted(peer, server) {
        return Some(peer);
    }
    let mut client = peer;
    // Every X-Forwarded-For header, in order; each a comma-separated list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Unreadable: stop at the last hop a trusted proxy vouched for.
            break;
        };
        client = ip;
        if !is_trusted(ip, server) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The key a per-client limit counts under: the address, or for IPv6 its /64 network (one
/// host commonly holds a whole /64, so single addresses would let it rotate freely).
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn server(proxies: &[&str]) -> ServerConfig {
        ServerConfig {
            public_url: url::Url::parse("https://login.example.com").unwrap(),
            cookie_domain: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            database: crate::config::Database::Sqlite("x.db".into()),
            secret_key: None,
            demo: false,
            session_idle: std::time::Duration::from_secs(60),
            session_absolute: std::time::Duration::from_secs(60),
            clock_skew: std::time::Duration::from_secs(60),
            idp_connect_timeout: std::time::Duration::from_secs(2),
            idp_timeout: std::time::Duration::from_secs(10),
            metrics_listen: None,
            metrics_token: None,
            login_rate_per_minute: 60,
            login_rate_burst: 30,
            allowed_redirect_origins: vec![],
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy_and_only_up_to_the_first_untrusted_hop() {
        let s = server(&["10.0.0.5", "10.0.0.6"]);
        let proxy: SocketAddr = "10.0.0.5:1234".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.9:1234".parse().unwrap();
        // A stranger's own X-Forwarded-For is ignored.
        assert_eq!(
            client_ip(&xff(&["198.51.100.1"]), Some(stranger), &s),
            ip("203.0.113.9")
        );
        // Through the proxy: the hop it appended.
        assert_eq!(
            client_ip(&xff(&["198.51.100.1"]), Some(proxy), &s),
            ip("198.51.100.1")
        );
        // A client that forges entries in front: the proxy's entry (the rightmost) wins.
        assert_eq!(
            client_ip(&xff(&["1.1.1.1, 198.51.100.1"]), Some(proxy), &s),
            ip("198.51.100.1")
        );
        // Two trusted proxies in a row; entries split across headers.
        assert_eq!(
            client_ip(
                &xff(&["1.1.1.1, 198.51.100.1", "10.0.0.6"]),
                Some(proxy),
                &s
            ),
            ip("198.51.100.1")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(client_ip(&xff(&[]), Some(proxy), &s), ip("10.0.0.5"));
        // Garbage right after the proxy: the proxy, not the garbage.
        assert_eq!(
            client_ip(&xff(&["nonsense"]), Some(proxy), &s),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_ip(&xff(&["[2001:db8::1]:443"]), Some(proxy), &s),
            ip("2001:db8::1")
        );
        assert_eq!(client_ip(&xff(&[]), None, &s), None);
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_network() {
        assert_eq!(
            rate_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            rate_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
