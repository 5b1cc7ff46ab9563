//! The user-facing pages: home ("signed in as ..., your teams, your roles and the group that
//! granted each") and its JSON twin `/api/v1/me`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tower_sessions::Session;

use super::error::ErrorPage;
use super::request_id::RequestId;
use crate::app::AppState;
use crate::identity::Identity;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/api/v1/me", get(me))
        .route("/healthz", get(|| async { "ok" }))
}

async fn home(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let internal = |e: &dyn std::fmt::Display| ErrorPage::internal(&state.templates, &rid, e);
    let signed_in = crate::session::current(&session, &state.store, &config.server)
        .await
        .map_err(|e| internal(&e))?;
    let ctx = match &signed_in {
        None => serde_json::json!({ "signed_in": false }),
        Some(s) => {
            let identity = Identity::load(&state.store, &config, &s.user)
                .await
                .map_err(|e| internal(&e))?;
            serde_json::json!({ "signed_in": true, "me": identity, "csrf": s.auth.csrf })
        }
    };
    let html = state
        .templates
        .render("home.html", ctx)
        .map_err(|e| internal(&e))?;
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn me(State(state): State<AppState>, session: Session) -> Response {
    let config = state.config.get();
    let json_error = |status: StatusCode, error: &str| {
        (status, Json(serde_json::json!({ "error": error }))).into_response()
    };
    let response = match crate::session::current(&session, &state.store, &config.server).await {
        Ok(None) => json_error(StatusCode::UNAUTHORIZED, "not signed in"),
        Ok(Some(s)) => match Identity::load(&state.store, &config, &s.user).await {
            Ok(identity) => Json(identity).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot load the identity");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot read the session");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    };
    let mut response = response;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
