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
    let state_config = state.config.clone();
    let sessions =
        crate::web::session::layer(state.store.clone(), state.clock.clone(), &config.server);
    let mut app = Router::new()
        .merge(crate::home::routes())
        .merge(crate::oidc::routes::routes())
        .merge(crate::admin::routes())
        .merge(crate::downstream::routes())
        .merge(crate::provider::routes())
        // No /metrics here: it is served only on `server.metrics_listen` (see `app`).
        .layer(sessions)
        .with_state(state.clone())
        // SCIM stays outside the session layer: a bearer token, never a cookie (case 78).
        .merge(crate::scim::routes::routes().with_state(state));
    if let Some(idp) = demo_idp {
        app = app.nest("/demo-idp", crate::provider::demo::router(idp));
    }
    let app = app
        // The security headers go on every response, the demo IdP's and the 404s' included.
        .layer(middleware::from_fn(crate::web::headers::layer))
        .layer(middleware::from_fn_with_state(
            state_config,
            request_id::middleware,
        ))
        .layer(middleware::from_fn(crate::metrics::middleware));
    // Under a path of a site (public_url https://app.example.com/teamgate): every route is
    // served beneath it, so a proxy forwards the path unchanged; handlers see the path
    // without it, and links and redirects add it back (`ServerConfig::path`).
    match config.server.base_path() {
        "" => app,
        // `nest_service`, not `nest`: the site's start page is `{base}/` (a proxy's
        // `location /teamgate/` sends it), which `nest` would not route to `/`.
        base => Router::new().nest_service(base, app),
    }
}
