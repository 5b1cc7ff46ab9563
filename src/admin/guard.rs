//! Who may use `/admin`, and the checks on every state-changing admin form.
//!
//! Access: a signed-in user holding the configured admin role (`[admin] role`, on `scope` when
//! one is set, else on any scope). Signed out: redirect to the login with a return to the page.
//! Signed in without the role: a 403 page.
//!
//! State changes (security case 54, OWASP CSRF cheat sheet): POST only; refused with 403 when the
//! browser says the request is cross-site (`Sec-Fetch-Site`), when `Origin` is present and is
//! not teamgate's own, or when the form's CSRF token is not the session's. GET never mutates.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::config::Config;
use crate::membership::Identity;
use crate::state::AppState;
use crate::web::error::ErrorPage;
use crate::web::headers;
use crate::web::request_id::RequestId;
use crate::web::session::SignedIn;

/// A request by an administrator. As an extractor it answers everyone else itself: a
/// redirect to the login (returning to the page) for a signed-out browser, a 403 page for a
/// user without the admin role.
pub struct Admin {
    pub signed_in: SignedIn,
    pub identity: Identity,
    /// The config snapshot this request uses throughout.
    pub config: Arc<Config>,
    /// The request's id, for its error pages.
    pub request_id: RequestId,
}

/// The request id the middleware set (every request has one; a fresh one otherwise).
fn request_id_of(parts: &Parts) -> RequestId {
    parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(crate::domain::ids::random_id()))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // The address the browser asked for, even under a nested router.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        // OriginalUri is the full path, the base path (under which the router is nested)
        // included.
        let return_to = uri.path_and_query().map_or("/admin", |p| p.as_str());
        admin_of(parts, state, return_to).await
    }
}

/// The administrator of a request, returning to `return_to` after a login.
async fn admin_of(parts: &mut Parts, state: &AppState, return_to: &str) -> Result<Admin, Response> {
    let rid = request_id_of(parts);
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(status, why)| {
            no_store(
                ErrorPage::internal(&state.templates, &rid, format!("{status}: {why}"))
                    .into_response(),
            )
        })?;
    require_admin(state, &session, &rid, return_to).await
}

/// An administrator's state-changing form, after every check of security case 54: a
/// cross-site POST is refused first (even one without a cookie), then access, then the
/// form's CSRF token. The token is read from the urlencoded body by hand rather than with
/// `Form`, so that a missing field or a wrong content type is the same 403 as a wrong token.
pub struct AdminForm(pub Admin);

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let rid = request_id_of(&parts);
        let config = state.config.get();
        if let Err(why) = check_origin(&parts.headers, &config) {
            return Err(refused(state, &rid, why));
        }
        // A form is never a page to come back to: after a login, the admin home.
        let admin = admin_of(&mut parts, state, &config.server.path("/admin")).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| refused(state, &rid, CsrfRefusal::BadToken))?;
        let token = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if let Err(why) = check_post(&headers, &admin, token.as_deref()) {
            return Err(refused(state, &rid, why));
        }
        Ok(AdminForm(admin))
    }
}

/// True when `identity` holds the admin role `config` names.
pub fn is_admin(config: &Config, identity: &Identity) -> bool {
    let role = &config.admin.role;
    match &config.admin.scope {
        Some(scope) => identity.effective.has(role, scope),
        None => identity.effective.holds(role),
    }
}

/// The administrator making this request, or the response to send instead: a redirect to
/// the login for a signed-out browser, a 403 page for anyone else.
pub async fn require_admin(
    state: &AppState,
    session: &Session,
    rid: &RequestId,
    return_to: &str,
) -> Result<Admin, Response> {
    let config = state.config.get();
    let internal = |e: &dyn std::fmt::Display| {
        no_store(ErrorPage::internal(&state.templates, rid, e).into_response())
    };
    let signed_in =
        crate::web::session::current(session, &state.store, &state.clock, &config.server)
            .await
            .map_err(|e| internal(&e))?;
    let Some(signed_in) = signed_in else {
        let target = format!(
            "{}?{}",
            config.server.path("/login"),
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", return_to)
                .finish()
        );
        return Err(no_store(Redirect::to(&target).into_response()));
    };
    let identity = Identity::load(&state.store, &config, &signed_in.user)
        .await
        .map_err(|e| internal(&e))?;
    if !is_admin(&config, &identity) {
        let needed = match &config.admin.scope {
            Some(scope) => format!("the {} role on {scope}", config.admin.role),
            None => format!("the {} role", config.admin.role),
        };
        return Err(no_store(
            ErrorPage::new(
                &state.templates,
                rid,
                StatusCode::FORBIDDEN,
                "Administrators only",
                format!("These pages are for teamgate administrators, who hold {needed}. You are signed in, but none of your teams gives you that role."),
                format!("admin page refused to {}", signed_in.user.label()),
            )
            .into_response(),
        ));
    }
    Ok(Admin {
        signed_in,
        identity,
        config,
        request_id: rid.clone(),
    })
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRefusal {
    /// `Sec-Fetch-Site` says another site sent it.
    CrossSite,
    /// `Origin` names another origin (or `null`).
    ForeignOrigin,
    /// The form's token is missing or wrong.
    BadToken,
}

impl CsrfRefusal {
    fn log_reason(self) -> &'static str {
        match self {
            CsrfRefusal::CrossSite => "admin POST with Sec-Fetch-Site other than same-origin",
            CsrfRefusal::ForeignOrigin => "admin POST with a foreign Origin",
            CsrfRefusal::BadToken => "admin POST without the session's CSRF token",
        }
    }
}

