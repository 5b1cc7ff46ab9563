//! `/oauth2/logout`: OpenID Connect RP-Initiated Logout 1.0. An application sends the browser
//! here (GET or POST) with `id_token_hint`, `post_logout_redirect_uri`, `state`, `client_id`.
//!
//! - The hint must be an ID token teamgate signed (its signature, `iss`, an `aud` that is a
//!   registered client; an expired one is fine, §2); a return address must be registered for
//!   that client exactly, otherwise a page says so and nobody is redirected (no open redirect).
//! - The teamgate session ends at once when the hint names the signed-in user; without such a
//!   hint the user is asked first (§2: logout requests can be forged), and the confirmation is
//!   a same-origin form with the session's CSRF token. Ending the session revokes every
//!   refresh token issued under it, for every client ([`crate::authorize`]).
//! - The way back to the application after a confirmation is a link on the "signed out" page,
//!   not a redirect of the form post, so a `form-action 'self'` policy cannot block it.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_sessions::Session;

use super::Provider;
use super::protocol::pages::found;
use super::protocol::params::Params;
use crate::config::Config;
use crate::signing::{KeySet, PublicJwk};
use crate::state::AppState;
use crate::web::error::ErrorPage;
use crate::web::request_id::RequestId;

/// What a valid `id_token_hint` tells.
#[derive(Debug, Deserialize)]
struct Hint {
    sub: String,
    aud: String,
}

#[derive(Serialize)]
struct Page<'a> {
    signed_out: bool,
    client_name: Option<&'a str>,
    client_id: Option<&'a str>,
    return_url: Option<String>,
    user: Option<String>,
    csrf: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    state: Option<&'a str>,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Extension(provider): Extension<Arc<Provider>>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    end_session(&state, &rid, &provider, &session, &params).await
}

/// POST: either an application's logout request sent as a form (§2 allows it) or, with a
/// `csrf` field, the user's confirmation.
pub(super) async fn confirm(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Extension(provider): Extension<Arc<Provider>>,
    session: Session,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    end_session(&state, &rid, &provider, &session, &params).await
}

fn refuse(state: &AppState, rid: &RequestId, why: &str) -> Response {
    ErrorPage::new(
        &state.templates,
        rid,
        StatusCode::BAD_REQUEST,
        "Sign-out request refused",
        "The application that sent you here made a sign-out request teamgate cannot trust (an unknown application, a return address it did not register, or a token teamgate did not issue), so you were not sent anywhere. You are still signed in; use the sign-out button on teamgate's own page.",
        why.to_owned(),
    )
    .into_response()
}

fn render(state: &AppState, rid: &RequestId, page: &Page<'_>) -> Response {
    match state.templates.render("provider_logout.html", page) {
        Ok(html) => crate::web::headers::no_store(Html(html).into_response()),
        Err(e) => ErrorPage::internal(&state.templates, rid, e).into_response(),
    }
}

async fn end_session(
    state: &AppState,
    rid: &RequestId,
    provider: &Provider,
    session: &Session,
    params: &Params,
) -> Response {
    if params.any_repeated() {
        return refuse(state, rid, "a logout parameter is repeated");
    }
    let config = state.config.get();
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => {
            let keys = match provider.keys.get(&state.store, &state.clock).await {
                Ok(k) => k,
                Err(e) => return ErrorPage::internal(&state.templates, rid, e).into_response(),
            };
            match verify_hint(&keys, &config, token) {
                Ok(h) => Some(h),
                Err(why) => return refuse(state, rid, &format!("id_token_hint: {why}")),
            }
        }
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(h)) if id != h.aud => {
            return refuse(
                state,
                rid,
                "client_id differs from the id_token_hint's audience",
            );
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => match config.client(id) {
            Some(c) => Some(c),
            None => return refuse(state, rid, "the client_id is not registered"),
        },
        None => None,
    };
    let state_param = params.get("state");
    let return_url = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(c) = client else {
                return refuse(
                    state,
                    rid,
                    "post_logout_redirect_uri without a client_id or id_token_hint",
                );
            };
            if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return refuse(
                    state,
                    rid,
                    "post_logout_redirect_uri is not registered for this client",
                );
            }
            Some(with_state(uri, state_param))
        }
    };
    let signed_in =
        match crate::web::session::current(session, &state.store, &state.clock, &config.server)
            .await
        {
            Ok(s) => s,
            Err(e) => return ErrorPage::internal(&state.templates, rid, e).into_response(),
        };
    let client_name = client.map(|c| c.name.as_str());
    let done = |confirmed: bool| -> Response {
        match (&return_url, confirmed) {
            // A plain GET redirect from the application's own request.
            (Some(url), false) => found(url),
            // After our own form: a link, never a cross-origin redirect of a form post.
            _ => render(
                state,
                rid,
                &Page {
                    signed_out: true,
                    client_name,
                    client_id: None,
                    return_url: return_url.clone(),
                    user: None,
                    csrf: None,
                    post_logout_redirect_uri: None,
                    state: None,
                },
            ),
        }
    };
    let Some(signed_in) = signed_in else {
        // Nothing to end.
        return done(false);
    };
    let confirmed = match params.get("csrf") {
        Some(csrf) if crate::web::session::csrf_matches(&signed_in.auth, csrf) => true,
        Some(_) => return refuse(state, rid, "logout confirmation with a wrong CSRF token"),
        None => false,
    };
    let hinted = hint
        .as_ref()
        .is_some_and(|h| h.sub == signed_in.user.public_id);
    if confirmed || hinted {
        if let Err(e) = session.flush().await {
            return ErrorPage::internal(&state.templates, rid, e).into_response();
        }
        tracing::info!(user = %signed_in.user.label(), client = ?client_id, "signed out at an application's request");
        return done(confirmed);
    }
    render(
        state,
        rid,
        &Page {
            signed_out: false,
            client_name,
            client_id: client_id.as_deref(),
            return_url: None,
            user: Some(signed_in.user.label()),
            csrf: Some(&signed_in.auth.csrf),
            post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
            state: state_param,
        },
    )
}

fn with_state(uri: &str, state: Option<&str>) -> String {
    match (url::Url::parse(uri), state) {
        (Ok(mut url), Some(state)) => {
            url.query_pairs_mut().append_pair("state", state);
            url.into()
        }
        _ => uri.to_owned(),
    }
}

/// Check an `id_token_hint`: signed by one of teamgate's published keys with the key's own
/// algorithm, `typ` JWT (so a forward-auth assertion cannot pass), `iss` teamgate, `aud` a
/// registered client. `exp` is not checked (RP-Initiated Logout §2: a hint may have expired).
fn verify_hint(keys: &KeySet, config: &Config, token: &str) -> Result<Hint, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref().is_some_and(|t| t != "JWT") {
        return Err(format!("unexpected typ {:?}", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = keys
        .jwks
        .keys
        .iter()
        .find(|k| k.kid() == kid)
        .ok_or("signed by no key teamgate publishes")?;
    let (key, alg) = match jwk {
        PublicJwk::Rsa { n, e, .. } => (
            DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?,
            Algorithm::RS256,
        ),
        PublicJwk::Ec { x, y, .. } => (
            DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?,
            Algorithm::ES256,
        ),
    };
    if header.alg != alg {
        return Err("the algorithm does not match the key".into());
    }
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    validation.set_issuer(&[config.issuer()]);
    let hint = jsonwebtoken::decode::<Hint>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if config.client(&hint.aud).is_none() {
        return Err("its audience is not a registered client".into());
    }
    Ok(hint)
}
