//! The demo IdP's HTTP surface: thin axum handlers over [`DemoIdp`], and how its refusals look
//! (an HTML page when the client cannot be trusted, a 302 back to the client otherwise).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::DemoIdp;
use crate::provider::protocol::pages::{self, found};
use crate::provider::protocol::params::Params;
use crate::provider::protocol::request::Refusal;
use crate::web::headers::no_store;

/// The demo IdP's routes, state applied; mount with `.nest("/demo-idp", router(idp))`. The
/// mount path must be the issuer's path: discovery and the pick form name URLs under it.
pub fn router(idp: Arc<DemoIdp>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/authorize/pick", post(pick))
        .route("/token", post(token))
        // OIDC Core §5.3.1: userinfo answers GET and POST.
        .route("/userinfo", get(userinfo).post(userinfo))
        .with_state(idp)
}

async fn discovery(State(idp): State<Arc<DemoIdp>>) -> Response {
    public_cache(Json(idp.discovery()).into_response())
}

async fn jwks(State(idp): State<Arc<DemoIdp>>) -> Response {
    public_cache(Json(idp.jwks()).into_response())
}

async fn authorize(State(idp): State<Arc<DemoIdp>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    match idp.check_authorization(&params) {
        Ok(_) => idp.render_pick_page(&params),
        Err(refusal) => idp.refusal_response(refusal),
    }
}

async fn pick(State(idp): State<Arc<DemoIdp>>, body: Bytes) -> Response {
    match idp.pick(&Params::parse(&body), Instant::now()) {
        Ok(location) => found(&location),
        Err(refusal) => idp.refusal_response(refusal),
    }
}

async fn token(State(idp): State<Arc<DemoIdp>>, headers: HeaderMap, body: Bytes) -> Response {
    match idp.exchange(&headers, &body) {
        Ok(response) => response.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn userinfo(State(idp): State<Arc<DemoIdp>>, headers: HeaderMap) -> Response {
    match idp.userinfo(&headers) {
        Ok(claims) => claims.into_response(),
        Err(e) => e.into_response(),
    }
}

impl DemoIdp {
    fn render_pick_page(&self, params: &Params) -> Response {
        match self
            .templates
            .render("demo_idp_pick.html", self.pick_page(params))
        {
            Ok(html) => {
                // The page signs people in on one click: the router's header layer keeps it
                // from being framed (clickjacking).
                no_store(Html(html).into_response())
            }
            Err(e) => self.error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The demo sign-in page could not be shown.",
                &e.to_string(),
            ),
        }
    }

    fn refusal_response(&self, refusal: Refusal) -> Response {
        match refusal {
            Refusal::Untrusted(why) => self.error_page(
                StatusCode::BAD_REQUEST,
                "The application that sent you here is not registered with the demo identity provider, or gave a return address that is not its own, so you were not sent back to it.",
                why,
            ),
            Refusal::ToClient(e) => {
                tracing::info!(error = e.error, description = e.description, "demo IdP authorization refused");
                found(&self.error_redirect_url(&e))
            }
        }
    }

    fn error_page(&self, status: StatusCode, reason: &str, log_reason: &str) -> Response {
        let request_id = crate::domain::ids::random_id();
        pages::error_page(
            &self.templates,
            status,
            "Sign-in request refused",
            reason,
            log_reason,
            &request_id,
        )
    }
}

/// Discovery and keys change only on restart; a short cache saves relying parties round trips.
fn public_cache(mut response: Response) -> Response {
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