/// Check the headers a browser adds to a form POST. Browsers send `Sec-Fetch-Site` (all
/// current ones) and `Origin` (on every POST); a request without them is not a browser's
/// cross-site request, and still needs the token.
pub fn check_origin(headers: &HeaderMap, config: &Config) -> Result<(), CsrfRefusal> {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none` is a user-initiated navigation (typed URL, bookmark); `same-site` is a sibling
        // subdomain, which is another origin and as untrusted as any other site.
        if !matches!(site.to_str().unwrap_or_default(), "same-origin" | "none") {
            return Err(CsrfRefusal::CrossSite);
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let ours = config.server.public_url.origin().ascii_serialization();
        // Our pages set `Referrer-Policy: no-referrer`, under which browsers send
        // `Origin: null` even for a same-origin form (Fetch, "serializing a request origin").
        // `null` is also what a sandboxed cross-site frame sends, so it is accepted only when
        // the browser vouches that the request is same-origin.
        let same_origin = headers
            .get("sec-fetch-site")
            .is_some_and(|s| s.as_bytes() == b"same-origin");
        if origin != ours && !(origin == "null" && same_origin) {
            return Err(CsrfRefusal::ForeignOrigin);
        }
    }
    Ok(())
}

/// Every check of a state-changing admin form, token included.
pub fn check_post(
    headers: &HeaderMap,
    admin: &Admin,
    token: Option<&str>,
) -> Result<(), CsrfRefusal> {
    check_origin(headers, &admin.config)?;
    match token {
        Some(t) if crate::web::session::csrf_matches(&admin.signed_in.auth, t) => Ok(()),
        _ => Err(CsrfRefusal::BadToken),
    }
}

/// The 403 page for a refused form.
pub fn refused(state: &AppState, rid: &RequestId, why: CsrfRefusal) -> Response {
    no_store(ErrorPage::new(
        &state.templates,
        rid,
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was not sent from teamgate's own admin pages, so it was refused. Open the admin page again and use its buttons.",
        why.log_reason(),
    )
    .into_response())
}

/// Admin responses are never cached (the router's header layer keeps every page from being
/// framed).
pub fn no_store(response: Response) -> Response {
    headers::no_store(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config() -> Config {
        let text = r#"
[server]
public_url = "http://127.0.0.1:8080"
listen = "127.0.0.1:8080"
database = "x.db"
demo = true

[[provider]]
id = "demo"
kind = "demo"

[[demo_user]]
email = "a@example.com"
name = "A"
groups = []
"#;
        Config::parse(text, std::path::Path::new("t.toml")).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn case_54_a_cross_site_fetch_is_refused() {
        let c = config();
        assert_eq!(
            check_origin(&headers(&[("sec-fetch-site", "cross-site")]), &c),
            Err(CsrfRefusal::CrossSite)
        );
        assert_eq!(
            check_origin(&headers(&[("sec-fetch-site", "same-site")]), &c),
            Err(CsrfRefusal::CrossSite)
        );
        assert_eq!(
            check_origin(&headers(&[("sec-fetch-site", "same-origin")]), &c),
            Ok(())
        );
    }

    #[test]
    fn case_54_a_foreign_or_null_origin_is_refused() {
        let c = config();
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:8081",
            "http://localhost:8080",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            assert_eq!(
                check_origin(&h, &c),
                Err(CsrfRefusal::ForeignOrigin),
                "{origin}"
            );
        }
        assert_eq!(
            check_origin(&headers(&[("origin", "http://127.0.0.1:8080")]), &c),
            Ok(())
        );
        // What a same-origin form sends under `Referrer-Policy: no-referrer`.
        assert_eq!(
            check_origin(
                &headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
                &c
            ),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
                &c
            ),
            Err(CsrfRefusal::CrossSite)
        );
    }
}
