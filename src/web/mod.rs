//! The web toolkit every HTTP adapter shares, and nothing above it: the readable error page,
//! request ids, response headers (no caching, no framing), return-URL checks, the templates,
//! and the browser session. It imports only the layers below (config, domain, store).
//!
//! - [`error`]: the HTML error surface; [`templates`]: auto-escaped pages.
//! - [`request_id`]: a request id on every request and log line.
//! - [`headers`]: `Cache-Control: no-store` and framing protection.
//! - [`redirect`]: which return URLs are safe.
//! - [`client`]: the client's address, and which proxies are believed.
//! - [`session`]: the session layer, what a signed-in session holds, and its checks.

pub mod client;
pub mod error;
pub mod headers;
pub mod redirect;
pub mod request_id;
pub mod session;
pub mod templates;
