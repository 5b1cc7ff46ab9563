//! Response headers. [`layer`] runs around every response teamgate sends (the router applies
//! it to everything, the demo IdP and the metrics listener included): `nosniff` on all of
//! them, and on HTML pages no framing by anyone (a framed button could be clicked by a user
//! who cannot see it), no Referer, and a content security policy that lets a page load only
//! teamgate's own stylesheet and submit forms only to teamgate. The pages carry no inline
//! style or script (the stylesheet is `/teamgate.css`), so the policy needs no exception.
//! Anything that sets or depends on a session, or carries a secret, is also never cached
//! ([`no_store`], security case 53).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy of every HTML page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `Cache-Control: no-store`.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// [`no_store`] as middleware, for routers whose every response is so.
pub async fn no_store_layer(response: Response) -> Response {
    no_store(response)
}

/// The security headers of every response (see the module comment).
pub async fn layer(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    secure(response.headers_mut());
    response
}

/// Add the security headers to a response's `headers`.
pub fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_every_header_and_other_types_only_nosniff() {
        let mut html = HeaderMap::new();
        html.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure(&mut html);
        assert_eq!(html[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(html[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(html[header::REFERRER_POLICY], "no-referrer");
        assert!(
            html[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        secure(&mut json);
        assert_eq!(json[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(json.get(header::X_FRAME_OPTIONS).is_none());
    }
}
