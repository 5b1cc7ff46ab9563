//! `/login`, `/callback/{provider}` and `POST /logout`: thin handlers around the OIDC flow in
//! [`super::flow`] and the sign-in use case in [`crate::signin`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::flow;
use super::refusal::Refusal;
use crate::signin::LoginError;
use crate::state::AppState;
use crate::web::client_addr::client_ip;
use crate::web::error::ErrorPage;
use crate::web::headers::no_store_layer;
use crate::web::redirect::safe_return_to;
use crate::web::request_id::RequestId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page))
        .route("/callback/{provider}", get(callback))
        .route("/logout", post(logout))
        // Nothing that sets or depends on the session is cached (security case 53).
        .layer(axum::middleware::map_response(no_store_layer))
}

#[derive(Deserialize)]
struct LoginQuery {
    provider: Option<String>,
    rd: Option<String>,
}

#[derive(Serialize)]
struct ChooserEntry {
    name: String,
    href: String,
}

fn login_error_page(state: &AppState, rid: &RequestId, e: LoginError) -> ErrorPage {
    let (title, reason) = e.user_message();
    ErrorPage::new(
        &state.templates,
        rid,
        e.status(),
        title,
        reason,
        e.to_string(),
    )
}

async fn login_page(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    // Every /login stores a pre-login session: limited per client address, before anything
    // is stored (the session layer writes only what a handler put in).
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr);
    if let Some(ip) = client_ip(&headers, peer, &config.server)
        && let Err(wait) = state.login_limit.check(ip)
    {
        return Ok(too_many_logins(&state, &rid, ip, wait));
    }
    let return_to =
        q.rd.as_deref()
            .and_then(|rd| safe_return_to(rd, &config.server))
            .unwrap_or_else(|| "/".into());
    let provider = match (&q.provider, config.providers.as_slice()) {
        (Some(id), _) => config.provider(id).ok_or_else(|| {
            login_error_page(&state, &rid, LoginError::UnknownProvider(id.clone()))
        })?,
        (None, [only]) => only,
        (None, all) => {
            let entries: Vec<ChooserEntry> = all
                .iter()
                .map(|p| ChooserEntry {
                    name: p.display_name.clone(),
                    href: format!(
                        "/login?{}",
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair("provider", p.id.as_str())
                            .append_pair("rd", &return_to)
                            .finish()
                    ),
                })
                .collect();
            let html = state
                .templates
                .render("chooser.html", serde_json::json!({ "providers": entries }))
                .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
            return Ok(Html(html).into_response());
        }
    };
    let runtime = state.providers.runtime(provider);
    let url = flow::start(
        &config,
        &state.clock,
        &runtime,
        provider,
        state.signin.client_secret(provider),
        &session,
        return_to,
    )
    .await
    .map_err(|e| login_error_page(&state, &rid, e))?;
    Ok(Redirect::to(&url).into_response())
}

/// 429 with the readable error page and `Retry-After` (RFC 9110 §10.2.3, RFC 6585 §4).
fn too_many_logins(state: &AppState, rid: &RequestId, ip: IpAddr, wait: u64) -> Response {
    let mut response = ErrorPage::new(
        &state.templates,
        rid,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        format!(
            "Too many sign-ins were started from your network in a short time. Wait {wait} second{} and try again.",
            if wait == 1 { "" } else { "s" }
        ),
        format!("/login rate limit reached by {ip}"),
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&wait.to_string()).unwrap_or(HeaderValue::from_static("60")),
    );
    response
}

async fn callback(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    Path(provider_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let config = state.config.get();
    let result = async {
        let provider = config
            .provider(&provider_id)
            .ok_or_else(|| LoginError::UnknownProvider(provider_id.clone()))?;
        let params = flow::parse_callback_query(raw.as_deref())?;
        let runtime = state.providers.runtime(provider);
        let verified = flow::finish(
            &config,
            &state.clock,
            &runtime,
            provider,
            state.signin.client_secret(provider),
            &session,
            &params,
        )
        .await?;
        let accepted = state
            .signin
            .complete(&config, provider, verified, &rid.0)
            .await?;
        crate::web::session::sign_in(&session, &state.clock, &accepted.user, provider.id.as_str())
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        Ok::<_, LoginError>(accepted.return_to)
    }
    .await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => match e.status().as_u16() {
            400 => "invalid",
            403 => "denied",
            404 => "unknown_provider",
            503 => "unavailable",
            _ => "error",
        },
    };
    // Only configured ids become labels, so a scanner cannot grow the metric without bound.
    let provider_label = config
        .provider(&provider_id)
        .map_or("unknown", |p| p.id.as_str());
    crate::metrics::inc_login(provider_label, label);
    // Success: 303 to a URL without the code. Either way no Referer leaks the code (security case 43).
    let mut response = match result {
        Ok(return_to) => Redirect::to(&return_to).into_response(),
        Err(e) => login_error_page(&state, &rid, e).into_response(),
    };
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let signed_in =
        crate::web::session::current(&session, &state.store, &state.clock, &config.server)
            .await
            .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    let Some(signed_in) = signed_in else {
        return Ok(Redirect::to("/").into_response());
    };
    if !crate::web::session::csrf_matches(&signed_in.auth, &form.csrf) {
        return Err(ErrorPage::new(
            &state.templates,
            &rid,
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "The sign-out form was not valid. Use the sign-out button on teamgate's own page.",
            "logout with a wrong CSRF token",
        ));
    }
    // Deletes the server-side record, so a replayed cookie is worthless (security case 50).
    session
        .flush()
        .await
        .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    tracing::info!(user = %signed_in.user.label(), "signed out");
    Ok(Redirect::to("/").into_response())
}
