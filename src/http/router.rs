//! Router assembly: every route of teamgate, and the middleware around them.

use axum::Router;
use axum::middleware;

use super::{login_routes, pages, request_id};
use crate::app::AppState;

/// The whole HTTP surface. Feature modules expose `routes() -> Router<AppState>`; they are
/// merged here and nowhere else.
pub fn router(state: AppState) -> Router {
    let config = state.config.get();
    let sessions = crate::session::layer(state.store.clone(), &config.server);
    let mut app = Router::new()
        .merge(pages::routes())
        .merge(login_routes::routes())
        .merge(crate::admin::routes())
        .merge(crate::downstream::routes())
        .merge(match config.server.metrics_listen {
            None => crate::admin::ops::metrics_routes(),
            Some(_) => Router::new(),
        })
        .layer(sessions)
        .with_state(state.clone())
        // SCIM stays outside the session layer: a bearer token, never a cookie (SECURITY.md 78).
        .merge(crate::scim::routes::routes().with_state(state.clone()));
    if let Some(idp) = &state.demo_idp {
        app = app.nest("/demo-idp", crate::demo_idp::router(idp.clone()));
    }
    app.layer(middleware::from_fn(request_id::middleware))
        .layer(middleware::from_fn(crate::metrics::middleware))
}
