//! `/login`, `/callback/{provider}` and `/logout` (a confirmation page on GET, the sign-out
//! itself, and the IdP's when configured, on POST): thin handlers around the OIDC flow in
//! [`super::flow`] and the sign-in use case in [`crate::signin`].

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::flow;
use super::refusal::Refusal;
use crate::config::LogoutMode;
use crate::signin::LoginError;
use crate::state::AppState;
use crate::web::client_addr::{Peer, client_ip};
use crate::web::error::ErrorPage;
use crate::web::headers::no_store_layer;
use crate::web::redirect::safe_return_to;
use crate::web::request_id::RequestId;
use crate::web::session::{IdTokenHint, SignInContext};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page))
        .route("/callback/{provider}", get(callback))
        .route("/logout", get(logout_confirm).post(logout))
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
    Peer(peer): Peer,
    headers: HeaderMap,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    // Every /login stores a pre-login session: limited per client address, before anything
    // is stored (the session layer writes only what a handler put in).
    if let Some(ip) = client_ip(&headers, peer, &config.server)
        && let Err(wait) = state.login_limit.check(ip)
    {
        return Ok(too_many_logins(&state, &rid, ip, wait));
    }
    let return_to =
        q.rd.as_deref()
            .and_then(|rd| safe_return_to(rd, &config.server))
            .unwrap_or_else(|| config.server.path("/"));
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
                        href: format!("{}?{}", config.server.path("/login"), query.finish()),
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

/// 429 with the readable error page and `Retry-After` (RFC 9110 §10.2.3, RFC 6585 §4).
fn too_many_logins(state: &AppState, rid: &RequestId, ip: std::net::IpAddr, wait: u64) -> Response {
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
    headers: HeaderMap,
    Peer(peer): Peer,
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
        // Kept only where sign-out will need it (RP-initiated logout's id_token_hint).
        let id_token = (provider.logout == LogoutMode::Idp)
            .then(|| IdTokenHint::new(verified.id_token.expose().to_owned()));
        let accepted = state
            .signin
            .complete(&config, provider, verified, &rid.0)
            .await?;
        let context = SignInContext {
            client_ip: client_ip(&headers, peer, &config.server).map(|ip| ip.to_string()),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            id_token,
        };
        crate::web::session::sign_in(
            &session,
            &state.clock,
            &accepted.user,
            provider.id.as_str(),
            context,
        )
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

/// The pages of sign-out are never cached (framing, forms and the rest: the security-header
/// layer of every page).
fn logout_page(response: Response) -> Response {
    crate::web::headers::no_store(response)
}

/// `GET /logout`, reached from a link on a proxied app: never signs out (a GET must change
/// nothing, and an `<img src=/logout>` on any page would otherwise sign users out); it shows
/// a confirmation page whose form posts to `POST /logout` with the session's CSRF token.
async fn logout_confirm(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let signed_in =
        crate::web::session::current(&session, &state.store, &state.clock, &config.server)
            .await
            .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    let ctx = match &signed_in {
        None => serde_json::json!({ "mode": "signed_out" }),
        Some(s) => {
            let idp = config
                .provider(&s.auth.provider)
                .filter(|p| p.logout == LogoutMode::Idp)
                .map(|p| p.display_name.clone());
            serde_json::json!({
                "mode": "confirm",
                "user": s.user.label(),
                "csrf": s.auth.csrf,
                "idp": idp,
            })
        }
    };
    let html = state
        .templates
        .render("logout.html", ctx)
        .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    Ok(logout_page(Html(html).into_response()))
}

/// `POST /logout` with the session's CSRF token: deletes the server-side session record,
/// then, for a provider with `logout = "idp"`, sends the browser on to the IdP's
/// `end_session_endpoint` (OpenID Connect RP-Initiated Logout 1.0) with `id_token_hint`,
/// `client_id` and `post_logout_redirect_uri` = teamgate's start page.
///
/// The hop to the IdP is a page that refreshes itself there (a new navigation), not a
/// redirect of the form's POST: a `Content-Security-Policy: form-action 'self'` covers the
/// redirects that follow a form submission, and would stop a 303 to another origin.
async fn logout(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ErrorPage> {
    let config = state.config.get();
    let home = config.server.path("/");
    let signed_in =
        crate::web::session::current(&session, &state.store, &state.clock, &config.server)
            .await
            .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    let Some(signed_in) = signed_in else {
        return Ok(Redirect::to(&home).into_response());
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
    let Some(provider) = config
        .provider(&signed_in.auth.provider)
        .filter(|p| p.logout == LogoutMode::Idp)
    else {
        return Ok(Redirect::to(&home).into_response());
    };
    let Some(url) = end_session_url(&state, &config, provider, &signed_in.auth).await else {
        return Ok(Redirect::to(&home).into_response());
    };
    let html = state
        .templates
        .render(
            "logout.html",
            serde_json::json!({
                "mode": "idp",
                "idp": provider.display_name,
                "end_session_url": url,
                "refresh_to": url,
            }),
        )
        .map_err(|e| ErrorPage::internal(&state.templates, &rid, e))?;
    let mut response = logout_page(Html(html).into_response());
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// The IdP's end-session URL for this session, or `None` (logged) when the IdP offers none or
/// its discovery document cannot be read now: teamgate's own session is over either way.
async fn end_session_url(
    state: &AppState,
    config: &crate::config::Config,
    provider: &crate::config::ProviderConfig,
    auth: &crate::web::session::AuthSession,
) -> Option<String> {
    let metadata = match state.providers.runtime(provider).metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(provider = %provider.id, error = %e, "signed out of teamgate only: the identity provider's discovery document is unavailable");
            return None;
        }
    };
    let Some(endpoint) = metadata
        .additional_metadata()
        .end_session_endpoint
        .as_deref()
        .and_then(|e| url::Url::parse(e).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http"))
    else {
        tracing::warn!(provider = %provider.id, "signed out of teamgate only: the identity provider names no end_session_endpoint (logout = \"idp\")");
        return None;
    };
    let mut url = endpoint;
    {
        let mut query = url.query_pairs_mut();
        if let Some(token) = &auth.id_token {
            query.append_pair("id_token_hint", token.expose());
        }
        query
            .append_pair("client_id", &provider.client_id)
            .append_pair("post_logout_redirect_uri", &config.server.url("/"));
    }
    Some(url.to_string())
}
