//! Response headers more than one adapter sets. Anything that sets or depends on a session,
//! or carries a secret, is never cached (security case 53); pages with buttons are never
//! framed (a framed button could be clicked by a user who cannot see it).

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// `Cache-Control: no-store`.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `no-store`, and no framing by any origin (`X-Frame-Options` for old browsers,
/// `frame-ancestors` for the rest).
pub fn no_store_no_framing(response: Response) -> Response {
    let mut response = no_store(response);
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

/// [`no_store`] as middleware, for routers whose every response is so.
pub async fn no_store_layer(response: Response) -> Response {
    no_store(response)
}
