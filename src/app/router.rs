//! Router assembly: every route of teamgate, and the middleware around them.

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use crate::provider::demo::DemoIdp;
use crate::state::AppState;
use crate::web::request_id;

/// The whole HTTP surface. Adapters expose `routes() -> Router<AppState>`; they are merged
/// here and nowhere else.
pub fn router(state: AppState, demo_idp: Option<Arc<DemoIdp>>) -> Router {
    let config = state.config.get();
    let sessions =
        crate::web::session::layer(state.store.clone(), state.clock.clone(), &config.server);
    let mut app = Router::new()
        .merge(crate::home::routes())
        .merge(crate::oidc::routes::routes())
        .merge(crate::admin::routes())
        .merge(crate::downstream::routes())
        .merge(crate::provider::routes())
        .merge(match config.server.metrics_listen {
            None => crate::admin::ops::metrics_routes(),
            Some(_) => Router::new(),
        })
        .layer(sessions)
        .with_state(state.clone())
        // SCIM stays outside the session layer: a bearer token, never a cookie (case 78).
        .merge(crate::scim::routes::routes().with_state(state));
    if let Some(idp) = demo_idp {
        app = app.nest("/demo-idp", crate::provider::demo::router(idp));
    }
    app.layer(middleware::from_fn(request_id::middleware))
        .layer(middleware::from_fn(crate::metrics::middleware))
}
