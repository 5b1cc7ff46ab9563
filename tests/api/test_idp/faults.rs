//! Fault injection shared by every endpoint (Graph's and Okta's included): each request is
//! counted, then delayed, redirected, failed, replaced or padded as its `Fault` says, so the
//! relying party's timeouts, body caps and error paths can be tested (security cases 45, 81-83).

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::knobs::Endpoint;
use super::{TestIdp, entra, okta};

/// Count the call and apply `endpoint`'s fault. `Err` is the answer to send instead of the
/// normal one; `Ok` carries the size to pad the normal answer to, if any.
pub async fn before(idp: &TestIdp, endpoint: Endpoint) -> Result<Option<usize>, Response> {
    idp.inner.calls[endpoint as usize].fetch_add(1, Ordering::SeqCst);
    let fault = {
        let mut knobs = idp.inner.knobs.lock().unwrap();
        let Some(fault) = knobs.faults.get_mut(&endpoint) else {
            return Ok(None);
        };
        let applied = fault.clone();
        if let Some(times) = &mut fault.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                knobs.faults.remove(&endpoint);
            }
        }
        applied
    };
    if fault.times == Some(0) {
        return Ok(None);
    }
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(location) = fault.redirect_to {
        return Err((StatusCode::FOUND, [(LOCATION, location)]).into_response());
    }
    if let Some(status) = fault.status {
        let status = StatusCode::from_u16(status).unwrap();
        return Err(json_response(status, &fault_body(endpoint, status), None));
    }
    if let Some(body) = fault.raw_body {
        return Err(([(CONTENT_TYPE, "application/json")], body).into_response());
    }
    Ok(fault.pad_to)
}

/// An error body in the dialect of the endpoint that fails.
fn fault_body(endpoint: Endpoint, status: StatusCode) -> Value {
    let reason = status.canonical_reason().unwrap_or("error");
    match endpoint {
        Endpoint::Graph => {
            let code = match status.as_u16() {
                401 => "InvalidAuthenticationToken",
                403 => "Authorization_RequestDenied",
                429 => "TooManyRequests",
                _ => "generalException",
            };
            entra::graph_error_body(code, reason)
        }
        Endpoint::OktaGroups => okta::error_body("E0000009", reason),
        _ => json!({ "error": "server_error", "error_description": reason }),
    }
}

/// `value` as JSON, padded with trailing whitespace (still valid JSON) to `pad_to` bytes.
pub fn json_response(status: StatusCode, value: &Value, pad_to: Option<usize>) -> Response {
    let mut body = value.to_string();
    if let Some(size) = pad_to {
        body.push_str(&" ".repeat(size.saturating_sub(body.len())));
    }
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
