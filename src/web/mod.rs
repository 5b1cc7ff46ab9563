//! The web toolkit every HTTP adapter shares, and nothing above it: the readable error page,
//! request ids, response headers (no caching, no framing), return-URL checks, the templates,
//! and the browser session. It imports only the layers below (config, domain, store).
//!
//! - [`error`]: the HTML error surface; [`templates`]: auto-escaped pages.
//! - [`request_id`]: a request id (and W3C trace id) on every request and log line.
//! - [`headers`]: the security headers of every response, `Cache-Control: no-store`.
//! - [`client_addr`]: the peer and the client's address, through trusted proxies only.
//! - [`log_escape`]: log lines with control characters escaped (no forged lines).
//! - [`rate_limit`]: per-client-address rate limits.
//! - [`redirect`]: which return URLs are safe.
//! - [`session`]: the session layer, what a signed-in session holds, and its checks.

pub mod client_addr;
pub mod error;
pub mod headers;
pub mod log_escape;
pub mod rate_limit;
pub mod redirect;
pub mod request_id;
pub mod session;
pub mod templates;
