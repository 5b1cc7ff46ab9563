//! The HTML error surface: a readable page with a plain-language reason and the request id;
//! the precise internal reason is logged once, here, and never shown.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::request_id::RequestId;
use super::templates::Templates;

/// A page to show for a refused or failed request.
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: &'static str,
    pub reason: String,
    /// Logged, never shown.
    pub log_reason: String,
    pub request_id: String,
    pub templates: Arc<Templates>,
}

#[derive(Serialize)]
struct Ctx<'a> {
    title: &'a str,
    reason: &'a str,
    request_id: &'a str,
}

impl ErrorPage {
    pub fn new(
        templates: &Arc<Templates>,
        request_id: &RequestId,
        status: StatusCode,
        title: &'static str,
        reason: impl Into<String>,
        log_reason: impl Into<String>,
    ) -> Self {
        Self {
            status,
            title,
            reason: reason.into(),
            log_reason: log_reason.into(),
            request_id: request_id.0.clone(),
            templates: templates.clone(),
        }
    }

    /// A 500 page for an internal error.
    pub fn internal(
        templates: &Arc<Templates>,
        request_id: &RequestId,
        error: impl std::fmt::Display,
    ) -> Self {
        Self::new(
            templates,
            request_id,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "teamgate hit an internal error. Try again; if it keeps happening, give your administrator the request id below.",
            error.to_string(),
        )
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(request_id = %self.request_id, status = self.status.as_u16(), reason = %self.log_reason, "request failed");
        } else {
            tracing::warn!(request_id = %self.request_id, status = self.status.as_u16(), reason = %self.log_reason, "request refused");
        }
        let body = self
            .templates
            .render(
                "error.html",
                Ctx {
                    title: self.title,
                    reason: &self.reason,
                    request_id: &self.request_id,
                },
            )
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot render the error page");
                format!("{}. Request id: {}", self.title, self.request_id)
            });
        super::headers::no_store((self.status, Html(body)).into_response())
    }
}
