//! The user's own pages: home ("signed in as ..., your teams, your roles and the group that
//! granted each"), its JSON twin `/api/v1/me`, `/healthz`, and the pages' stylesheet.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tower_sessions::Session;

use crate::membership::Identity;
use crate::state::AppState;
use crate::web::error::ErrorPage;
use crate::web::headers::no_store;
use crate::web::request_id::RequestId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/api/v1/me", get(me))
        .route("/healthz", get(|| async { "ok" }))
        .route("/teamgate.css", get(stylesheet))
}

/// The one stylesheet every page links to (pages carry no inline style: see
/// `crate::web::headers`).
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/teamgate.css"),
    )
        .into_response()
}

async fn home(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let internal = |e: &dyn std::fmt::Display| ErrorPage::internal(&state.templates, &rid, e);
    let signed_in =
        crate::web::session::current(&session, &state.store, &state.clock, &config.server)
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
    Ok(no_store(Html(html).into_response()))
}

async fn me(State(state): State<AppState>, session: Session) -> Response {
    let config = state.config.get();
    let json_error = |status: StatusCode, error: &str| {
        (status, Json(serde_json::json!({ "error": error }))).into_response()
    };
    let response =
        match crate::web::session::current(&session, &state.store, &state.clock, &config.server)
            .await
        {
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
    no_store(response)
}
