//! What a browser gets from an authorization endpoint: a 302 to the client (RFC 6749 §4.1.2),
//! or, when the client or its redirect URI cannot be trusted, a page and no redirect.

use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::web::headers::no_store;
use crate::web::templates::Templates;

/// RFC 6749 §4.1.2 shows a 302; browsers follow it with a GET whatever the first method was.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => no_store((StatusCode::FOUND, [(LOCATION, value)]).into_response()),
        // Url serialisation yields ASCII without control characters, so this cannot happen.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Serialize)]
struct ErrorPageCtx<'a> {
    title: &'a str,
    reason: &'a str,
    request_id: &'a str,
}

/// The shared error page; the precise reason is logged once with the id shown to the user.
pub fn error_page(
    templates: &Templates,
    status: StatusCode,
    title: &str,
    reason: &str,
    log_reason: &str,
    request_id: &str,
) -> Response {
    if status.is_server_error() {
        tracing::error!(%request_id, reason = log_reason, "OpenID provider request failed");
    } else {
        tracing::warn!(%request_id, reason = log_reason, "OpenID provider request refused");
    }
    let ctx = ErrorPageCtx {
        title,
        reason,
        request_id,
    };
    let body = templates.render("error.html", ctx).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render the error page");
        format!("{title}. Request id: {request_id}")
    });
    no_store((status, Html(body)).into_response())
}
