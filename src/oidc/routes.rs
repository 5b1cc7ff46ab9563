//! `/login`, `/callback/{provider}` and `POST /logout`: thin handlers around the OIDC flow in
//! [`super::flow`] and the sign-in use case in [`crate::signin`].

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::flow;
use super::refusal::Refusal;
use crate::signin::LoginError;
use crate::state::AppState;
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
    /// `login`: ask the IdP to authenticate the user again even if it has a session (an
    /// application asked teamgate's provider for `prompt=login` or a short `max_age`).
    prompt: Option<String>,
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
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let return_to =
        q.rd.as_deref()
            .and_then(|rd| safe_return_to(rd, &config.server))
            .unwrap_or_else(|| "/".into());
    let force_login = q.prompt.as_deref() == Some("login");
    let provider = match (&q.provider, config.providers.as_slice()) {
        (Some(id), _) => config.provider(id).ok_or_else(|| {
            login_error_page(&state, &rid, LoginError::UnknownProvider(id.clone()))
        })?,
        (None, [only]) => only,
        (None, all) => {
            let entries: Vec<ChooserEntry> = all
                .iter()
                .map(|p| {
                    let mut query = url::form_urlencoded::Serializer::new(String::new());
                    query
                        .append_pair("provider", p.id.as_str())
                        .append_pair("rd", &return_to);
                    if force_login {
                        query.append_pair("prompt", "login");
                    }
                    ChooserEntry {
                        name: p.display_name.clone(),
                        href: format!("/login?{}", query.finish()),
                    }
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
        force_login,
    )
    .await
    .map_err(|e| login_error_page(&state, &rid, e))?;
    Ok(Redirect::to(&url).into_response())
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
