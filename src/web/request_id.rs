//! A request id on every request, put in a tracing span so every log line of the request
//! carries it, returned as `X-Request-Id`, and shown on error pages. When a trusted proxy
//! (`server.trusted_proxies`) sends `X-Request-Id` (nginx's `$request_id`, Caddy's
//! `{http.request.uuid}`), that id is used, so the proxy's log and teamgate's share it; it must
//! be short and plain, else teamgate makes its own. A W3C `traceparent` (Trace Context Level 1)
//! from anyone is honoured: its trace id is logged with the request (`trace_id`), else a new
//! one is made.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::config::LiveConfig;

/// Longest request id taken from a proxy.
const MAX_LEN: usize = 64;

/// The id of the current request (an extension set by [`middleware`]).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The W3C trace id of the current request (an extension set by [`middleware`]): 32
/// lowercase hex digits, from the request's `traceparent` or new.
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

pub async fn middleware(
    State(config): State<Arc<LiveConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_proxy = {
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(a)| *a);
        let server = &config.get().server;
        crate::web::client_addr::trusted_peer(peer, server).and_then(|_| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| is_plain_id(v))
                .map(str::to_owned)
        })
    };
    let id = from_proxy.unwrap_or_else(crate::domain::ids::random_id);
    let trace = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of)
        .unwrap_or_else(new_trace_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    request.extensions_mut().insert(TraceId(trace.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = %trace,
        method = %request.method(),
        path = %request.uri().path()
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A request id worth keeping: 1 to 64 letters, digits, `-`, `_`, `.` or `:`, so that it
/// cannot break a log line, a header or a page.
pub fn is_plain_id(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when it is valid:
/// version not `ff`, lowercase hex, neither id all zeros. A later version may append fields
/// after a `-`; version 00 may not.
pub fn trace_id_of(header: &str) -> Option<String> {
    let header = header.trim();
    let mut parts = header.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let more = parts.next().is_some();
    let valid = hex(version, 2)
        && version != "ff"
        && !(version == "00" && more)
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then(|| trace.to_owned())
}

fn new_trace_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_as_the_w3c_recommendation_says() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id_of(ok).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A future version may add fields.
        assert!(
            trace_id_of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz").is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad:?}");
        }
        assert_eq!(new_trace_id().len(), 32);
    }

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_plain_id("5f1c0e2b8a9d4c3e9b7a6f5e4d3c2b1a"));
        assert!(is_plain_id("0b7a2a3c-7d3e-4f1a-9c2b-1a2b3c4d5e6f"));
        for bad in ["", "a b", "x\ny", "<script>", &"a".repeat(65), "é"] {
            assert!(!is_plain_id(bad), "{bad:?}");
        }
    }
}
