//! The upstream app of the proxy tests: it answers every request with what it received, so a
//! test can see which identity headers reached the app through nginx or Caddy.

use axum::extract::Request;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What the echo app saw: `{"path": "/x?y", "headers": {"name": ["value", ...]}}`; as HTML
/// (`<pre id="echo">`) for a browser's navigation. Serve it as a router's fallback.
pub async fn echo(request: Request) -> Response {
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if let Value::Array(values) = headers.entry(name.as_str()).or_insert_with(|| json!([])) {
            values.push(json!(value));
        }
    }
    let seen = json!({ "path": request.uri().to_string(), "headers": headers });
    // A real browser's navigation; the tests' HTTP clients read JSON.
    let browser = request
        .headers()
        .get("sec-fetch-mode")
        .is_some_and(|m| m == "navigate");
    if browser {
        let text = seen
            .to_string()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        Html(format!(
            "<!doctype html><title>echo</title><pre id=\"echo\">{text}</pre>"
        ))
        .into_response()
    } else {
        axum::Json(seen).into_response()
    }
}

/// One header as the app received it; `None` when absent. Several values fail the test.
pub fn received(seen: &Value, name: &str) -> Option<String> {
    let values = seen["headers"].get(name)?.as_array().unwrap();
    assert_eq!(
        values.len(),
        1,
        "{name} arrived {} times: {seen}",
        values.len()
    );
    Some(values[0].as_str().unwrap().to_owned())
}
