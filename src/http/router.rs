//! Router assembly: every route of teamgate, and the middleware around them.

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

/// The whole HTTP surface. Feature modules expose `routes() -> Router<AppState>`; they are
/// merged here and nowhere else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
