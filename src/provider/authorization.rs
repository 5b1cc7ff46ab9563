//! `/oauth2/authorize` (OIDC Core §3.1.2): check the request with the shared rules, then
//! look at the teamgate session. Signed in (and recently enough for `prompt=login` and
//! `max_age`): the code is issued at once and the browser goes back to the client. Not signed
//! in: the request waits in the session while the browser goes through teamgate's own login
//! (the upstream IdP, the reconcile) and comes back to `/oauth2/authorize/resume`.
//! `prompt=none` never shows a page: `login_required` instead. A user outside the client's
//! `allowed_teams` gets teamgate's refusal page and is not sent back.
//!
//! Every answer to the client is a GET redirect (302), never a form post, so a Content Security
//! Policy with `form-action 'self'` cannot block it.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::pending;
use super::protocol::jwt::random_token;
use super::protocol::pages::found;
use super::protocol::params::Params;
use super::protocol::request::{
    self, AuthorizationRequest, ClientError, Refusal, error_redirect_url, redirect_url,
};
use super::{Provider, lookup};
use crate::authorize::claims::SUPPORTED_SCOPES;
use crate::authorize::{AuthorizeError, CodeRequest, SignedInUser};
use crate::state::AppState;
use crate::store::sessions::hash_id;
use crate::web::error::ErrorPage;
use crate::web::request_id::RequestId;

pub(super) async fn authorize_get(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Extension(_provider): Extension<Arc<Provider>>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    handle(&state, &rid, &session, query.unwrap_or_default(), None).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint supports POST too (form-encoded).
pub(super) async fn authorize_post(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    body: Bytes,
) -> Response {
    let query = String::from_utf8_lossy(&body).into_owned();
    handle(&state, &rid, &session, query, None).await
}

#[derive(Deserialize)]
pub(super) struct ResumeQuery {
    id: String,
}

/// Back from teamgate's login: take the waiting request and answer it.
pub(super) async fn resume(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    session: Session,
    Query(q): Query<ResumeQuery>,
) -> Response {
    match pending::take(&session, &q.id, &state.clock).await {
        Ok(Some(p)) => handle(&state, &rid, &session, p.query, Some(p.created)).await,
        Ok(None) => ErrorPage::new(
            &state.templates,
            &rid,
            StatusCode::BAD_REQUEST,
            "Sign-in to the application expired",
            "This sign-in is no longer valid: it expired, was already used, or was started in another browser. Go back to the application and sign in again.",
            "provider resume: no such pending authorization",
        )
        .into_response(),
        Err(e) => ErrorPage::internal(&state.templates, &rid, e).into_response(),
    }
}

fn to_client(
    request: &AuthorizationRequest,
    error: &'static str,
    description: &'static str,
    issuer: &str,
) -> Response {
    tracing::info!(error, description, client = %request.client_id, "authorization answered with an error");
    found(&error_redirect_url(
        &ClientError {
            error,
            description,
            state: request.state.clone(),
            redirect_uri: request.redirect_uri.clone(),
        },
        issuer,
    ))
}

/// The page for a client or redirect URI that cannot be trusted: no redirect (RFC 6749 §4.1.2.1).
fn untrusted(state: &AppState, rid: &RequestId, why: &str) -> Response {
    ErrorPage::new(
        &state.templates,
        rid,
        StatusCode::BAD_REQUEST,
        "Sign-in request refused",
        "The application that sent you here is not registered with teamgate, or gave a return address that is not its own, so you were not sent back to it.",
        why.to_owned(),
    )
    .into_response()
}

/// `fresh_since`: when resuming, the time the request was put aside; a login since then
/// satisfies `prompt=login` and `max_age`.
async fn handle(
    state: &AppState,
    rid: &RequestId,
    session: &Session,
    raw: String,
    fresh_since: Option<i64>,
) -> Response {
    let config = state.config.get();
    let issuer = config.issuer();
    let params = Params::parse(raw.as_bytes());
    let request = match request::check(&params, lookup(&config), &SUPPORTED_SCOPES) {
        Ok(r) => r,
        Err(Refusal::Untrusted(why)) => return untrusted(state, rid, why),
        Err(Refusal::ToClient(e)) => {
            tracing::info!(
                error = e.error,
                description = e.description,
                "authorization answered with an error"
            );
            return found(&error_redirect_url(&e, &issuer));
        }
    };
    let signed_in =
        match crate::web::session::current(session, &state.store, &state.clock, &config.server)
            .await
        {
            Ok(s) => s,
            Err(e) => return ErrorPage::internal(&state.templates, rid, e).into_response(),
        };
    let now = state.clock.unix();
    let reauthenticate = |login_at: i64| {
        let fresh = fresh_since.is_some_and(|t| login_at >= t);
        // max_age=0 asks for a login now, like prompt=login (as Keycloak and Hydra read it).
        let too_old = request
            .max_age
            .is_some_and(|max| max == 0 || now - login_at > max);
        !fresh && (request.prompt.login || too_old)
    };
    let signed_in = match signed_in {
        Some(s) if !reauthenticate(s.auth.login_at) => s,
        other => {
            if request.prompt.none {
                return to_client(
                    &request,
                    "login_required",
                    "the user must sign in to teamgate first",
                    &issuer,
                );
            }
            if fresh_since.is_some() {
                // Back from the login without a session that satisfies the request.
                return to_client(
                    &request,
                    "login_required",
                    "the sign-in did not complete",
                    &issuer,
                );
            }
            let id = match pending::push(session, raw, &state.clock).await {
                Ok(id) => id,
                Err(e) => return ErrorPage::internal(&state.templates, rid, e).into_response(),
            };
            let mut login = url::form_urlencoded::Serializer::new(String::new());
            login.append_pair(
                "rd",
                &config
                    .server
                    .path(&format!("/oauth2/authorize/resume?id={id}")),
            );
            // A fresh login was asked for: the upstream IdP is asked to authenticate again too.
            if other.is_some() {
                login.append_pair("prompt", "login");
            }
            return found(&config.server.path(&format!("/login?{}", login.finish())));
        }
    };
    let Some(session_id) = session.id() else {
        return to_client(
            &request,
            "login_required",
            "the user must sign in to teamgate first",
            &issuer,
        );
    };
    let who = SignedInUser {
        user_id: signed_in.user.id,
        session_id: hash_id(&session_id),
        generation: signed_in.auth.generation,
        login_at: signed_in.auth.login_at,
    };
    let code_request = CodeRequest {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scopes.join(" "),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
    };
    match state
        .authorize
        .issue_code(who, code_request, random_token(), &rid.0)
        .await
    {
        Ok(code) => {
            tracing::info!(user = %signed_in.user.label(), client = %request.client_id, "signed in to a client");
            found(&redirect_url(
                &request.redirect_uri,
                &[("code", &code)],
                request.state.as_deref(),
                &issuer,
            ))
        }
        Err(AuthorizeError::NotAllowed { user, client }) => {
            let client_config = config.client(&client);
            let name = client_config.map_or(client.as_str(), |c| c.name.as_str());
            let teams: Vec<String> = client_config
                .map(|c| {
                    c.allowed_teams
                        .iter()
                        .map(|t| {
                            config
                                .team(t)
                                .map_or_else(|| t.to_string(), |t| t.name.clone())
                        })
                        .collect()
                })
                .unwrap_or_default();
            ErrorPage::new(
                &state.templates,
                rid,
                StatusCode::FORBIDDEN,
                "No access to this application",
                format!(
                    "You are signed in to teamgate as {user}, but {name} is open only to members of: {}. Ask your administrator if you need access.",
                    teams.join(", ")
                ),
                format!("{user} is not in the allowed teams of client {client}"),
            )
            .into_response()
        }
        Err(AuthorizeError::SessionGone) => to_client(
            &request,
            "login_required",
            "the user must sign in to teamgate first",
            &issuer,
        ),
        Err(AuthorizeError::UnknownClient(_)) => {
            untrusted(state, rid, "the client was removed from the config")
        }
        Err(AuthorizeError::Store(e)) => {
            ErrorPage::internal(&state.templates, rid, e).into_response()
        }
    }
}
